"""The dashboard's cost: wall time of a run with a Dashboard attached (no browser) against headless.

The same configuration three ways per repeat, in rotating order: ``coord.run()`` headless in the
calling thread, ``coord.start()`` headless in the background, and ``Dashboard(coord)`` with the run
started from its runner (background thread, throttled updates to every panel and chart). The
dashboard's time ends when the round loop ends; the wait for its last update is reported on its own.

torch runs single-threaded here for both: on a loaded 2-core machine OpenMP's intra-op threads in
the calling thread made ``coord.run()`` swing between 1x and 20x, which measures the machine, not the UI.
"""

from __future__ import annotations

import logging
import statistics
import time

import torch

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.config import PoolConfig

NODES, ROUNDS, REPEATS = 10, 30, 5
POOL = PoolConfig(num_nodes=NODES, dataset="digits", partition="dirichlet", alpha=0.5, network="mixed", seed=0)


def _coord() -> Coordinator:
    return Coordinator(pool=NodePool.from_config(POOL), model="mlp", lr=0.05)


def headless() -> float:
    coord = _coord()
    t = time.perf_counter()
    coord.run(rounds=ROUNDS, progress=False)
    return time.perf_counter() - t


def background() -> float:
    coord = _coord()
    t = time.perf_counter()
    coord.start(rounds=ROUNDS)
    coord.wait()
    return time.perf_counter() - t


def with_dashboard() -> tuple[float, float, int]:
    """(run wall seconds, seconds from the run's end to the last update, UI updates)."""
    from hypergpu_lab.ui import Dashboard

    dash = Dashboard(_coord())
    t = time.perf_counter()
    dash.runner.start(rounds=ROUNDS)
    dash.coord.wait()
    run = time.perf_counter() - t
    dash.runner.wait()
    tail = time.perf_counter() - t - run
    updates = dash.runner.throttle.batches
    assert dash.runner.last_report is not None and dash.runner.last_report.round == ROUNDS
    dash.close()
    return run, tail, updates


def main() -> str:
    logging.getLogger("hypergpu_lab").setLevel(logging.ERROR)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        headless()  # warm-up: imports, first-call costs
        with_dashboard()
        times: dict[str, list[float]] = {"run": [], "start": [], "ui": []}
        tails, updates = [], []
        fns = [("run", headless), ("start", background), ("ui", with_dashboard)]
        for i in range(REPEATS):
            for key, fn in fns[i % 3 :] + fns[: i % 3]:
                result = fn()
                if key == "ui":
                    times["ui"].append(result[0])
                    tails.append(result[1])
                    updates.append(result[2])
                else:
                    times[key].append(result)
    finally:
        torch.set_num_threads(threads)
    run, start, ui = (statistics.median(times[k]) for k in ("run", "start", "ui"))
    return "\n".join(
        [
            f"{ROUNDS} rounds, {NODES} nodes (digits, Dirichlet 0.5, mixed network), MLP, torch on 1 thread; "
            f"median of {REPEATS}, rotating order; no browser attached.",
            "",
            "| run | wall s | vs headless `run()` |",
            "|---|---:|---:|",
            f"| headless `coord.run()` | {run:.2f} | 1.00x |",
            f"| headless `coord.start()` + `wait()` (background thread) | {start:.2f} | {start / run:.2f}x |",
            f"| `Dashboard(coord)`, run from its runner | {ui:.2f} | {ui / run:.2f}x |",
            "",
            f"Dashboard vs the same background run without it: {ui / start:.2f}x. "
            f"UI updates per run: {statistics.median(updates):.0f} (at most 4 a second, batched); "
            f"last update {statistics.median(tails) * 1e3:.0f} ms after the round loop ended. Goal: at most 1.1x.",
        ]
    )


if __name__ == "__main__":
    print(main())
