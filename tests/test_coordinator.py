"""The round loop as a user drives it: learning, determinism, resume, virtual time, faults, run control."""

from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np
import pytest
import torch

from hypergpu_lab import ConfigError, Coordinator, History, NodePool
from hypergpu_lab.network import Disconnect, LinkProfile
from hypergpu_lab.runs import RunFolder
from hypergpu_lab.strategies import FedAvg

pytestmark = pytest.mark.slow


def _pool(**kw: object) -> NodePool:
    opts = {"dataset": "digits", "partition": "iid", "network": "lan", "seed": 0, **kw}
    return NodePool.simulated(opts.pop("num_nodes", 10), **opts)  # type: ignore[arg-type]


def _strip_wall(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


def test_iid_digits_reaches_90_percent_in_10_rounds() -> None:
    history = Coordinator(model="cnn", pool=_pool(), strategy="fedavg").run(rounds=10, progress=False)
    assert history.final["round"] == 10
    assert history.final["test_accuracy"] >= 0.90


def test_dirichlet_01_label_skew_still_learns(record_property: pytest.RecordProperty) -> None:
    pool = _pool(partition="dirichlet", alpha=0.1, network="mixed")
    history = Coordinator(model="cnn", pool=pool).run(rounds=10, progress=False)
    acc = history.final["test_accuracy"]
    record_property("dirichlet_0.1_accuracy", acc)
    logging.getLogger(__name__).info("Dirichlet(0.1), 10 rounds: test accuracy %.3f", acc)
    assert acc >= 0.75 > history[0]["test_accuracy"]


def test_quickstart_call_from_the_readme_runs() -> None:
    pool = NodePool.simulated(10, dataset="digits", partition="dirichlet", alpha=0.5, network="mixed", seed=0)
    history = Coordinator(model="cnn", pool=pool, strategy="fedavg").run(rounds=3, progress=False)
    assert [r["round"] for r in history] == [1, 2, 3]
    assert all(r["t_end"] > r["t_start"] for r in history)


def test_same_seed_gives_identical_weights_and_metrics() -> None:
    # Prepare / Execute: two independent pools and coordinators, same config and seed.
    runs = []
    for _ in range(2):
        coord = Coordinator(pool=_pool(network="unstable-wan", partition="dirichlet"), deadline_s=3.0)
        runs.append((coord, coord.run(rounds=4, progress=False)))
    other = Coordinator(pool=_pool(network="unstable-wan", partition="dirichlet", seed=1), deadline_s=3.0)
    other.run(rounds=4, progress=False)

    # Assert: bit-identical weights and metrics; another seed differs.
    (a, ha), (b, hb) = runs
    assert torch.equal(a.weights, b.weights)
    assert _strip_wall(list(ha)) == _strip_wall(list(hb))
    assert not torch.equal(a.weights, other.weights)


def test_checkpoint_restore_continues_bit_identically(tmp_path) -> None:
    # Prepare: a run with stragglers, failures and a scheduled disconnect after the checkpoint.
    def make(folder: str) -> Coordinator:
        pool = _pool(network="unstable-wan", partition="dirichlet")
        pool.network.schedule(Disconnect(nodes=(2, 5), start=12.0, duration=6.0))
        run = RunFolder.create(tmp_path, folder, {"test": True})
        return Coordinator(pool=pool, deadline_s=3.0, checkpoint_every=5, run_dir=run, run_id="r")

    full = make("full")
    full.run(rounds=10, progress=False)

    half = make("half")
    half.run(rounds=5, progress=False)
    del half  # the process "dies" after round 5's checkpoint

    # Execute
    resumed = Coordinator.restore(tmp_path / "half")
    resumed.run(until=10, progress=False)

    # Assert: same weights bit for bit, same per-round metrics on disk, same virtual clock.
    assert resumed.round == 10
    assert torch.equal(resumed.weights, full.weights)
    assert resumed.clock.now == full.clock.now
    rows_full = RunFolder.open(tmp_path / "full").read_metrics()
    rows_half = RunFolder.open(tmp_path / "half").read_metrics()
    assert _strip_wall(rows_half) == _strip_wall(rows_full)
    assert [r["round"] for r in rows_half] == list(range(1, 11))
    assert any(n["status"] != "accepted" for r in rows_full for n in r["nodes"])
    assert [r["round"] for r in resumed.history] == list(range(1, 11))


def test_restore_from_a_checkpoint_file(tmp_path) -> None:
    a = Coordinator(pool=_pool(), model="mlp")
    a.run(rounds=2, progress=False)
    path = a.save_checkpoint(tmp_path / "c.ckpt")
    a.run(rounds=2, progress=False)

    b = Coordinator.restore(path)
    b.run(rounds=2, progress=False)

    assert b.round == 4 and torch.equal(a.weights, b.weights)


def _fixed_links(pool: NodePool, latency_ms: float) -> None:
    profile = LinkProfile(name="fixed", latency_ms=(0.0, 0.0), loss=0.0, bandwidth_mbps=100.0, jitter_ms=0.0)
    for link in pool.network.links.values():
        link.profile, link.base_latency_ms = profile, latency_ms


def test_500ms_links_add_simulated_time_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: identical pools except one-way latency 0 ms vs 500 ms; sleeping is forbidden.
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail(f"the core slept {s}s"))
    fast, slow = _pool(), _pool()
    _fixed_links(fast, 0.0)
    _fixed_links(slow, 500.0)

    # Execute
    cf, cs = Coordinator(pool=fast, model="mlp"), Coordinator(pool=slow, model="mlp")
    hf, hs = cf.run(rounds=3, progress=False), cs.run(rounds=3, progress=False)

    # Assert: every transfer takes exactly 0.5 s longer; a round (down + up) 1 s; learning identical.
    nbytes = cf.layout.nbytes
    for rec_f, rec_s in zip(list(cf.history.node_records), list(cs.history.node_records)):
        assert rec_f[1].download_s == pytest.approx(nbytes * 8 / 100e6, abs=1e-12)
        assert rec_s[1].download_s - rec_f[1].download_s == pytest.approx(0.5, abs=1e-9)
        assert rec_s[1].upload_s - rec_f[1].upload_s == pytest.approx(0.5, abs=1e-9)
    for rf, rs in zip(hf, hs):
        assert (rs["t_end"] - rs["t_start"]) - (rf["t_end"] - rf["t_start"]) == pytest.approx(1.0, abs=1e-9)
    assert torch.equal(cf.weights, cs.weights)


