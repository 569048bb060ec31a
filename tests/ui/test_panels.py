"""The panels driven as a person would, without a browser: ``.click()`` and ``.value``."""

from __future__ import annotations

import threading

import pytest
from ui_support import WAIT_S, at_boundary, coordinator, until

from hypergpu_lab.chain.scoring import score
from hypergpu_lab.faults import Fault
from hypergpu_lab.network import PROFILES, LinkProfile, ProfileChange
from hypergpu_lab.ui import ChainPanel, ControlPanel, Dashboard, NodesPanel, Runner, build_coordinator
from hypergpu_lab.ui.nodes_panel import map_node
from hypergpu_lab.ui.view import RunView


# -- control panel -------------------------------------------------------------------------------
def test_start_pause_resume_stop_buttons_change_the_coordinators_state(tmp_path) -> None:
    # Prepare
    coord = coordinator(run_dir=tmp_path, name="buttons", checkpoint_every=1000)
    panel = ControlPanel(coord)
    panel.fields["rounds"].value = 200

    # Execute + Assert, button by button
    panel.buttons["start"].click()
    assert coord.status == "running" and panel.buttons["start"].disabled and not panel.buttons["pause"].disabled
    until(lambda: coord.round >= 1)

    panel.buttons["pause"].click()
    at_boundary(panel.runner)
    paused_at = coord.round
    assert coord.status == "paused"
    assert (coord.run_folder.checkpoints / f"round-{paused_at:012d}.ckpt").exists()
    panel._show_status(panel.runner)
    assert not panel.buttons["resume"].disabled and "paused" in panel.status.value

    panel.buttons["resume"].click()
    assert coord.status == "running"
    until(lambda: coord.round > paused_at)

    panel.buttons["stop"].click()
    panel.runner.wait(WAIT_S)
    assert coord.status == "stopped" and not panel.runner.active
    assert "stopped at round" in panel.status.value and not panel.buttons["start"].disabled
    panel.close()


def test_validation_messages_appear_next_to_each_bad_field_and_block_start() -> None:
    panel = ControlPanel(coordinator(), chart=False)

    panel.fields["nodes"].value = 0
    panel.fields["lr"].value = -1.0

    assert "pool.num_nodes: got 0" in panel.errors["nodes"].value
    assert "train.lr: got -1.0" in panel.errors["lr"].value
    assert panel.errors["model"].value == "" and panel.buttons["start"].disabled

    panel.fields["nodes"].value = 3
    panel.fields["lr"].value = 0.1
    assert panel.errors["nodes"].value == panel.errors["lr"].value == ""
    assert not panel.buttons["start"].disabled


def test_a_pair_valid_only_together_is_judged_together() -> None:
    panel = ControlPanel(coordinator(), chart=False)

    panel.fields["partition"].value = "natural"  # only the synthetic dataset comes split by node
    assert "pool.partition" in panel.errors["partition"].value

    panel.fields["dataset"].value = "synthetic"
    assert panel.errors["partition"].value == panel.errors["dataset"].value == ""


def test_a_coordinator_with_the_default_adaptive_mode_is_not_rebuilt_by_its_own_settings() -> None:
    from hypergpu_lab import Coordinator, NodePool

    coord = Coordinator(pool=NodePool.simulated(num_nodes=4, seed=1), model="mlp", policy="adaptive")
    built = []
    panel = ControlPanel(coord, factory=lambda config: built.append(config) or build_coordinator(config))
    try:
        assert panel.fields["policy"].value == "adaptive-reactive"
        panel.buttons["step"].click()
        assert built == [] and panel.runner.coord is coord, "Step rebuilt a coordinator nothing had changed"
        assert coord.round == 1
    finally:
        panel.runner.close()


def test_changed_settings_rebuild_the_coordinator_on_step_and_not_while_a_run_is_active() -> None:
    # Prepare
    built = []

    def factory(config):  # type: ignore[no-untyped-def]
        built.append(config)
        return build_coordinator(config)

    first = coordinator()
    panel = ControlPanel(first, factory=factory, chart=False)

    # Execute: the form is read-only while a run is active
    panel.fields["rounds"].value = 2
    panel.buttons["start"].click()
    locked = panel.fields["nodes"].disabled
    panel.runner.wait(WAIT_S)
    panel._show_status(panel.runner)
    panel.fields["nodes"].value = 3
    panel.fields["policy"].value = "adaptive-proactive"
    panel.buttons["step"].click()

    # Assert
    coord = panel.runner.coord
    assert locked and not panel.fields["nodes"].disabled
    assert len(built) == 1 and coord is not first and len(coord.pool) == 3 and coord.round == 1
    assert type(coord.policy).__name__ == "AdaptivePolicy" and coord.policy.mode.name == "proactive"
    assert first.round == 2


# -- node panel ------------------------------------------------------------------------------------
def _nodes_panel(**options):  # type: ignore[no-untyped-def]
    runner = Runner(coordinator(**options))
    return runner, NodesPanel(runner)


def _record(report, node):  # type: ignore[no-untyped-def]
    return next(r for r in report.nodes if r.node == node)


