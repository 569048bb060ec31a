"""The durable recorder: training never waits for the chain, and every accepted round lands exactly once."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

pytest.importorskip("web3", reason="the chain extras (web3, eth-tester[py-evm]) are not installed")

from chain_support import REWARD, flaky_provider

from hypergpu_lab.chain import (
    ChainClient,
    ChainRecorder,
    NodeAccounts,
    Outbox,
    contributions,
    round_scores,
)
from hypergpu_lab.chain.outbox import FILENAME, RoundSet
from hypergpu_lab.chain.rewards import split_pool
from hypergpu_lab.events import EventBus
from hypergpu_lab.runs import RunFolder


def expected_shares(chain: ChainClient, report, pool: int) -> dict[str, int]:
    scores = {
        chain.accounts.address(n): s
        for n, s in round_scores(report).items()
        if any(r.node == n and r.status == "accepted" for r in report.nodes)
    }
    return split_pool(pool, scores)


def assert_recorded_once(chain: ChainClient, session_id: str, reports: list) -> None:
    """Each report's accepted scores are on chain, in exactly one RoundRecorded event."""
    history = chain.history(session_id)
    assert [h.round for h in history] == [r.round for r in reports]
    for rec, report in zip(history, reports):
        accepted = {n.node for n in report.nodes if n.status == "accepted"}
        want = {n: s for n, s in round_scores(report).items() if n in accepted}
        assert {c.node: c.score for c in rec.contributions} == want
        assert {c.node: c.update_hash for c in rec.contributions} == {
            n.node: "0x" + n.update_hash for n in report.nodes if n.status == "accepted"
        }


# -- the whole workflow with a real Coordinator ----------------------------------------------------------
def test_three_real_rounds_end_on_chain_with_rewards_claimable(trained_run) -> None:
    chain, recorder, reports = trained_run.chain, trained_run.recorder, trained_run.reports
    status = recorder.flush(timeout=60)
    assert (status.pending, status.sent, status.failed, status.already) == (0, 3, 0, 0)
    assert_recorded_once(chain, recorder.session_id, reports)
    session = chain.session(recorder.session_id)
    assert session.dataset_id == "digits" and session.coordinator == chain.coordinator
    totals = {n: sum(round_scores(r)[n] for r in reports) for n in range(10)}
    assert {n: chain.total_score(recorder.session_id, n) for n in range(10)} == totals
    owed: dict[str, int] = {}
    for report in reports:
        for address, share in expected_shares(chain, report, REWARD).items():
            owed[address] = owed.get(address, 0) + share
    assert {chain.accounts.address(n): chain.claimable(n) for n in range(10)} == owed
    for n in (0, 9):
        assert chain.claim(n) == owed[chain.accounts.address(n)] == chain.token_balance(n)
    assert recorder.complete_session().sent == 3 and chain.session(recorder.session_id).status == "completed"


def test_an_outage_delays_rounds_but_never_training_and_loses_none(trained_run) -> None:
    # During the run the provider raised on every call: training went on, the outbox filled up.
    down, provider, chain = trained_run.down_recorder, trained_run.down_provider, trained_run.down_chain
    assert [s.pending for s in trained_run.while_down] == [1, 2, 3]
    assert all(s.sent == 0 for s in trained_run.while_down) and provider.failures > 0
    assert down.status().attempts > 0 and "ConnectionError" in down.status().last_error
    # The chain comes back: the sender thread retries and everything lands, once.
    provider.down = False
    status = down.flush(timeout=60)
    assert (status.pending, status.sent, status.failed, status.attempts) == (0, 3, 0, 0)
    assert_recorded_once(chain, down.session_id, trained_run.reports)
    assert sum(chain.claimable(n) for n in range(10)) == sum(
        sum(expected_shares(chain, r, REWARD).values()) for r in trained_run.reports
    )


def test_a_slow_chain_does_not_slow_the_round_loop(trained_run) -> None:
    provider = flaky_provider()
    chain = ChainClient.embedded(provider=provider)
    provider.delay = 0.3  # every RPC call now takes 0.3 s
    bus = EventBus()
    recorder = ChainRecorder(chain, bus, backoff_s=0.01)
    took = []
    for report in trained_run.reports:
        t0 = time.perf_counter()
        bus.emit(report)  # what the coordinator does at the end of a round
        took.append(time.perf_counter() - t0)
    assert max(took) < 0.2 and recorder.status().sent == 0
    provider.delay = 0.0
    assert recorder.close(timeout=60).sent == 3
    assert_recorded_once(chain, recorder.session_id, trained_run.reports)


