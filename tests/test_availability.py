"""Availability models and partial work, in virtual time: trace replay, Markov statistics, diurnal windows."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hypergpu_lab import Coordinator, NodePool, checkpoint
from hypergpu_lab.availability import SYNTHETIC_TRACE, Diurnal, Markov, Trace
from hypergpu_lab.config import TrainConfig
from hypergpu_lab.errors import ConfigError


def _documented(path: Path) -> list[tuple[float, list[int]]]:
    """The '#   t = X -> ids' lines of a trace header."""
    found = re.findall(r"^#\s+t = ([\d.]+)\s+->\s+([\d ]+)$", path.read_text(), flags=re.M)
    return [(float(t), [int(n) for n in ids.split()]) for t, ids in found]


def test_the_shipped_trace_replays_exactly_the_documented_online_sets() -> None:
    # Prepare
    documented = _documented(SYNTHETIC_TRACE)
    assert len(documented) >= 5

    # Execute / Assert
    trace = Trace(path="synthetic")
    for t, ids in documented:
        assert trace.online_set(list(range(8)), t) == ids, f"t = {t}"


def test_trace_switch_times_and_format_errors(tmp_path: Path) -> None:
    trace = Trace(path="synthetic")
    assert trace.offline_from(6, 39.0) == 40.0  # node 6's interval ends at 40
    assert trace.offline_from(3, 5.0) == 5.0  # offline now
    assert trace.offline_from(0, 1e9) == float("inf")  # unlisted: always online
    assert trace.next_change(4.6, [3, 4]) == 10.0  # node 3 returns at 10
    bad = tmp_path / "bad.trace"
    bad.write_text("# ok\n1 0 5\n2 7 3\n")
    with pytest.raises(ConfigError, match=r"bad\.trace:3"):
        Trace(path=bad)


def _pool(n: int = 8, network: str = "lan") -> NodePool:
    return NodePool.simulated(n, dataset="digits", partition="iid", network=network, seed=1)


def test_a_coordinator_selects_exactly_the_trace_online_set_and_drops_nodes_that_leave(tmp_path: Path) -> None:
    # Prepare: rounds last well under a second on a LAN; node 2 leaves at 0.05 s, node 3 is back at 0.5 s
    path = tmp_path / "short.trace"
    path.write_text("2 0 0.05\n3 0 0.01\n3 0.5 100\n")
    coord = Coordinator(
        pool=_pool(4), model="mlp", availability="trace", availability_options={"path": str(path)}, batch_size=64
    )
    trace = Trace(path=path)

    # Execute
    reports = [coord.step() for _ in range(6)]

    # Assert: every round selects the online set at its start; a node offline before its upload arrives fails
    assert any(3 in {r.node for r in rep.nodes} for rep in reports)
    for rep in reports:
        assert sorted(r.node for r in rep.nodes) == trace.online_set([0, 1, 2, 3], rep.t_start)
        for rec in rep.nodes:
            arrived_before_leaving = rec.arrival is not None and rec.arrival <= trace.offline_from(
                rec.node, rep.t_start
            )
            if rec.status == "failed":
                assert "offline" in rec.reason
            else:
                assert arrived_before_leaving
    assert any(r.node == 2 and r.status == "failed" for rep in reports for r in rep.nodes)


def test_below_quorum_the_run_waits_in_virtual_time_for_nodes_to_come_online(tmp_path: Path) -> None:
    path = tmp_path / "late.trace"
    path.write_text("0 30 100\n1 45 100\n")
    coord = Coordinator(pool=_pool(2), model="mlp", availability="trace", availability_options={"path": str(path)})
    rep = coord.step()
    assert rep.t_start == 30.0 and [r.node for r in rep.nodes] == [0]


def test_markov_sojourns_and_stationary_share_match_the_rates() -> None:
    # Prepare: up 10 s on average, down 5 s: online 2/3 of the time
    model = Markov(up_rate=1 / 5, down_rate=1 / 10, seed=3)

    # Execute
    online = np.mean([model.online(n, 1000.0) for n in range(3000)])
    sw = np.diff(model._switches(0, 50_000.0))
    ups, downs = sw[0::2], sw[1::2]  # switch lists start with an 'on', then alternate

    # Assert: within 5 standard errors
    assert abs(online - 2 / 3) < 5 * np.sqrt(2 / 9 / 3000)
    assert abs(ups.mean() - 10) < 5 * 10 / np.sqrt(len(ups))
    assert abs(downs.mean() - 5) < 5 * 5 / np.sqrt(len(downs))


def test_markov_answers_do_not_depend_on_the_order_of_questions() -> None:
    a, b = Markov(seed=7), Markov(seed=7)
    times = [3000.0, 10.0, 700.0, 0.0]
    first = [a.online(n, t) for t in times for n in range(20)]
    backwards = {(n, t): b.online(n, t) for t in reversed(times) for n in reversed(range(20))}
    assert first == [backwards[(n, t)] for t in times for n in range(20)]


def test_diurnal_windows_follow_the_local_hour_of_each_region() -> None:
    # A day of 24 virtual seconds: t is the UTC hour. Online 22:00-07:00 local.
    model = Diurnal(regions={0: "eu-west", 1: "us-east"}, start_hour=22, end_hour=7, day_s=24)
    assert [model.online(0, t) for t in (0, 6.9, 7, 12, 21.9, 22, 23.5, 24 + 3)] == [
        True, True, False, False, False, True, True, True,
    ]  # fmt: skip
    # us-east is UTC-5: local 22:00-07:00 is UTC 03:00-12:00
    assert [model.online(1, t) for t in (2.9, 3, 11.9, 12, 27)] == [False, True, True, False, True]
    assert model.offline_from(1, 4.0) == 12.0


def test_partial_work_completes_a_share_of_the_steps_and_computes_less() -> None:
    # Prepare
    full = Coordinator(pool=_pool(), model="mlp", batch_size=8)
    part = Coordinator(pool=_pool(), model="mlp", batch_size=8, partial_work=0.2)

    # Execute
    a, b = full.step(), part.step()

    # Assert
    for ra, rb in zip(a.nodes, b.nodes):
        assert ra.work_done is None and 0.2 <= rb.work_done <= 1.0
        assert rb.compute_s == pytest.approx(ra.compute_s * rb.work_done)
    assert any(r.work_done < 0.9 for r in b.nodes)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"train\.availability: got 'sometimes'"):
        TrainConfig(availability="sometimes")
    with pytest.raises(ConfigError, match=r"train\.availability_options\.path"):
        TrainConfig(availability="trace", availability_options={"path": "/nonexistent.trace"})
    with pytest.raises(ConfigError, match=r"train\.availability_options\.rate: .*up_rate, down_rate"):
        TrainConfig(availability="markov", availability_options={"rate": 1})
    with pytest.raises(ConfigError, match=r"train\.availability_options\.up_rate"):
        TrainConfig(availability="markov", availability_options={"up_rate": 0})
    with pytest.raises(ConfigError, match=r"train\.partial_work"):
        TrainConfig(partial_work=0)


def test_markov_availability_and_partial_work_resume_bit_for_bit(tmp_path: Path) -> None:
    opts = {"availability": "markov", "availability_options": {"up_rate": 1.0, "down_rate": 1.0}, "partial_work": 0.5}
    whole = Coordinator(pool=_pool(), model="mlp", **opts)
    whole.run(rounds=4, progress=False)
    half = Coordinator(pool=_pool(), model="mlp", **opts)
    half.run(rounds=2, progress=False)
    half.save_checkpoint(tmp_path / "m.ckpt")
    resumed = Coordinator(pool=_pool(), model="mlp", **opts)
    resumed.load_state_dict(checkpoint.load(tmp_path / "m.ckpt"))
    resumed.run(rounds=2, progress=False)
    assert torch.equal(resumed.weights, whole.weights)
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in whole.history.rounds][2:]
    assert [{k: v for k, v in r.items() if k != "wall_s"} for r in resumed.history.rounds] == strip
