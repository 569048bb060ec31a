"""Run analytics from run folders: one run's summary, and several runs side by side.

Everything here reads ``metrics.jsonl`` (the full history on disk), so it
works for finished runs, runs in progress and runs from other machines.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
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


def run_labels(paths: list[str | os.PathLike]) -> list[str]:
    """One distinct label per run folder: its name, or where names collide, its path.

    Two runs in different folders may share a name (``exp1/run`` and ``exp2/run``); keying by name
    merged their curves. A folder given twice is refused rather than shown twice.
    """
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        dup = next(p for p in resolved if resolved.count(p) > 1)
        raise ConfigError("runs", str(dup), "distinct run folders (this one is given twice)")
    names = Counter(p.name for p in resolved)
    return [p.name if names[p.name] == 1 else str(Path(given)) for p, given in zip(resolved, paths)]


def compare(paths: list[str | os.PathLike], *, target: float = 0.9) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A table row per run and the accuracy curves to overlay: {label: {"round": [...], "t": [...], "acc": [...]}}.

    Runs are keyed by folder (:func:`run_labels`): a name shared by two folders never merges their curves.
    """
    table, curves = [], {}
    for path, label in zip(paths, run_labels(paths)):
        rows = RunFolder.open(path).read_metrics()
        table.append(summarize(rows, name=label, target=target).row())
        acc = [r for r in rows if r.get("test_accuracy") is not None]
        curves[label] = {
            "round": [r["round"] for r in acc],
            "t": [r["t_end"] for r in acc],
            "acc": [r["test_accuracy"] for r in acc],
        }
    return table, curves


def totals(summaries: list[RunSummary]) -> dict[str, Any]:
    """Figures across all runs: how many, rounds, simulated seconds, bytes and update outcomes summed."""
    return {
        "run": f"total ({len(summaries)} runs)",
        "rounds": sum(s.rounds for s in summaries),
        "final acc": None,
        "best acc": max((s.best_accuracy for s in summaries if s.best_accuracy is not None), default=None),
        "sim s": round(sum(s.simulated_s for s in summaries), 3),
        "MB moved": round(sum(s.bytes_moved for s in summaries) / 2**20, 2),
        **{k: sum(s.updates.get(k, 0) for s in summaries) for k in ("accepted", "straggled", "failed", "rejected")},
    }


def run_folders(root: str | os.PathLike) -> list[Path]:
    """The run folders directly under ``root`` (those with a config.json), by name."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError("runs", str(root), "a folder holding run folders")
    return sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file()
    )


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of dict rows (same keys), for terminals and notebooks."""
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for r in rows for k in r))  # rows may differ (a totals row lacks a column)
    rows = [{k: r.get(k) for k in keys} for r in rows]
    cells = [
        [("-" if r[k] is None else f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k])) for k in keys] for r in rows
    ]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(keys), line(["-" * w for w in widths]), *map(line, cells)])