# -- exactly once across crashes ---------------------------------------------------------------------------
def test_a_crash_between_send_and_ack_does_not_record_or_pay_twice(chain, trained_run, tmp_path, monkeypatch) -> None:
    path, reports = tmp_path / "outbox.jsonl", trained_run.reports
    bus = EventBus()
    first = ChainRecorder(chain, bus, outbox=path, reward_per_round=REWARD, background=False)
    real_fund = chain.fund_round

    def fund_then_lose_the_ack(*args, **kwargs):
        real_fund(*args, **kwargs)  # mined and paid...
        raise ConnectionError("connection reset before the receipt came back")

    monkeypatch.setattr(chain, "fund_round", fund_then_lose_the_ack)
    bus.emit(reports[0])
    status = first.flush(timeout=None)  # one pass: record + fund went through, the ack did not
    assert (status.pending, status.sent) == (1, 0) and chain.is_recorded(first.session_id, 1)
    paid = {n: chain.claimable(n) for n in range(10)}
    first.outbox.close()  # the process dies here
    monkeypatch.undo()

    second = ChainRecorder(chain, EventBus(), outbox=path, reward_per_round=REWARD, background=False)
    assert second.session_id == first.session_id and second.status().pending == 1
    status = second.flush()
    assert (status.pending, status.sent, status.already) == (0, 1, 1)
    assert_recorded_once(chain, second.session_id, reports[:1])
    assert {n: chain.claimable(n) for n in range(10)} == paid  # not funded a second time


def test_already_recorded_revert_counts_as_success(chain, trained_run, monkeypatch) -> None:
    # A lost race: the check said "not recorded", but by the time the transaction ran the round was.
    first_bus, second_bus = EventBus(), EventBus()
    first = ChainRecorder(chain, first_bus, background=False)
    first_bus.emit(trained_run.reports[0])
    assert first.flush().sent == 1
    second = ChainRecorder(chain, second_bus, session_id=first.session_id, background=False)
    monkeypatch.setattr(chain, "is_recorded", lambda *a: False)
    second_bus.emit(trained_run.reports[0])
    status = second.flush()
    assert (status.pending, status.sent, status.already, status.failed) == (0, 1, 1, 0)
    monkeypatch.undo()
    assert_recorded_once(chain, first.session_id, trained_run.reports[:1])


def test_reverts_are_parked_not_retried_and_can_be_requeued(chain, trained_run) -> None:
    bus = EventBus()
    recorder = ChainRecorder(chain, bus, background=False)
    bus.emit(trained_run.reports[0])
    recorder.flush()
    chain.complete_session(recorder.session_id)  # closed: recordRound now reverts SessionNotActive
    bus.emit(trained_run.reports[1])
    status = recorder.flush()
    assert (status.pending, status.sent, status.failed) == (0, 1, 1)
    assert "SessionNotActive" in recorder.failures()[2]
    assert recorder.retry_failed() == 1 and recorder.status().pending == 1


def test_a_node_without_an_account_parks_its_round_until_it_has_one(chain, trained_run, monkeypatch) -> None:
    known = NodeAccounts(seed=None, addresses={n: chain.accounts.address(n) for n in range(9)})  # not node 9
    monkeypatch.setattr(chain, "accounts", known)
    bus = EventBus()
    recorder = ChainRecorder(chain, bus, background=False)
    bus.emit(trained_run.reports[0])  # queued all the same: nothing is lost
    status = recorder.flush()
    assert (status.pending, status.failed) == (0, 1) and "node 9 has no account" in recorder.failures()[1]
    monkeypatch.undo()  # node 9 gets its account
    recorder.retry_failed()
    assert recorder.flush().sent == 1
    assert_recorded_once(chain, recorder.session_id, trained_run.reports[:1])


def test_a_replayed_round_is_queued_once(trained_run) -> None:
    # A run resumed from a checkpoint emits rounds it emitted before; the outbox keeps the first.
    outbox = Outbox(None)
    chain = SimpleNamespace(chain_id=1, tracker_address="0x" + "11" * 20)  # the two Ledger facts an outbox binds to
    bus = EventBus()
    recorder = ChainRecorder(chain, bus, outbox=outbox, background=False)  # type: ignore[arg-type]
    for report in trained_run.reports + trained_run.reports[1:]:
        bus.emit(report)
    assert recorder.status().pending == 3


# -- the outbox on disk ------------------------------------------------------------------------------------
def test_outbox_lives_in_the_run_folder_and_survives_a_torn_line(chain, trained_run, tmp_path) -> None:
    folder = RunFolder.create(tmp_path, "run-1", {})
    source = SimpleNamespace(bus=EventBus(), run_folder=folder, run_id="run-1")
    recorder = ChainRecorder(chain, source, background=False)
    source.bus.emit(trained_run.reports[0])
    source.bus.emit(trained_run.reports[1])
    recorder.flush()
    recorder.close()
    path = folder.path / FILENAME
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [entry["op"] for entry in lines] == ["session", "round", "round", "ack", "ack"]
    assert lines[0]["run_id"] == "run-1" and lines[0]["tracker"] == chain.deployment.tracker
    with open(path, "ab") as f:  # a crash in the middle of the next append
        f.write(b'{"op":"round","round":3,"contr')
    reopened = Outbox(path)
    assert reopened.counts() == {"pending": 0, "sent": 2, "failed": 0}
    assert path.read_bytes().endswith(b"\n")
    reopened.put(3, [], None)
    assert Outbox(path).counts()["pending"] == 1