def test_arrival_order_does_not_change_the_aggregate() -> None:
    # Prepare: node i's link is slower than node i+1's in one pool and faster in the other, so updates
    # arrive in opposite orders; float sums depend on order, so only a canonical stacking order makes them equal.
    forward, backward = _pool(), _pool()
    _fixed_links(forward, 0.0)
    _fixed_links(backward, 0.0)
    for i in forward.network.links:
        forward.network.links[i].base_latency_ms = 10.0 * i
        backward.network.links[i].base_latency_ms = 10.0 * (len(forward) - i)

    # Execute
    cf, cb = Coordinator(pool=forward, model="mlp"), Coordinator(pool=backward, model="mlp")
    hf, hb = cf.run(rounds=3, progress=False), cb.run(rounds=3, progress=False)

    # Assert: different arrival orders, bit-identical models and metrics.
    def arrivals(c: Coordinator) -> list[int]:
        last = [rec for r, rec in c.history.node_records if r == 3]
        return [rec.node for rec in sorted(last, key=lambda rec: rec.arrival)]

    assert arrivals(cf) != arrivals(cb)
    assert torch.equal(cf.weights, cb.weights)
    assert [(r["test_accuracy"], r["test_loss"], r["train_loss"]) for r in hf] == [
        (r["test_accuracy"], r["test_loss"], r["train_loss"]) for r in hb
    ]


