"""Hand-built round reports: the monitor, selector, quarantine and policy read nothing else."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch

from hypergpu_lab.events import NodeRecord, RoundReport


def record(
    node: int,
    status: str = "accepted",
    *,
    down: float = 0.05,
    up: float = 0.05,
    compute: float = 0.01,
    waiting: float = 0.0,
    down_attempts: int = 1,
    up_attempts: int = 1,
    loss: float | None = 1.0,
    samples: int = 100,
    batch: int = 16,
    reason: str | None = None,
) -> NodeRecord:
    """A NodeRecord as the coordinator writes it (a failed download leaves no upload)."""
    delivered = status != "failed"
    if status == "failed" and up_attempts and reason is None:
        reason = "upload lost after 6 attempts"
    arrival = 1.0 if delivered else None
    return NodeRecord(
        node=node,
        status=status,
        reason=reason,
        batch_size=batch,
        num_samples=samples,
        download_s=down,
        compute_s=compute,
        upload_s=up if delivered or up_attempts else 0.0,
        waiting_s=waiting,
        arrival=arrival,
        download_attempts=down_attempts,
        upload_attempts=up_attempts,
        loss=loss if delivered else None,
        update_norm=1.0 if delivered else None,
    )


def report(
    round_: int,
    records: Sequence[NodeRecord],
    *,
    accuracy: float | None = None,
    t_start: float = 0.0,
    duration: float = 1.0,
    wall_s: float = 0.1,
) -> RoundReport:
    count = {s: sum(r.status == s for r in records) for s in ("accepted", "straggled", "failed", "rejected")}
    return RoundReport(
        run_id="t",
        round=round_,
        t_start=t_start,
        t_end=t_start + duration,
        selected=len(records),
        test_accuracy=accuracy,
        test_loss=None,
        train_loss=None,
        wall_s=wall_s,
        nodes=tuple(records),
        **count,
    )


@pytest.fixture
def make_record() -> Callable[..., NodeRecord]:
    return record


@pytest.fixture
def make_report() -> Callable[..., RoundReport]:
    return report


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """The test machine is shared: keep torch to one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