def test_a_latency_spike_shows_in_the_next_rounds_records_for_that_node() -> None:
    runner, panel = _nodes_panel()
    before = runner.step()
    panel.select(1)
    panel.extra_ms.value, panel.spike_s.value = 500.0, 100.0

    panel.buttons["spike"].click()
    after = runner.step()

    assert _record(before, 1).download_s < 0.1
    assert _record(after, 1).download_s >= 0.5 and _record(after, 1).upload_s >= 0.5
    assert _record(after, 2).download_s < 0.1
    assert "latency spike" in panel.message.value


def test_crash_makes_the_node_fail_and_recover_brings_it_back() -> None:
    runner, panel = _nodes_panel()
    panel.select(2)

    panel.buttons["crash"].click()
    crashed = runner.step()
    runner.flush()
    row = runner.view.row(2)
    panel.buttons["recover"].click()
    recovered = runner.step()

    rec = _record(crashed, 2)
    assert rec.status == "failed" and "disconnected" in rec.reason and rec.injected == "crash"
    assert row.state == "disconnected" and "failed" in panel.table.value
    assert _record(recovered, 2).status == "accepted"
    crash = [f for f in runner.coord.faults.faults if f.kind == "crash"]
    assert len(crash) == 1 and crash[0].end is not None  # the plan (and checkpoints) record the outage


def test_availability_and_partial_work_show_in_the_table_map_and_detail() -> None:
    # Prepare: the shipped 8-node trace (node 3 online 0-4.5 s and 10-30 s), each node doing 30-100% of its steps
    runner, panel = _nodes_panel(
        num_nodes=8, availability="trace", availability_options={"path": "synthetic"}, partial_work=0.3
    )

    # Execute: one round at t = 0, then the simulated clock at 5 s
    report = runner.step()
    runner.flush()
    shares = {r.node: r.work_done for r in report.nodes}
    runner.coord.clock.advance_to(5.0)
    panel.select(3)
    panel.refresh()

    # Assert: the offline state per the trace, each node's share of work, the detail's availability line
    rows = {r.id: r for r in runner.view.rows()}
    assert {n for n, r in rows.items() if r.state == "offline"} == {3, 5, 7}  # the trace's set at t = 5
    assert all(rows[n].work_done == shares[n] for n in shares)
    cells = panel.table.value
    assert "work done" in cells and "offline" in cells
    assert all(f"{w:.0%}" in cells for w in shares.values() if w is not None)
    assert next(m for m in panel.cluster.nodes if m["id"] == 3)["state"] == "crashed"  # drawn dimmed
    assert "availability trace: offline until t = 10.0 s" in panel.detail.value
    assert f"{shares[3]:.0%} of its local steps" in panel.detail.value


def test_each_nodes_latest_contribution_and_whether_it_is_paid_show_in_the_table_and_detail() -> None:
    # Prepare: 6 nodes valued by exact Shapley each round, node 2 flipping the sign of its update
    runner, panel = _nodes_panel(num_nodes=6, contribution="shapley", faults=[Fault("sign_flip", (2,))])
    empty = panel.table.value

    # Execute: two rounds, the table redrawn from the latest
    runner.step()
    report = runner.step()
    runner.flush()
    panel.select(2)
    panel.refresh()

    # Assert: per node, the latest record's value and the chain's rule (score > 0) in its cell
    assert "last contribution" in empty and "paid" not in empty  # no round yet: "-"
    rows = {r.id: r for r in runner.view.rows()}
    for rec in report.nodes:
        paid = score(rec) > 0
        assert rows[rec.node].value == rec.contribution and rows[rec.node].paid == paid
        cell = f"{rec.contribution:+.3g} {'paid' if paid else 'unpaid'}"
        assert f"<td style='padding:0 8px'>{cell}</td>" in panel.table.value
    attacker = _record(report, 2)
    assert attacker.contribution < 0 and not rows[2].paid  # the sign flip is valued below zero, not paid
    assert any(rows[n].paid for n in rows if n != 2)
    assert f"Shapley value {attacker.contribution:+.4g} of validation accuracy, unpaid" in panel.detail.value


def test_disconnect_and_reconnect_act_on_the_link() -> None:
    runner, panel = _nodes_panel()
    panel.select(0)
    panel.buttons["disconnect"].click()
    down = runner.step()
    panel.buttons["reconnect"].click()
    up = runner.step()
    assert _record(down, 0).status == "failed" and _record(up, 0).status == "accepted"


def test_a_profile_change_and_a_byzantine_node_show_in_the_simulation_and_the_table() -> None:
    runner, panel = _nodes_panel()
    panel.select(3)
    panel.profile.value = "unstable"
    panel.fault.value = "sign_flip"

    panel.buttons["profile"].click()
    panel.buttons["inject"].click()
    report = runner.step()
    runner.flush()
    state, profile = runner.view.state(3), runner.view.row(3).profile
    panel.buttons["clear"].click()
    honest = runner.step()

    assert runner.coord.pool.network.conditions(3, runner.coord.clock.now).profile.name == "unstable"
    assert profile == "unstable" and state == "byzantine"
    assert _record(report, 3).injected == "sign_flip" and _record(honest, 3).injected is None
    assert runner.view.state(3) == "online"