class _Recorder:
    """Wraps the trainer to keep every node's local result of the last round."""

    def __init__(self, coord: Coordinator) -> None:
        self.inner, self.results = coord.trainer.train, {}
        coord.trainer.train = self  # type: ignore[method-assign]

    def __call__(self, weights, jobs):  # type: ignore[no-untyped-def]
        out = self.inner(weights, jobs)
        self.results = {r.node: r for r in out}
        return out


def test_deadline_stragglers_are_counted_but_never_applied() -> None:
    # Prepare: heterogeneous links and a deadline that some nodes miss.
    pool = _pool(network="unstable-wan")
    coord = Coordinator(pool=pool, model="mlp", deadline_s=1.2)
    recorder = _Recorder(coord)
    before = coord.weights.clone()

    # Execute
    report = coord.step()

    # Assert: counts add up; the new model is FedAvg over the accepted nodes alone (numpy oracle).
    statuses = {r.node: r.status for r in report.nodes}
    assert report.accepted + report.straggled + report.failed + report.rejected == report.selected == 10
    assert report.straggled >= 1 and report.accepted >= 1
    assert report.t_end == pytest.approx(report.t_start + 1.2)
    late = [r for r in report.nodes if r.status == "straggled"]
    assert all(r.arrival > report.t_end and "after the close" in r.reason for r in late)
    ok = [n for n, s in statuses.items() if s == "accepted"]
    n = np.array([recorder.results[i].num_samples for i in ok], dtype=np.float64)
    d = np.stack([recorder.results[i].delta.numpy() for i in ok]).astype(np.float64)
    expected = before.numpy() + (n[:, None] * d).sum(0) / n.sum()
    np.testing.assert_allclose(coord.weights.numpy(), expected, atol=1e-6, rtol=0)


def test_disconnected_node_fails_after_its_retries_and_others_continue() -> None:
    # Prepare: node 3 is unreachable for the whole run.
    pool = _pool()
    pool.network.schedule(Disconnect(nodes=(3,), start=0.0, duration=None))
    coord = Coordinator(pool=pool, model="mlp")

    # Execute
    reports = [coord.step() for _ in range(2)]

    # Assert
    for rep in reports:
        rec = next(r for r in rep.nodes if r.node == 3)
        assert rec.status == "failed" and rec.reason.startswith("download disconnected")
        assert rec.download_attempts == 1 + pool.network.retry.max_retries and rec.update_norm is None
        assert rep.accepted == 9 and rep.failed == 1
    assert pool[3].consecutive_failures == 2 and pool[0].consecutive_failures == 0
    assert pool[0].last_heartbeat > 0

    # Once silent for the heartbeat timeout it is detected as failed and no longer selected.
    third = coord.step()
    assert third.selected == 9 and 3 not in {r.node for r in third.nodes}
    (found,) = third.detections
    assert found["node"] == 3 and found["kind"] == "failed"
    assert found["since"] == 0.0 and found["at"] == pytest.approx(coord.config.heartbeat_timeout_s)


def test_clients_per_round_and_fraction() -> None:
    c = Coordinator(pool=_pool(), model="mlp", clients_per_round=3)
    f = Coordinator(pool=_pool(), model="mlp", fraction=0.5)
    assert c.step().selected == 3 and f.step().selected == 5


def test_subscribers_get_reports_and_a_failing_one_does_not_stop_training(caplog) -> None:
    coord = Coordinator(pool=_pool(), model="mlp")
    seen: list[int] = []
    coord.bus.subscribe(lambda rep: (_ for _ in ()).throw(RuntimeError("chart broke")))
    coord.bus.subscribe(lambda rep: seen.append(rep.round))

    with caplog.at_level(logging.ERROR):
        coord.run(rounds=2, progress=False)

    assert seen == [1, 2] and coord.bus.errors == 2
    assert "chart broke" in caplog.text


def test_history_memory_is_bounded() -> None:
    h = History(max_rounds=3, max_node_records=7)
    coord = Coordinator(pool=_pool(), model="mlp", fraction=0.3)
    coord.bus.subscribe(h)
    coord.run(rounds=5, progress=False)
    assert [r["round"] for r in h] == [3, 4, 5] and len(h.node_records) == 7 and h.total_rounds == 5


