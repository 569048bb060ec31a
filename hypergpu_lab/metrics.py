"""Bounded in-memory metrics: the recent rounds and node records, whatever the run length.

The full history lives in the run folder on disk (see ``runs.py``); memory holds
rolling buffers so a million-round run costs the same RAM as a hundred-round one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from .events import NodeRecord, RoundReport


class History:
    """Per-round summaries and per-node records of the latest rounds; subscribe it to a bus."""

    def __init__(self, *, max_rounds: int = 10_000, max_node_records: int = 100_000) -> None:
        self.rounds: deque[dict[str, Any]] = deque(maxlen=max_rounds)
        self.node_records: deque[tuple[int, NodeRecord]] = deque(maxlen=max_node_records)
        self.total_rounds = 0

    def __call__(self, report: RoundReport) -> None:
        self.rounds.append(report.summary())
        self.node_records.extend((report.round, n) for n in report.nodes)
        self.total_rounds += 1

    def __len__(self) -> int:
        return len(self.rounds)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rounds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rounds[i]

    def column(self, key: str) -> list[Any]:
        return [r[key] for r in self.rounds]

    @property
    def final(self) -> dict[str, Any] | None:
        return self.rounds[-1] if self.rounds else None

    def truncate(self, last_round: int) -> None:
        """Drop rounds after ``last_round`` (a run restored from an earlier checkpoint)."""
        while self.rounds and self.rounds[-1]["round"] > last_round:
            self.rounds.pop()
        while self.node_records and self.node_records[-1][0] > last_round:
            self.node_records.pop()

    def table(self, every: int = 1) -> str:
        """A plain-text table of the rounds, for terminals and logs."""
        head = f"{'round':>5} {'acc':>6} {'loss':>7} {'sim s':>9} {'ok':>4} {'late':>4} {'fail':>4} {'wall s':>7}"
        lines = [head, "-" * len(head)]
        rows = list(self.rounds)
        for r in rows:
            if r["round"] % every and r is not rows[-1]:
                continue
            acc = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.3f}"
            loss = "-" if r["test_loss"] is None else f"{r['test_loss']:.4f}"
            lines.append(
                f"{r['round']:>5} {acc:>6} {loss:>7} {r['t_end']:>9.2f} {r['accepted']:>4} "
                f"{r['straggled']:>4} {r['failed']:>4} {r['wall_s']:>7.3f}"
            )
        return "\n".join(lines)
