"""The recorder's queue, attacked with bad values and failing rounds: nothing poisons it, nothing jams it."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

pytest.importorskip("web3", reason="the chain extras (web3, eth-tester[py-evm]) are not installed")

from chain_support import REWARD

from hypergpu_lab.chain import ChainClient, ChainRecorder
from hypergpu_lab.chain.outbox import Outbox
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.events import EventBus


@pytest.mark.parametrize("bad", [2**256, 2**128, math.nan, math.inf, 1.5, "10", -1, True, [10]])
def test_a_reward_the_chain_cannot_take_is_refused_when_attaching(chain: ChainClient, bad, tmp_path) -> None:
    source = SimpleNamespace(bus=EventBus(), run_folder=None)
    with pytest.raises(ConfigError) as exc:
        chain.attach(source, reward_per_round=bad, background=False, outbox=tmp_path / "o.jsonl")
    assert exc.value.field == "reward_per_round" and "integer number of token base units" in str(exc.value)
    assert not (tmp_path / "o.jsonl").exists() or "reward" not in (tmp_path / "o.jsonl").read_text()


def test_integer_rewards_of_any_integer_type_are_accepted(chain: ChainClient) -> None:
    np = pytest.importorskip("numpy")
    for good in (0, 10**18, np.int64(10**18), 2**128 - 1, None):
        recorder = ChainRecorder(chain, EventBus(), reward_per_round=good, background=False)
        assert recorder.reward_per_round == (None if good is None else int(good))


def test_a_poisoned_outbox_parks_its_bad_rounds_and_sends_the_rest(chain: ChainClient, trained_run, tmp_path) -> None:
    # Prepare: an outbox an older version wrote, with values the chain cannot take in rounds 1 and 2.
    path = tmp_path / "outbox.jsonl"
    first = ChainRecorder(chain, EventBus(), outbox=path, background=False)
    first.outbox.close()
    good = [
        {"node": rec.node, "score": 1000 + rec.node, "update_hash": "0x" + "ab" * 32}
        for rec in trained_run.reports[0].nodes
        if rec.status == "accepted"
    ]
    with open(path, "a") as f:
        f.write(json.dumps({"op": "round", "round": 1, "contributions": good, "reward": 2**256}) + "\n")
        f.write('{"op":"round","round":2,"contributions":' + json.dumps(good) + ',"reward":NaN}\n')
        f.write(json.dumps({"op": "round", "round": 3, "contributions": good, "reward": REWARD}) + "\n")

    # Execute
    recorder = ChainRecorder(chain, EventBus(), outbox=path, background=False)
    status = recorder.flush(timeout=60)

    # Assert: round 3 delivered; 1 and 2 parked with a reason naming the field; a retry does not resend them.
    assert (status.pending, status.sent, status.failed) == (0, 1, 2)
    assert [h.round for h in chain.history(recorder.session_id)] == [3]
    assert all("reward" in recorder.failures()[r] for r in (1, 2))
    assert recorder.retry_failed() == 0 and recorder.status().pending == 0
    recorder.close(flush=False)


def test_a_poisoned_round_does_not_block_later_rounds(chain: ChainClient, trained_run, monkeypatch) -> None:
    # Prepare: the ledger fails round 1 with an error that is not a revert and not the network (what a
    # value web3 cannot encode looks like), and round 2 with an unknown error on every try.
    reports = trained_run.reports
    bus = EventBus()
    recorder = ChainRecorder(chain, bus, reward_per_round=REWARD, background=False, backoff_s=0.01, max_attempts=3)
    real = chain.record_round

    def poisoned(session_id, round, rows, **kw):
        if round == 1:
            raise TypeError("cannot encode 1.5 as uint256")
        if round == 2:
            raise RuntimeError("the node answered something strange")
        return real(session_id, round, rows, **kw)

    monkeypatch.setattr(chain, "record_round", poisoned)

    # Execute
    for report in reports:
        bus.emit(report)
    status = recorder.flush(timeout=30)

    # Assert: round 3 went through; 1 parked at once, 2 after three tries; each with its reason.
    assert (status.pending, status.sent, status.failed) == (0, 1, 2)
    failures = recorder.failures()
    assert "TypeError: cannot encode" in failures[1] and "gave up after 3 attempts" in failures[2]
    assert [h.round for h in chain.history(recorder.session_id)] == [3]
    monkeypatch.undo()  # fixed: both go through when re-queued, once each
    assert recorder.retry_failed() == 2 and recorder.flush(timeout=30).sent == 3
    assert sorted(h.round for h in chain.history(recorder.session_id)) == [1, 2, 3]


def test_a_scorer_giving_a_bad_value_parks_that_round_only(chain: ChainClient, trained_run) -> None:
    bus = EventBus()
    calls = {"round": 0}

    def flaky_scorer(rec):
        return {1: math.nan, 2: 1.5}.get(calls["round"], 5)

    recorder = ChainRecorder(chain, bus, scorer=flaky_scorer, background=False)
    for report in trained_run.reports:
        calls["round"] = report.round
        bus.emit(report)
    status = recorder.flush(timeout=30)
    assert (status.sent, status.failed) == (1, 2)
    assert "score" in recorder.failures()[1] and "score" in recorder.failures()[2]
    assert recorder.retry_failed() == 0


def test_an_unreachable_chain_waits_in_order_and_gives_up_nothing(chain: ChainClient, trained_run, monkeypatch) -> None:
    bus = EventBus()
    recorder = ChainRecorder(chain, bus, background=False, backoff_s=0.001, max_attempts=2)
    real = chain.record_round
    down = {"on": True}

    def unreachable(*a, **kw):
        if down["on"]:
            raise ConnectionError("connection refused")
        return real(*a, **kw)

    monkeypatch.setattr(chain, "record_round", unreachable)
    for report in trained_run.reports:
        bus.emit(report)
    status = recorder.flush(timeout=0.3)  # many more tries than max_attempts
    assert (status.pending, status.failed) == (3, 0) and status.attempts > 2
    down["on"] = False
    assert recorder.flush(timeout=30).sent == 3
    assert [h.round for h in chain.history(recorder.session_id)] == [1, 2, 3]


def test_outbox_refuses_to_store_a_value_the_chain_cannot_take(tmp_path) -> None:
    outbox = Outbox(tmp_path / "o.jsonl")
    row = {"node": 0, "score": 1, "update_hash": "0x" + "00" * 32}
    for bad_row, bad_reward in (({**row, "score": 2**96}, None), ({**row, "score": 0.5}, None), (row, 1.5)):
        with pytest.raises(ConfigError):
            outbox.put(1, [bad_row], bad_reward)
    with pytest.raises(ConfigError, match="update_hash"):
        outbox.put(1, [{**row, "update_hash": "0x12"}], None)
    assert outbox.put(1, [row], 7) and len((tmp_path / "o.jsonl").read_text().splitlines()) == 1