def test_background_run_pause_resume_stop() -> None:
    # Prepare: the round-2 report pauses the run from inside the loop, deterministically.
    coord = Coordinator(pool=_pool(), model="mlp", fraction=0.3)
    paused = threading.Event()

    def at_round_two(rep) -> None:  # type: ignore[no-untyped-def]
        if rep.round == 2:
            coord.pause()
            paused.set()

    coord.bus.subscribe(at_round_two)

    # Execute / Assert: paused after round 2, then resumed to the end.
    coord.start(rounds=5)
    assert paused.wait(60)
    assert not coord.control.wait(0.3)
    assert coord.round == 2 and coord.status == "paused" and coord.control.active
    coord.resume()
    coord.wait(60)
    assert coord.round == 5 and coord.status == "finished"

    # A stop ends the run between rounds.
    coord.start(rounds=1000)
    coord.stop(timeout=60)
    assert coord.status == "stopped" and coord.round < 1005
    with pytest.raises(ConfigError, match="rounds"):
        coord.start()


def test_errors_in_the_background_thread_surface_on_wait() -> None:
    class Broken(FedAvg):
        def aggregate(self, *args):  # type: ignore[no-untyped-def]
            raise ArithmeticError("bad aggregate")

    coord = Coordinator(pool=_pool(), model="mlp", strategy=Broken())
    coord.start(rounds=3)
    with pytest.raises(ArithmeticError, match="bad aggregate"):
        coord.wait(60)
    assert coord.status == "failed"


def test_bad_options_and_custom_models() -> None:
    with pytest.raises(ConfigError, match="lrr"):
        Coordinator(pool=_pool(), lrr=0.1)
    with pytest.raises(ConfigError, match="train.lr"):
        Coordinator(pool=_pool(), lr=-1.0)
    with pytest.raises(ConfigError, match="rounds"):
        Coordinator(pool=_pool(), model="mlp").run(rounds=-1)

    custom = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    coord = Coordinator(pool=_pool(), model=custom)
    coord.run(rounds=2, progress=False)
    assert coord.config.model == "custom" and coord.history.final["test_accuracy"] > 0.5


def test_metrics_lines_are_plain_json(tmp_path) -> None:
    run = RunFolder.create(tmp_path, "r", {})
    Coordinator(pool=_pool(), model="mlp", run_dir=run).run(rounds=2, progress=False)
    lines = run.metrics_path.read_text().splitlines()
    row = json.loads(lines[-1])
    assert len(lines) == 2 and row["round"] == 2 and len(row["nodes"]) == 10
    assert {"download_s", "compute_s", "upload_s", "waiting_s", "status", "batch_size"} <= set(row["nodes"][0])


def test_policy_by_name_and_restore_without_passing_it(tmp_path) -> None:
    # Prepare: the adaptive policy chosen through TrainConfig, as a config file or the CLI would.
    def make() -> Coordinator:
        return Coordinator(
            pool=_pool(network="unstable-wan", num_nodes=12),
            model="mlp",
            policy="adaptive",
            policy_options={"mode": "proactive"},
            clients_per_round=4,
        )

    full = make()
    full.run(rounds=6, progress=False)
    half = make()
    half.run(rounds=3, progress=False)
    path = half.save_checkpoint(tmp_path / "c.ckpt")

    # Execute
    resumed = Coordinator.restore(path)
    resumed.run(rounds=3, progress=False)

    # Assert
    assert type(full.policy).__name__ == "AdaptivePolicy" and type(resumed.policy).__name__ == "AdaptivePolicy"
    assert torch.equal(resumed.weights, full.weights)
    with pytest.raises(ConfigError, match="train.policy"):
        Coordinator(pool=_pool(), policy="oort")
    with pytest.raises(ConfigError, match="policy_options"):
        Coordinator(pool=_pool(), policy_options={"mode": "x"})
