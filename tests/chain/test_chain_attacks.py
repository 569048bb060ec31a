"""Attacks on the contracts, as an outsider would try them, on the embedded chain and on ganache.

Each test plays the attacker first (the victims' addresses and the session id are public: events and
the mempool show them), then lets the victim's recorder deliver real rounds and checks nothing jammed.
"""

from __future__ import annotations

import pytest

pytest.importorskip("web3", reason="the chain extras (web3, eth-tester[py-evm]) are not installed")

from chain_support import REWARD
from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic

from hypergpu_lab.chain import ChainClient, ChainRecorder, ContractRevert, Contribution, NodeAccounts, new_session_id
from hypergpu_lab.events import EventBus

MAX_SCORE = 2**96 - 1


@pytest.fixture(params=["embedded", pytest.param("ganache", marks=pytest.mark.slow)])
def any_chain(request: pytest.FixtureRequest) -> ChainClient:
    """The same attacks against py-evm in process and against a real JSON-RPC node."""
    if request.param == "embedded":
        return request.getfixturevalue("chain")
    node = request.getfixturevalue("ganache_node")
    return ChainClient(node.url, private_key=node.private_key, accounts=NodeAccounts(seed="attack test seed"))


def deliver(chain: ChainClient, reports: list, **options) -> ChainRecorder:
    bus = EventBus()
    recorder = ChainRecorder(chain, bus, reward_per_round=REWARD, background=False, **options)
    for report in reports:
        bus.emit(report)
    return recorder


def test_the_overflow_attack_cannot_block_a_victim(any_chain: ChainClient, trained_run) -> None:
    # Prepare: an outsider with gas opens a session of its own and records absurd scores for the victims.
    chain, attacker = any_chain, any_chain.accounts.signer(77)
    victims = [chain.accounts.address(n) for n in range(10)]
    own = new_session_id(attacker.address)
    chain.start_session(own, sender=attacker)
    with pytest.raises(ContractRevert) as exc:  # the old attack: 2**256 - 1 - current, per victim
        chain.record_round(own, 1, [Contribution(v, 2**256 - 1) for v in victims], sender=attacker)
    assert exc.value.name == "ScoreTooLarge"
    for r in (1, 2):  # the most the contract accepts, round after round
        chain.record_round(own, r, [Contribution(v, MAX_SCORE) for v in victims], sender=attacker)

    # Execute: the victim's coordinator records and funds its real rounds afterwards.
    recorder = deliver(chain, trained_run.reports)
    status = recorder.flush(timeout=120)

    # Assert: every round landed; the attacker's session changed nothing in the victim's.
    assert (status.pending, status.sent, status.failed) == (0, 3, 0), recorder.failures()
    assert all(chain.total_score(recorder.session_id, v) < MAX_SCORE for v in victims)
    assert sum(chain.claimable(n) for n in range(10)) > 0


def test_session_squatting_cannot_block_a_victim(any_chain: ChainClient, trained_run) -> None:
    # Prepare: the victim's recorder has pinned its session id in the outbox, not yet on chain.
    chain, attacker = any_chain, any_chain.accounts.signer(78)
    recorder = deliver(chain, [])
    sid = recorder.session_id
    assert sid[2:42] == chain.coordinator[2:].lower()  # the id lives in the coordinator's namespace

    # Execute: the attacker front-runs the id itself, and any id in the victim's namespace.
    for squatted in (sid, new_session_id(chain.coordinator)):
        with pytest.raises(ContractRevert) as exc:
            chain.start_session(squatted, sender=attacker)
        assert exc.value.name == "SessionIdNotOwned"
    same_suffix = "0x" + attacker.address[2:].lower() + sid[42:]
    chain.start_session(same_suffix, sender=attacker)  # its own namespace: allowed, and harmless
    for report in trained_run.reports:
        recorder.on_report(report)
    status = recorder.flush(timeout=120)

    # Assert
    assert (status.pending, status.sent, status.failed) == (0, 3, 0), recorder.failures()
    assert chain.session(sid).coordinator == chain.coordinator


def test_outsiders_cannot_record_fund_or_alter_a_victims_rounds(any_chain: ChainClient) -> None:
    chain, attacker = any_chain, any_chain.accounts.signer(79)
    sid = chain.new_session_id()
    chain.start_session(sid)
    rows = [Contribution(chain.accounts.address(n), s) for n, s in ((0, 5), (1, 7))]
    with pytest.raises(ContractRevert, match="NotCoordinator"):
        chain.record_round(sid, 1, rows, sender=attacker)
    chain.record_round(sid, 1, rows)
    with pytest.raises(ContractRevert, match="NotCoordinator"):
        chain.fund_round(sid, 1, 100, sender=attacker)
    # Funding re-sends the recorded (nodes, scores); anything else does not match the stored digest.
    ordered = sorted(rows, key=lambda c: int(c.address, 16))
    inflated = [c.score * (10 if c.address == attacker.address else 1) for c in ordered]
    forged = chain.distributor.functions.fundRound(
        bytes.fromhex(sid[2:]), 1, 100, [c.address for c in ordered], [s + 1 for s in inflated]
    )
    with pytest.raises(ContractRevert) as exc:
        chain.transact(forged)
    assert exc.value.name == "ContributionsMismatch"
    assert chain.fund_round(sid, 1, 120).distributed == 120


def test_totals_from_raw_logs_equal_the_local_ledger(any_chain: ChainClient, trained_run) -> None:
    chain = any_chain
    recorder = deliver(chain, trained_run.reports)
    assert recorder.flush(timeout=120).sent == 3
    abis = {e["name"]: e for e in chain.tracker.abi + chain.distributor.abi if e["type"] == "event"}

    def raw_logs(contract: str, event: str) -> list:
        topic = "0x" + event_abi_to_log_topic(abis[event]).hex()
        return chain.w3.eth.get_logs(
            {"address": contract, "fromBlock": 0, "toBlock": "latest", "topics": [topic, recorder.session_id]}
        )

    node_of = {chain.accounts.address(n): n for n in range(10)}
    scores: dict[int, int] = {}
    for entry in raw_logs(chain.deployment.tracker, "RoundRecorded"):
        nodes, values, _, _ = abi_decode(["address[]", "uint256[]", "bytes32[]", "uint256"], bytes(entry["data"]))
        for a, s in zip(nodes, values):
            n = node_of[chain.w3.to_checksum_address(a)]
            scores[n] = scores.get(n, 0) + s
    paid: dict[int, int] = {}
    for entry in raw_logs(chain.deployment.distributor, "RewardCredited"):
        n = node_of[chain.w3.to_checksum_address("0x" + bytes(entry["topics"][3])[-20:].hex())]
        paid[n] = paid.get(n, 0) + abi_decode(["uint256"], bytes(entry["data"]))[0]
    assert scores == {n: s for n, s in recorder.scores_by_node().items() if s}
    assert paid == recorder.paid_by_node()
