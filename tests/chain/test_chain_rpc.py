"""The same workflow against a real JSON-RPC node: ganache 7 started by the fixture on a free local port."""

from __future__ import annotations

import pytest

pytest.importorskip("web3", reason="the chain extras (web3, eth-tester[py-evm]) are not installed")

from chain_support import REWARD

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.chain import ChainClient, ContractRevert, NodeAccounts, round_scores

pytestmark = pytest.mark.slow


def test_real_node_runs_the_whole_workflow(ganache_node, tmp_path) -> None:
    # Prepare: a coordinator key funded in ganache's genesis, node keys from a secret seed.
    chain = ChainClient(
        ganache_node.url, private_key=ganache_node.private_key, accounts=NodeAccounts(seed="ganache test seed")
    )
    assert chain.chain_id == 1337 and ganache_node.private_key[2:] not in repr(chain)
    pool = NodePool.simulated(10, dataset="digits", network="lan", seed=0)
    coord = Coordinator(model="mlp", pool=pool)
    recorder = chain.attach(coord, reward_per_round=REWARD, outbox=tmp_path / "outbox.jsonl")
    reports: list = []
    coord.bus.subscribe(reports.append)

    # Execute
    coord.run(rounds=3, progress=False)
    status = recorder.close(timeout=120)

    # Assert: every round once, scores as computed from the reports, rewards split and claimable.
    assert (status.pending, status.sent, status.failed) == (0, 3, 0)
    history = chain.history(recorder.session_id)
    assert [h.round for h in history] == [1, 2, 3]
    for rec, report in zip(history, reports):
        accepted = {n.node for n in report.nodes if n.status == "accepted"}
        assert {c.node: c.score for c in rec.contributions} == {
            n: s for n, s in round_scores(report).items() if n in accepted
        }
    with pytest.raises(ContractRevert) as exc:
        chain.record_round(recorder.session_id, 2, history[1].contributions)
    assert exc.value.name == "RoundAlreadyRecorded"
    with pytest.raises(ContractRevert) as exc:
        chain.record_round(recorder.session_id, 4, history[1].contributions, sender=3)
    assert exc.value.name == "NotCoordinator"
    owed = {}
    for rec in history:
        total = sum(c.score for c in rec.contributions)
        for c in rec.contributions:
            owed[c.node] = owed.get(c.node, 0) + REWARD * c.score // total
    assert {n: chain.claimable(n) for n in range(10)} == owed
    assert chain.claim(4) == owed[4] == chain.token_balance(4)
    with pytest.raises(ContractRevert) as exc:
        chain.claim(4)
    assert exc.value.name == "NothingToClaim"
    # A second client attaches to the same deployment and sees the same state.
    again = ChainClient(ganache_node.url, private_key=ganache_node.private_key, deployment=chain.deployment)
    assert again.rounds_recorded(recorder.session_id) == 3 and again.claimed(chain.accounts.address(4)) == owed[4]
