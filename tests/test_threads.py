"""The thread policy picks what it says: one thread for small work, more only for large work, overridable."""

from __future__ import annotations

import pytest
import torch

from hypergpu_lab import Coordinator, NodePool, threads
from hypergpu_lab.threads import MIN_FLOPS_PER_THREAD, intra_op_threads, set_threads, threads_for


@pytest.fixture(autouse=True)
def _policy(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv(threads.ENV, raising=False)
    yield
    set_threads(None)


def test_small_work_gets_one_thread_and_large_work_one_per_multiple_up_to_the_cores() -> None:
    assert threads_for(0, cores=8) == 1
    assert threads_for(MIN_FLOPS_PER_THREAD - 1, cores=8) == 1
    assert threads_for(MIN_FLOPS_PER_THREAD, cores=8) == 2
    assert threads_for(3.5 * MIN_FLOPS_PER_THREAD, cores=8) == 4
    assert threads_for(1e15, cores=2) == 2


def test_the_user_overrides_by_environment_or_call_and_bad_values_are_refused(monkeypatch) -> None:
    monkeypatch.setenv(threads.ENV, "3")
    assert threads_for(0, cores=2) == 3
    monkeypatch.setenv(threads.ENV, "many")
    assert threads_for(0, cores=2) == 1  # warned, policy used
    set_threads(2)
    assert threads_for(0, cores=8) == 2
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        set_threads(0)


def test_the_count_applies_for_one_call_and_is_restored() -> None:
    before = torch.get_num_threads()
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_ten_node_round_trains_on_one_thread(monkeypatch) -> None:
    seen: list[int] = []
    pool = NodePool.simulated(10, dataset="digits", network="lan", seed=0)
    coord = Coordinator(pool=pool, model="cnn")
    inner = coord.trainer._train
    monkeypatch.setattr(coord.trainer, "_train", lambda *a: seen.append(torch.get_num_threads()) or inner(*a))

    coord.step()

    assert seen == [1]


def test_the_rounds_small_ops_run_on_one_thread_and_the_callers_count_is_restored(monkeypatch) -> None:
    """Aggregation, checks and evaluation inside step() use one thread, not torch's default; a fixed count wins."""
    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)
    coord = Coordinator(pool=pool, model="mlp")
    seen: list[int] = []
    aggregate = coord.strategy.aggregate
    monkeypatch.setattr(
        coord.strategy, "aggregate", lambda *a, **k: seen.append(torch.get_num_threads()) or aggregate(*a, **k)
    )
    coord.bus.subscribe(lambda report: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()

    coord.step()
    set_threads(2)
    try:
        coord.step()
    finally:
        set_threads(None)

    assert seen == [1, 1, 2, 2] and torch.get_num_threads() == before
