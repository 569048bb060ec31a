"""Both runners stand behind the panels through one protocol (ui/driver.py), with the same signatures."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.ui.control import ControlPanel
from hypergpu_lab.ui.driver import RunDriver
from hypergpu_lab.ui.remote import RemoteRunner
from hypergpu_lab.ui.runner import Runner
from tests.test_service import small_config

METHODS = [
    name
    for name, member in vars(RunDriver).items()
    if not name.startswith("_") and (callable(member) or isinstance(member, property))
]


def test_the_local_and_the_remote_runner_are_both_run_drivers(tmp_path: Path) -> None:
    config = small_config(rounds=3)
    local = Runner(Coordinator.from_config(config))
    remote = RemoteRunner(tmp_path, config, tick_s=0.05, follow=False)
    try:
        for runner in (local, remote):
            assert isinstance(runner, RunDriver), type(runner).__name__
        assert not isinstance(local.coord, RunDriver), "a coordinator is not a driver: the panel wraps it"
    finally:
        local.close()
        remote.close()


@pytest.mark.parametrize("name", METHODS)
def test_each_driver_method_has_the_protocols_parameters(name: str) -> None:
    wanted = getattr(RunDriver, name)
    if isinstance(wanted, property):
        for cls in (Runner, RemoteRunner):
            assert isinstance(getattr(cls, name), property), f"{cls.__name__}.{name} is not a property"
        return
    params = list(inspect.signature(wanted).parameters)
    for cls in (Runner, RemoteRunner):
        got = list(inspect.signature(getattr(cls, name)).parameters)
        assert got[: len(params)] == params, f"{cls.__name__}.{name}{got} != RunDriver.{name}{params}"


def test_a_control_panel_given_a_coordinator_wraps_it_in_a_runner() -> None:
    coord = Coordinator(pool=NodePool.simulated(num_nodes=3, seed=0), model="mlp")
    panel = ControlPanel(coord)
    try:
        assert isinstance(panel.runner, Runner) and panel.runner.coord is coord
    finally:
        panel.runner.close()