def test_an_unobserved_node_on_a_profile_added_here_shows_its_derived_quality(monkeypatch) -> None:
    # Prepare: a profile the UI has never heard of, slow and lossy enough to score Poor
    satellite = LinkProfile("satellite", (550.0, 650.0), 0.15, 5.0, 50.0)
    monkeypatch.setitem(PROFILES, "satellite", satellite)
    coord = coordinator()
    coord.pool.network.schedule(ProfileChange(nodes=(0,), at=0.0, profile="satellite"))

    # Execute
    entry = map_node(RunView(coord).row(0))

    # Assert
    assert entry["quality"] == "Poor" and "satellite" in entry["detail"] and "not yet observed" in entry["detail"]


def test_an_action_during_a_round_waits_for_the_round_boundary() -> None:
    # Prepare: hold round 1 open in a subscriber, so the action arrives mid-round
    coord = coordinator()
    gate, inside = threading.Event(), threading.Event()
    coord.bus.subscribe(lambda r: (inside.set(), gate.wait(WAIT_S)) if r.round == 1 else None)
    runner = Runner(coord)
    panel = NodesPanel(runner)
    panel.select(1)

    # Execute
    runner.start(rounds=2)
    assert inside.wait(WAIT_S)
    at_once = runner.act(lambda c: c.clock.now, "probe")
    panel.buttons["crash"].click()
    gate.set()
    runner.wait(WAIT_S)

    # Assert: queued, then applied before round 2, which sees the crash
    assert at_once is False
    rows = list(coord.history.node_records)
    assert [r.status for n, r in rows if n == 1 and r.node == 1] == ["accepted"]
    assert [r.status for n, r in rows if n == 2 and r.node == 1] == ["failed"]


def test_clicking_a_node_on_the_map_selects_it_in_the_panel() -> None:
    _, panel = _nodes_panel()
    panel.cluster.selected = 2
    assert panel.node.value == 2
    panel.select(3)
    assert panel.cluster.selected == 3
    assert {n["id"] for n in panel.cluster.nodes} == {0, 1, 2, 3}


# -- chain panel -----------------------------------------------------------------------------------
def test_without_a_chain_the_panel_says_how_to_attach_one() -> None:
    panel = ChainPanel(Runner(coordinator()))
    assert "No chain attached" in panel.note.value and "ChainClient.embedded()" in panel.note.value
    assert panel.body.layout.display == "none"


def test_chain_panel_shows_addresses_scores_and_claims_without_keys() -> None:
    pytest.importorskip("web3")
    from hypergpu_lab import ChainClient
    from hypergpu_lab.chain.accounts import EMBEDDED_SEED, derive_key

    # Prepare: two recorded, rewarded rounds
    chain = ChainClient.embedded()
    coord = coordinator(chain=chain, chain_options={"reward_per_round": 10**18, "background": False})
    runner = Runner(coord)
    panel = ChainPanel(runner)
    runner.step()
    runner.step()
    coord.recorder.flush()

    # Execute
    panel.refresh()
    panel.node.value = 1
    panel.claim_button.click()

    # Assert
    html = panel.accounts.value + panel.tx_log.value + panel.chain_info.value + panel.outbox.value
    assert chain.accounts.address(1) in panel.accounts.value
    assert "sent <b>2</b>" in panel.outbox.value and panel.tx_log.value.count("record round") == 2
    assert "node 1 claimed" in panel.message.value and chain.claimable(1) == 0 and chain.token_balance(1) > 0
    assert "claim" in panel.tx_log.value
    for node in range(4):
        assert derive_key(EMBEDDED_SEED, node).hex() not in html
    panel.claim_button.click()  # nothing left: the revert is shown, not raised
    assert "claim" in panel.message.value and "NothingToClaim" in panel.message.value


# -- dashboard ---------------------------------------------------------------------------------------
def test_dashboard_has_its_tabs_and_overview_follows_the_run(tmp_path) -> None:
    dash = Dashboard(coordinator(), out=tmp_path)
    dash.control.fields["rounds"].value = 2

    dash.control.buttons["start"].click()
    dash.runner.wait(WAIT_S)

    assert dash.tabs.titles == ("Overview", "Nodes", "Metrics", "Blockchain", "Settings")
    assert "finished" in dash.numbers.value and ">2 / 2<" in dash.numbers.value
    assert len(dash.charts.accuracy.traces[0]["x"]) == 2

    dash.control.buttons["start"].click()  # already at round 2 of 2: refused in place, and logged
    assert "more than the 2 rounds already run" in dash.control.message.value
    assert any("more than the 2 rounds" in o.get("text", "") for o in dash.control.log_output.outputs)
    dash.close()


def test_the_control_panel_comes_from_the_ui_package_not_the_coordinator() -> None:
    from hypergpu_lab.ui import panel

    coord = coordinator()
    assert isinstance(panel(coord), ControlPanel) and not hasattr(coord, "panel")
