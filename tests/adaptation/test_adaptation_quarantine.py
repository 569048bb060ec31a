"""Quarantine: k consecutive failures -> quarantined (pool state) -> probation -> re-admitted or back."""

from __future__ import annotations

import pytest

from hypergpu_lab import ConfigError, NodePool, NodeState
from hypergpu_lab.adaptation import Quarantine


@pytest.fixture(scope="module")
def pool_factory():
    return lambda: NodePool.simulated(4, dataset="digits", network="lan", seed=0)


def _fail(make_record, node: int):
    return make_record(node, "failed", down_attempts=6, up_attempts=0, reason="download lost after 6 attempts")


def test_a_node_that_keeps_failing_is_quarantined_released_on_probation_and_readmitted(
    pool_factory, make_record, make_report
) -> None:
    # Prepare
    pool, q = pool_factory(), Quarantine(after=3, duration=2, unit="rounds")
    # Execute: node 1 fails rounds 1-3.
    log = []
    for r in (1, 2, 3):
        log += q.observe(make_report(r, [make_record(0), _fail(make_record, 1)]), pool)
        assert (pool[1].state is NodeState.QUARANTINED) == (r == 3)
    # Assert: quarantined after the third failure, out of the available set for 2 rounds.
    assert [d.action for d in log] == ["quarantine"] and log[0].node == 1
    assert 1 not in pool.available()
    assert q.release(4, 0.0, pool) == [] and q.release(5, 0.0, pool) == []
    released = q.release(6, 0.0, pool)
    assert [d.action for d in released] == ["release"] and pool[1].state is NodeState.ONLINE
    assert 1 in q.probation
    # A success on probation re-admits it fully.
    readmit = q.observe(make_report(6, [make_record(1)]), pool)
    assert [d.action for d in readmit] == ["readmit"] and 1 not in q.probation
    assert not q.is_quarantined(1) and q.terms[1] == 1


def test_a_failure_on_probation_sends_the_node_straight_back(pool_factory, make_record, make_report) -> None:
    pool, q = pool_factory(), Quarantine(after=2, duration=1)
    for r in (1, 2):
        q.observe(make_report(r, [_fail(make_record, 2)]), pool)
    q.release(4, 0.0, pool)
    assert 2 in q.probation
    back = q.observe(make_report(4, [_fail(make_record, 2)]), pool)  # one failure is enough now
    assert back[0].action == "quarantine" and "probation" in back[0].reason
    assert pool[2].state is NodeState.QUARANTINED and q.terms[2] == 2


def test_stragglers_are_not_failures(pool_factory, make_record, make_report) -> None:
    pool, q = pool_factory(), Quarantine(after=2)
    for r in (1, 2, 3):
        q.observe(make_report(r, [make_record(0, "straggled")]), pool)
    assert not q.held and pool[0].state is NodeState.ONLINE


def test_duration_in_virtual_seconds(pool_factory, make_record, make_report) -> None:
    pool, q = pool_factory(), Quarantine(after=1, duration=10.0, unit="seconds")
    q.observe(make_report(1, [_fail(make_record, 3)], t_start=5.0, duration=1.0), pool)  # ends at t = 6
    assert q.release(2, 15.9, pool) == []
    assert q.release(3, 16.0, pool)[0].action == "release"


def test_never_quarantines_below_keep_available(pool_factory, make_record, make_report) -> None:
    pool, q = pool_factory(), Quarantine(after=1, keep_available=3)
    pool.set_state(0, NodeState.CRASHED)
    out = q.observe(make_report(1, [_fail(make_record, 1)]), pool)
    assert "kept" in out[0].reason and pool[1].state is NodeState.ONLINE


def test_release_reasserts_quarantine_after_a_pool_state_reset(pool_factory, make_record, make_report) -> None:
    pool, q = pool_factory(), Quarantine(after=1, duration=5)
    q.observe(make_report(1, [_fail(make_record, 1)]), pool)
    pool.set_state(1, NodeState.ONLINE)
    q.release(2, 0.0, pool)
    assert pool[1].state is NodeState.QUARANTINED


def test_state_dict_round_trips(pool_factory, make_record, make_report) -> None:
    pool, a, b = pool_factory(), Quarantine(after=1), Quarantine(after=1)
    a.observe(make_report(1, [_fail(make_record, 1), _fail(make_record, 2)]), pool)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict()


@pytest.mark.parametrize("option", [{"after": 0}, {"unit": "days"}, {"duration": 0}, {"duration": 1.5}])
def test_bad_options(option: dict) -> None:
    with pytest.raises(ConfigError, match="quarantine."):
        Quarantine(**option)
