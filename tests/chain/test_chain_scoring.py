"""Contribution scoring: samples x agreement in fixed point; zero for anything but a useful accepted update."""

from __future__ import annotations

import math

import pytest

from hypergpu_lab.chain.scoring import MIN_UPDATE_NORM, SCORE_SCALE, round_scores, score
from hypergpu_lab.events import NodeRecord, RoundReport


def record(node: int = 0, **kw: object) -> NodeRecord:
    base = dict(
        node=node,
        status="accepted",
        reason=None,
        batch_size=10,
        num_samples=144,
        download_s=0.1,
        compute_s=0.2,
        upload_s=0.1,
        waiting_s=0.0,
        arrival=0.4,
        download_attempts=1,
        upload_attempts=1,
        loss=0.5,
        update_norm=1.3,
        update_hash="ab" * 32,
        agreement=0.75,
    )
    return NodeRecord(**{**base, **kw})  # type: ignore[arg-type]


def test_score_is_samples_times_agreement_in_fixed_point() -> None:
    assert score(record()) == math.floor(144 * 0.75 * SCORE_SCALE) == 108_000_000
    assert score(record(num_samples=143, agreement=0.123456789)) == math.floor(143 * 0.123456789 * 10**6)
    assert score(record(agreement=1.0000001)) == 144 * SCORE_SCALE  # clamped at perfect agreement


def test_a_valued_update_is_paid_its_samples_when_its_value_is_positive() -> None:
    assert score(record(contribution=0.004)) == 144 * SCORE_SCALE  # the work, whatever the agreement's size
    assert score(record(contribution=1e-9, agreement=0.01)) == 144 * SCORE_SCALE
    for value in (0.0, -0.02, math.nan, math.inf * -1):
        assert score(record(contribution=value)) == 0
    assert score(record(contribution=0.05, agreement=-0.2)) == 0  # opposes the round's median: gated
    assert score(record(contribution=0.05, update_norm=0.0)) == 0  # a free rider's zero update


@pytest.mark.parametrize("status", ["rejected", "straggled", "failed"])
def test_anything_not_accepted_scores_zero(status: str) -> None:
    assert score(record(status=status)) == 0


@pytest.mark.parametrize("agreement", [None, 0.0, -0.4, -1.0, math.nan])
def test_updates_not_pointing_with_the_aggregate_score_zero(agreement: float | None) -> None:
    # sign-flipping attackers and noise have agreement <= 0; missing or NaN agreement earns nothing
    assert score(record(agreement=agreement)) == 0


@pytest.mark.parametrize("norm", [None, 0.0, MIN_UPDATE_NORM, math.inf])
def test_free_riders_with_a_null_update_score_zero(norm: float | None) -> None:
    assert score(record(update_norm=norm, agreement=0.9)) == 0


def test_round_scores_cover_every_selected_node() -> None:
    nodes = (record(0), record(1, status="straggled"), record(2, agreement=-0.5), record(3, agreement=0.5))
    report = RoundReport(
        run_id="r",
        round=1,
        t_start=0,
        t_end=1,
        selected=4,
        accepted=3,
        straggled=1,
        failed=0,
        rejected=0,
        test_accuracy=None,
        test_loss=None,
        train_loss=None,
        wall_s=0.0,
        nodes=nodes,
    )
    assert round_scores(report) == {0: 108_000_000, 1: 0, 2: 0, 3: 72_000_000}
