"""Update validation: every reason a delta is rejected, checked on the stack as one per-update oracle would."""

from __future__ import annotations

import math

import torch

from hypergpu_lab.validate import check_updates


def _oracle(delta: torch.Tensor, size: int, bound: float | None) -> str | None:
    """The rules, one update at a time, in plain Python."""
    if delta.ndim != 1 or delta.numel() != size:
        return "shape"
    values = delta.tolist()
    if not all(math.isfinite(v) for v in values):
        return "non-finite values"
    if bound is not None and math.sqrt(sum(v * v for v in values)) > bound:
        return "norm"
    return None


def test_each_update_gets_its_own_reason_and_only_accepted_ones_are_stacked() -> None:
    # Prepare: good updates mixed with every kind of bad one.
    size, gen = 6, torch.Generator().manual_seed(0)
    good = [torch.randn(size, generator=gen) for _ in range(3)]
    deltas = [
        good[0],
        torch.randn(size + 1, generator=gen),
        torch.full((size,), float("nan")),
        good[1],
        torch.tensor([0, 0, float("inf"), 0, 0, 0.0]),
        torch.full((size,), 10.0),
        torch.randn(2, 3),
        good[2],
    ]
    # Execute
    reasons, stacked = check_updates(deltas, size, norm_bound=5.0)
    # Assert
    expected = [_oracle(d, size, 5.0) for d in deltas]
    assert [
        None if r is None else ("shape" if r.startswith("shape") else "norm" if r.startswith("norm") else r)
        for r in reasons
    ] == expected
    assert reasons[1] == "shape (7,) != (6,)" and reasons[5] == "norm 24.5 > bound 5"
    assert torch.equal(stacked, torch.stack(good))


def test_without_a_bound_any_finite_update_passes() -> None:
    # 3e38 four times overflows float32 when summed: the values are still finite, and accepted.
    reasons, stacked = check_updates([torch.full((4,), 3e38), torch.zeros(4)], 4)
    assert reasons == [None, None] and stacked.shape == (2, 4)


def test_nothing_to_check_gives_an_empty_stack() -> None:
    reasons, stacked = check_updates([], 5)
    assert reasons == [] and stacked.shape == (0, 5)
