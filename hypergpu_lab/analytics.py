"""Run analytics from run folders: one run's summary, and several runs side by side.

Everything here reads ``metrics.jsonl`` (the full history on disk), so it
works for finished runs, runs in progress and runs from other machines.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .runs import RunFolder


@dataclass(frozen=True)
class RunSummary:
    """The figures a person compares runs by."""

    name: str
    rounds: int
    final_accuracy: float | None
    best_accuracy: float | None
    best_round: int | None
    time_to_target: float | None  # simulated seconds until test accuracy first reached the target
    target: float
    simulated_s: float
    bytes_moved: int
    updates: dict[str, int]  # accepted / straggled / failed / rejected totals
    participation: dict[int, int] = field(default_factory=dict)  # node -> rounds selected
    contribution: dict[int, int] = field(default_factory=dict)  # node -> samples in accepted updates

    def row(self) -> dict[str, Any]:
        return {
            "run": self.name,
            "rounds": self.rounds,
            "final acc": self.final_accuracy,
            "best acc": self.best_accuracy,
            f"sim s to {self.target:.2f}": self.time_to_target,
            "sim s": round(self.simulated_s, 3),
            "MB moved": round(self.bytes_moved / 2**20, 2),
            **self.updates,
        }


def summarize(rows: list[dict[str, Any]], *, name: str = "run", target: float = 0.9) -> RunSummary:
    """Summarise per-round rows as written to metrics.jsonl (or History rows without node lists)."""
    accs = [(r["round"], r["test_accuracy"], r["t_end"]) for r in rows if r.get("test_accuracy") is not None]
    best = max(accs, key=lambda a: (a[1], -a[0]), default=None)
    reached = next((t for _, acc, t in accs if acc >= target), None)
    participation: Counter[int] = Counter()
    contribution: Counter[int] = Counter()
    for r in rows:
        for n in r.get("nodes", []):
            participation[n["node"]] += 1
            if n["status"] == "accepted":
                contribution[n["node"]] += n["num_samples"]
    return RunSummary(
        name=name,
        rounds=len(rows),
        final_accuracy=accs[-1][1] if accs else None,
        best_accuracy=best[1] if best else None,
        best_round=best[0] if best else None,
        time_to_target=reached,
        target=target,
        simulated_s=rows[-1]["t_end"] if rows else 0.0,
        bytes_moved=sum(int(r.get("bytes_moved", 0)) for r in rows),
        updates={k: sum(int(r.get(k, 0)) for r in rows) for k in ("accepted", "straggled", "failed", "rejected")},
        participation=dict(sorted(participation.items())),
        contribution=dict(sorted(contribution.items())),
    )


def summarize_folder(path: str | os.PathLike, *, target: float = 0.9) -> RunSummary:
    folder = RunFolder.open(path)
    return summarize(folder.read_metrics(), name=folder.path.name, target=target)


def compare(paths: list[str | os.PathLike], *, target: float = 0.9) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A table row per run and the accuracy curves to overlay: {run: {"round": [...], "t": [...], "acc": [...]}}."""
    table, curves = [], {}
    for path in paths:
        folder = RunFolder.open(path)
        rows = folder.read_metrics()
        table.append(summarize(rows, name=folder.path.name, target=target).row())
        acc = [r for r in rows if r.get("test_accuracy") is not None]
        curves[folder.path.name] = {
            "round": [r["round"] for r in acc],
            "t": [r["t_end"] for r in acc],
            "acc": [r["test_accuracy"] for r in acc],
        }
    return table, curves


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of dict rows (same keys), for terminals and notebooks."""
    if not rows:
        return ""
    keys = list(rows[0])
    cells = [
        [("-" if r[k] is None else f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k])) for k in keys] for r in rows
    ]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(keys), line(["-" * w for w in widths]), *map(line, cells)])
