"""The live charts hold one point per round, fed from reports through the runner."""

from __future__ import annotations

import dataclasses

import pytest
from ui_support import coordinator

from hypergpu_lab.ui import RunCharts, Runner
from hypergpu_lab.ui.charts import PARTS, round_parts


def _charts(**options):  # type: ignore[no-untyped-def]
    runner = Runner(coordinator(**options))
    return runner, RunCharts(runner)


def test_charts_hold_one_point_per_round_after_n_rounds() -> None:
    # Prepare
    runner, charts = _charts()

    # Execute: three rounds, delivered in two batches
    runner.step()
    runner.flush()
    runner.step()
    runner.step()
    runner.flush()

    # Assert
    for chart in (charts.accuracy, charts.accuracy_time):
        assert [len(t["x"]) for t in chart.traces] == [3, 3]
    assert charts.accuracy.traces[0]["x"] == [1, 2, 3]
    assert [t["name"] for t in charts.round_time.traces] == list(PARTS)
    assert all(len(t["x"]) == 3 for t in charts.round_time.traces)
    (latency,) = charts.latency.traces
    assert latency["x"] == [1, 2, 3] and latency["y"] == [0, 1, 2, 3] and all(len(row) == 3 for row in latency["z"])
    (selection,) = charts.selection.traces
    assert selection["z"] == [[1, 1, 1]] * 4  # everyone selected and accepted, 3 times
    assert charts.batch_sizes.traces[0]["z"] == [[10, 10, 10]] * 4
    assert sum(charts.link_classes.traces[0]["y"]) == 4
    assert all(v > 0 for v in charts.rewards.traces[0]["y"])  # contribution scores (no chain attached)


def test_a_new_coordinator_empties_the_charts() -> None:
    runner, charts = _charts()
    runner.step()
    runner.flush()
    runner.set_coordinator(coordinator(3))
    assert charts.accuracy.traces[0]["x"] == [] and charts.latency.traces == []


def test_round_time_parts_add_up_to_the_round_duration() -> None:
    runner, _ = _charts()
    report = runner.step()
    assert sum(round_parts(report).values()) == pytest.approx(report.duration)


def test_the_adaptive_policy_decision_log_is_a_table() -> None:
    runner, charts = _charts(policy="adaptive")
    runner.step()
    runner.flush()
    assert "<table" in charts.decisions.value and "select" in charts.decisions.value


def test_a_diverged_loss_is_a_gap_not_an_invalid_json_number() -> None:
    runner, charts = _charts()
    report = dataclasses.replace(runner.step(), round=2, test_loss=float("nan"))
    runner.flush()

    runner.throttle.push(report)
    runner.flush()

    assert charts.accuracy.traces[1]["y"][-1] is None and charts.accuracy.traces[1]["x"][-1] == 2


def test_the_rewards_chart_shows_what_the_chain_credited_to_the_base_unit() -> None:
    pytest.importorskip("web3")
    from hypergpu_lab import ChainClient
    from hypergpu_lab.chain.rewards import to_tokens

    # Prepare: a pool that cannot split evenly, so float splitting would drift from the contract
    chain = ChainClient.embedded()
    pool = 10**18 + 7
    runner, charts = _charts(chain=chain, chain_options={"reward_per_round": pool, "background": False})
    recorder = runner.coord.recorder

    # Execute: three rounds reach the chart before they reach the chain, then the recorder sends them
    for _ in range(3):
        runner.step()
    runner.flush()
    queued = dict(zip(charts.rewards.traces[1]["x"], charts.rewards.traces[1]["y"]))
    recorder.flush()
    charts.refresh_rewards()
    chain.claim(2)

    # Assert: per node, the chart's integer total is what the chain credited (claimable + claimed)
    on_chain = {n: chain.claimable(n) + chain.claimed(n) for n in range(4)}
    assert recorder.status().sent == 3 and sum(on_chain.values()) > 0
    assert charts.rewards_by_node == {n: amount for n, amount in on_chain.items() if amount}
    credited, still_queued = charts.rewards.traces
    assert credited["y"] == [to_tokens(on_chain[n], chain.token_decimals) for n in range(4)]
    assert still_queued["y"] == [0.0] * 4
    assert queued == dict(zip(credited["x"], credited["y"]))  # the queued preview was the same split
    assert charts.rewards.plot_layout["yaxis"]["title"]["text"] == "reward (tokens)"
    assert sum(on_chain.values()) <= 3 * pool  # the dust stayed with the funder


def test_epsilon_chart_beside_accuracy_follows_a_dp_run() -> None:
    pytest.importorskip("dp_accounting")
    runner, charts = _charts(privacy={"mode": "central", "noise_multiplier": 1.0})
    reports = [runner.step() for _ in range(3)]
    runner.flush()

    epsilon, accuracy = charts.privacy.traces
    assert epsilon["x"] == [1, 2, 3] and epsilon["y"] == [r.epsilon for r in reports]
    assert epsilon["y"][0] < epsilon["y"][1] < epsilon["y"][2]
    assert accuracy["y"] == [r.test_accuracy for r in reports]


def test_epsilon_chart_stays_empty_without_dp() -> None:
    runner, charts = _charts()
    runner.step()
    runner.flush()
    assert [t["x"] for t in charts.privacy.traces] == [[], []]
