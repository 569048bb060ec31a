"""Tests for the virtual clock: ordering, time moves and snapshots."""

from __future__ import annotations

import math
import pickle

import pytest

from hypergpu_lab.clock import VirtualClock
from hypergpu_lab.errors import ConfigError


def test_events_pop_by_time_then_priority_then_insertion() -> None:
    # Prepare
    clock = VirtualClock()
    clock.schedule(2.0, "late")
    clock.schedule(1.0, "b-normal")
    clock.schedule(1.0, "a-urgent", priority=-1)
    clock.schedule(1.0, "c-normal-second")
    clock.schedule(0.5, {"unorderable": "payload"})

    # Execute
    popped = [clock.step() for _ in range(len(clock))]

    # Assert
    assert popped == [
        (0.5, {"unorderable": "payload"}),
        (1.0, "a-urgent"),
        (1.0, "b-normal"),
        (1.0, "c-normal-second"),
        (2.0, "late"),
    ]
    assert clock.now == 2.0
    assert clock.peek() is None


def test_step_on_empty_clock_raises_index_error() -> None:
    clock = VirtualClock(start=3.0)

    with pytest.raises(IndexError, match="no pending events"):
        clock.step()
    assert clock.now == 3.0


@pytest.mark.parametrize("at", [0.5, math.nan, math.inf, -math.inf, "soon"])
def test_schedule_rejects_past_and_non_finite_times(at: object) -> None:
    clock = VirtualClock(start=1.0)

    with pytest.raises(ValueError, match=r"^at: "):
        clock.schedule(at, "x")  # type: ignore[arg-type]
    assert len(clock) == 0


def test_schedule_at_now_is_allowed() -> None:
    clock = VirtualClock(start=1.0)

    clock.schedule(1.0, "now")

    assert clock.step() == (1.0, "now")


def test_pop_until_pops_events_up_to_and_including_t_then_sets_now() -> None:
    # Prepare
    clock = VirtualClock()
    for t in (1.0, 2.0, 2.0, 3.0, 4.5):
        clock.schedule(t, f"e{t}")

    # Execute
    popped = clock.pop_until(3.0)

    # Assert
    assert [t for t, _ in popped] == [1.0, 2.0, 2.0, 3.0]
    assert clock.now == 3.0
    assert clock.peek() == 4.5
    assert clock.pop_until(4.0) == [] and clock.now == 4.0
    assert clock.pop_until(1.0) == [] and clock.now == 4.0  # never moves back


def test_advance_to_moves_forward_only_and_never_past_a_pending_event() -> None:
    # Prepare
    clock = VirtualClock()
    clock.schedule(5.0, "e")

    # Execute
    clock.advance_to(2.5)

    # Assert
    assert clock.now == 2.5 and len(clock) == 1
    with pytest.raises(ValueError, match=r"^t: .*>= now"):
        clock.advance_to(1.0)
    with pytest.raises(ValueError, match="pop_until"):
        clock.advance_to(6.0)
    clock.advance_to(5.0)  # exactly at the event is fine: it is not in the past
    assert clock.step() == (5.0, "e")
    with pytest.raises(ValueError, match=r"^t: "):
        clock.advance_to(math.nan)


def test_clear_drops_pending_events_but_keeps_now() -> None:
    clock = VirtualClock()
    clock.schedule(1.0, "a")
    clock.step()
    clock.schedule(2.0, "b")

    clock.clear()

    assert len(clock) == 0 and clock.now == 1.0


def test_state_dict_round_trip_continues_identically() -> None:
    # Prepare: a clock mid-run with ties pending, snapshotted through pickle
    original = VirtualClock()
    for i, (t, p) in enumerate([(1.0, 0), (2.0, 1), (2.0, 0), (3.0, 0), (2.0, 0)]):
        original.schedule(t, ("event", i), priority=p)
    original.step()
    restored = VirtualClock()
    restored.load_state_dict(pickle.loads(pickle.dumps(original.state_dict())))

    # Execute: the same new events on both, including a tie with a pending one
    for clock in (original, restored):
        clock.schedule(2.0, "new-tie")
        clock.schedule(2.5, "new")
    from_original = [original.step() for _ in range(len(original))]
    from_restored = [restored.step() for _ in range(len(restored))]

    # Assert
    assert from_restored == from_original
    assert [e for _, e in from_original] == [("event", 2), ("event", 4), "new-tie", ("event", 1), "new", ("event", 3)]
    assert restored.now == original.now == 3.0


def test_load_state_dict_rejects_events_before_now() -> None:
    clock = VirtualClock()

    with pytest.raises(ConfigError, match="pending"):
        clock.load_state_dict({"now": 5.0, "seq": 1, "pending": [(1.0, 0, 0, "stale")]})
