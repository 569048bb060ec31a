"""The three contracts on the embedded chain: who may record, once only, pro-rata rewards, pull payments."""

from __future__ import annotations

import pytest

pytest.importorskip("web3", reason="the chain extras (web3, eth-tester[py-evm]) are not installed")

from chain_support import TEST_ARTIFACTS

from hypergpu_lab.chain import ChainClient, ContractRevert, Contribution
from hypergpu_lab.chain.compiled import load


def rows(chain: ChainClient, scores: dict[int, int]) -> list[Contribution]:
    return [Contribution(chain.accounts.address(n), s, "0x" + f"{n:02x}" * 32, n) for n, s in scores.items()]


def open_session(chain: ChainClient) -> str:
    sid = chain.new_session_id()
    chain.start_session(sid, dataset_id="digits", model_hash="0x" + "aa" * 32, config_hash="0x" + "bb" * 32)
    return sid


def python_shares(pool: int, scores: dict[str, int]) -> dict[str, int]:
    """The oracle: floor(pool * score / total) per node, zero shares left out."""
    total = sum(scores.values())
    return {a: pool * s // total for a, s in scores.items() if pool * s // total}


# -- sessions and contributions --------------------------------------------------------------------------
def test_session_lifecycle_and_its_start_and_complete_events(chain: ChainClient) -> None:
    sid = open_session(chain)
    session = chain.session(sid)
    assert (session.coordinator, session.status, session.dataset_id) == (chain.coordinator, "active", "digits")
    assert session.model_hash == "0x" + "aa" * 32 and session.config_hash == "0x" + "bb" * 32
    with pytest.raises(ContractRevert) as exc:
        chain.start_session(sid)
    assert exc.value.name == "SessionExists"
    with pytest.raises(ContractRevert) as exc:
        chain.complete_session(sid, sender=3)
    assert exc.value.name == "NotCoordinator"
    assert chain.complete_session(sid).status == "completed"
    with pytest.raises(ContractRevert) as exc:
        chain.record_round(sid, 1, rows(chain, {0: 5}))
    assert exc.value.name == "SessionNotActive"
    started = chain.registry.events.SessionStarted.get_logs(from_block=0)
    completed = chain.registry.events.SessionCompleted.get_logs(from_block=0)
    assert [e["args"]["datasetId"] for e in started] == ["digits"] and len(completed) == 1
    assert chain.session(chain.new_session_id()) is None


def test_only_the_sessions_coordinator_can_record(chain: ChainClient) -> None:
    sid = open_session(chain)
    intruder = chain.accounts.signer(7)
    with pytest.raises(ContractRevert) as exc:
        chain.record_round(sid, 1, rows(chain, {0: 10, 1: 20}), sender=intruder)
    assert exc.value.name == "NotCoordinator"
    assert exc.value.arguments == {"sessionId": bytes.fromhex(sid[2:]), "caller": intruder.address}
    assert "NotCoordinator(" in str(exc.value) and not chain.is_recorded(sid, 1)


def test_a_round_is_recorded_once_and_totals_add_up(chain: ChainClient) -> None:
    sid = open_session(chain)
    chain.record_round(sid, 1, rows(chain, {0: 10, 1: 20}))
    with pytest.raises(ContractRevert) as exc:
        chain.record_round(sid, 1, rows(chain, {0: 999}))
    assert exc.value.name == "RoundAlreadyRecorded" and exc.value.arguments["round"] == 1
    chain.record_round(sid, 2, rows(chain, {1: 5, 2: 7}))
    assert [chain.total_score(sid, n) for n in range(3)] == [10, 25, 7]
    assert chain.rounds_recorded(sid) == 2
    history = chain.history(sid)
    assert [h.round for h in history] == [1, 2]
    assert {(c.node, c.score, c.update_hash) for c in history[0].contributions} == {
        (0, 10, "0x" + "00" * 32),
        (1, 20, "0x" + "01" * 32),
    }
    assert history[1].total_score == 12


def test_malformed_rounds_revert_with_their_error_names(chain: ChainClient) -> None:
    sid = open_session(chain)
    a = sorted([chain.accounts.address(0), chain.accounts.address(1)], key=lambda x: int(x, 16))
    bad = {
        "NodesNotAscending": ([a[1], a[0]], [1, 2], [b"\0" * 32] * 2),
        "LengthMismatch": ([a[0]], [1, 2], [b"\0" * 32]),
        "NoContributions": ([], [], []),
    }
    for name, args in bad.items():
        with pytest.raises(ContractRevert) as exc:
            chain.transact(chain.tracker.functions.recordRound(bytes.fromhex(sid[2:]), 1, *args))
        assert exc.value.name == name
    with pytest.raises(ContractRevert) as exc:  # the same node twice
        chain.record_round(sid, 1, [Contribution(a[0], 1), Contribution(a[0], 2)])
    assert exc.value.name == "NodesNotAscending"


# -- rewards ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pool", [10**18, 10**18 + 7, 1_000_003, 13])
def test_rewards_split_pro_rata_to_the_token_unit_and_dust_stays_with_the_funder(chain: ChainClient, pool: int) -> None:
    sid = open_session(chain)
    scores = {0: 108_000_000, 1: 71_234_567, 2: 0, 3: 1, 4: 33_333_333}
    chain.record_round(sid, 1, rows(chain, scores))
    before = chain.token_balance(chain.coordinator)
    funding = chain.fund_round(sid, 1, pool)
    expected = python_shares(pool, {chain.accounts.address(n): s for n, s in scores.items()})
    assert funding.shares == expected
    assert funding.distributed == sum(expected.values()) and 0 <= funding.dust < len(scores)
    assert before - chain.token_balance(chain.coordinator) == funding.distributed  # dust never left
    assert chain.token_balance(chain.deployment.distributor) == funding.distributed  # nothing stranded
    assert {chain.accounts.address(n): chain.claimable(n) for n in scores if chain.claimable(n)} == expected


def test_funding_rules(chain: ChainClient) -> None:
    sid = open_session(chain)
    with pytest.raises(ContractRevert, match="RoundNotRecorded"):
        chain.fund_round(sid, 1, 100)
    chain.record_round(sid, 1, rows(chain, {0: 1}))
    chain.record_round(sid, 2, rows(chain, {0: 0}))
    for args, name in (((sid, 1, 0), "ZeroPool"), ((sid, 2, 100), "NothingToDistribute")):
        with pytest.raises(ContractRevert) as exc:
            chain.fund_round(*args)
        assert exc.value.name == name
    node = chain.accounts.signer(4)
    with pytest.raises(ContractRevert) as exc:
        chain.fund_round(sid, 1, 100, sender=node)
    assert exc.value.name == "NotCoordinator"
    chain.fund_round(sid, 1, 100)
    with pytest.raises(ContractRevert) as exc:
        chain.fund_round(sid, 1, 100)
    assert exc.value.name == "RoundAlreadyFunded" and chain.claimable(0) == 100
    with pytest.raises(ContractRevert) as exc:  # only the token's owner (the deploying coordinator) mints
        chain.transact(chain.token.functions.mint(node.address, 1), sender=node)
    assert exc.value.name == "OwnableUnauthorizedAccount"


def test_a_node_claims_only_its_own_balance_once(chain: ChainClient) -> None:
    sid = open_session(chain)
    chain.record_round(sid, 1, rows(chain, {0: 1, 1: 3}))
    chain.fund_round(sid, 1, 4000)
    assert chain.claim(1) == 3000 and chain.token_balance(1) == 3000 and chain.claimed(1) == 3000
    with pytest.raises(ContractRevert) as exc:  # a second claim gets nothing
        chain.claim(1)
    assert exc.value.name == "NothingToClaim" and chain.token_balance(1) == 3000
    with pytest.raises(ContractRevert) as exc:  # claim() pays msg.sender: node 5 cannot take node 0's
        chain.claim(5)
    assert exc.value.name == "NothingToClaim"
    with pytest.raises(ContractRevert):  # nor can the coordinator that funded it
        chain.transact(chain.distributor.functions.claim())
    assert chain.claimable(0) == 1000 and chain.token_balance(5) == 0
    assert chain.claim(0) == 1000


def test_reentering_claim_from_a_token_hook_is_stopped_by_the_guard(chain: ChainClient) -> None:
    # Prepare: a distributor paying in HookToken, which calls the receiver back on transfer (the lab's
    # RewardToken has no hooks, so this is the only way back in), and a node that is an attacker contract.
    token = chain.deploy(load("HookToken", TEST_ARTIFACTS), 10**24)
    distributor = chain.deploy("RewardDistributor", token.address, chain.deployment.tracker)
    attacker = chain.deploy(load("ReentrantClaimer", TEST_ARTIFACTS), distributor.address)
    chain.transact(token.functions.setHooked(attacker.address))
    sid = open_session(chain)
    honest = chain.accounts.address(0)
    chain.record_round(sid, 1, [Contribution(attacker.address, 1), Contribution(honest, 1)])
    chain.transact(token.functions.approve(distributor.address, 1000))
    recorded = chain.round_contributions(sid, 1)
    chain.transact(
        distributor.functions.fundRound(
            bytes.fromhex(sid[2:]), 1, 1000, [c.address for c in recorded], [c.score for c in recorded]
        )
    )
    held = token.functions.balanceOf(distributor.address).call()

    # Execute: claim, and claim again from inside the transfer hook.
    with pytest.raises(ContractRevert) as exc:
        chain.transact(attacker.functions.attack(True))

    # Assert: the guard reverted the whole claim; nothing moved; an honest claim then pays exactly once.
    assert exc.value.name == "ReentrancyGuardReentrantCall"
    assert distributor.functions.claimable(attacker.address).call() == 500
    assert token.functions.balanceOf(attacker.address).call() == 0
    assert token.functions.balanceOf(distributor.address).call() == held == 1000
    chain.transact(attacker.functions.attack(False))
    assert token.functions.balanceOf(attacker.address).call() == 500
    assert distributor.functions.claimable(attacker.address).call() == 0
    assert attacker.functions.reentries().call() == 0
    with pytest.raises(ContractRevert) as exc:
        chain.transact(attacker.functions.attack(False))
    assert exc.value.name == "NothingToClaim"