def test_an_outbox_for_another_chain_opens_a_new_session_there_and_sends_every_round(
    chain, trained_run, tmp_path
) -> None:
    # Prepare: an outbox whose rounds were acknowledged by a chain this process cannot reach any more.
    path = tmp_path / "outbox.jsonl"
    old = Outbox(path)
    old.open_session({"session_id": "0x" + "ab" * 32, "chain_id": 999, "tracker": "0x" + "00" * 20})
    for report in trained_run.reports[:2]:
        old.put(report.round, contributions(report), REWARD)
    old.ack(1, tx=None, already=False)
    old.close()

    # Execute
    recorder = ChainRecorder(chain, EventBus(), outbox=path, background=False)
    queued = recorder.status()
    recorder.flush()

    # Assert: a new session of this chain's coordinator; both rounds (the acknowledged one too) once each.
    assert recorder.session_id != "0x" + "ab" * 32
    assert recorder.session_id.startswith(chain.coordinator.lower())
    assert (queued.pending, queued.sent) == (2, 0)
    assert_recorded_once(chain, recorder.session_id, trained_run.reports[:2])
    recorder.close()
    again = Outbox(path)
    assert again.counts() == {"pending": 0, "sent": 2, "failed": 0} and again.epochs == 1
    assert again.session["previous"] == "0x" + "ab" * 32 and again.session["tracker"] == chain.tracker_address
    again.close()


def test_a_fresh_chain_at_the_same_addresses_gets_every_round_once(chain, trained_run, tmp_path) -> None:
    # An embedded chain lives as long as its process: a resumed run meets a chain with the same
    # addresses (same deployer, same nonces) that has never heard of its session.
    tester = chain.w3.provider.ethereum_tester
    fresh = tester.take_snapshot()
    path = tmp_path / "outbox.jsonl"
    first = ChainRecorder(chain, EventBus(), outbox=path, background=False, reward_per_round=REWARD)
    for report in trained_run.reports[:2]:
        first.on_report(report)
    assert first.flush().sent == 2
    first.on_report(trained_run.reports[2])  # queued, not sent: the process dies here
    first.close(flush=False)
    old_session = first.session_id
    tester.revert_to_snapshot(fresh)  # the restart: same chain id and tracker, none of the state

    # Execute
    second = ChainRecorder(chain, EventBus(), outbox=path, background=False, reward_per_round=REWARD)
    for report in trained_run.reports:  # the resumed run replays what it emitted before
        second.on_report(report)
    status = second.flush()

    # Assert: every round once, in a new session; payments as the chain credited them.
    assert (status.pending, status.sent, status.failed) == (0, 3, 0)
    assert second.session_id != old_session and chain.session(old_session) is None
    assert_recorded_once(chain, second.session_id, trained_run.reports)
    assert second.paid_by_node() == {n: chain.claimable(n) for n in second.paid_by_node()}
    second.close()
    # Reopened on the same (now known) chain: nothing is sent again, no new session.
    third = ChainRecorder(chain, EventBus(), outbox=path, background=False, reward_per_round=REWARD)
    assert third.session_id == second.session_id and third.flush().sent == 3
    assert third.outbox.epochs == 1 and len(chain.history(second.session_id)) == 3
    third.close()


def test_a_torn_epoch_line_leaves_the_old_epoch_whole(chain, trained_run, tmp_path) -> None:
    path = tmp_path / "outbox.jsonl"
    recorder = ChainRecorder(chain, EventBus(), outbox=path, background=False)
    recorder.on_report(trained_run.reports[0])
    recorder.flush()
    recorder.close()
    with open(path, "ab") as f:  # killed while writing the new session's line
        f.write(b'{"op":"session","session_id":"0x' + b"cd" * 20)
    reopened = Outbox(path)
    assert reopened.epochs == 0 and reopened.counts() == {"pending": 0, "sent": 1, "failed": 0}
    assert reopened.session["session_id"] == recorder.session_id
    reopened.close()


def test_roundset_keeps_ranges() -> None:
    rounds = RoundSet()
    assert [rounds.add(r) for r in (1, 2, 3, 5, 4, 3, 10)] == [True] * 5 + [False, True]
    assert rounds.ranges == [(1, 5), (10, 10)] and len(rounds) == 6 and 4 in rounds and 6 not in rounds
