"""What the side-by-side suites (``flower``, ``pfl``) share: fresh child processes, a CPU-bound
neighbour for the contended variant, the load beside each figure, and the lab's side of the workload.

The workload, identical on every side: digits, IID split (seed 0), the 64-32-10 MLP with seed-0
initial weights, SGD lr 0.1 without momentum, batch 32, ``EPOCHS`` local epochs over the lab's
per-node batch order, FedAvg weighted by samples with every client in every round, ``ROUNDS``
rounds, the global model's test accuracy after every round.

Each measurement is a fresh interpreter started by the parent, which times it from ``Popen`` to
exit ("whole process": interpreter start, imports, set-up, the rounds, teardown, exit), as a person
running a script pays it. The child reports its own in-run figures. Where ``busy`` is set, one
CPU-bound process (``while True: pass``) starts before the child and is killed after it.

Foreign simulators are not in the dev venv. Install them into a folder of their own and name it in
``BENCH_EXTRA_PATH`` (``os.pathsep``-separated); it goes first on the path of the parent and the
foreign children only, so their pinned dependencies (ray, protobuf, packaging) never reach the lab's
child, which runs on the dev venv alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .common import ROOT

ROUNDS, LR, BATCH, EPOCHS, SEED = 3, 0.1, 32, 5, 0
EXTRA_PATH_ENV = "BENCH_EXTRA_PATH"
CHILD_TIMEOUT_S = 900


def extra_path() -> list[str]:
    """The folders named in BENCH_EXTRA_PATH, put first on this process's path (idempotent)."""
    folders = [p for p in os.environ.get(EXTRA_PATH_ENV, "").split(os.pathsep) if p]
    for p in reversed(folders):
        if p not in sys.path:
            sys.path.insert(0, p)
    return folders


def workload(nodes: int) -> str:
    """The workload in words, for the report."""
    return (
        f"{nodes} clients, digits, IID split (seed {SEED}), 64-32-10 MLP (seed-{SEED} initial weights), SGD lr {LR} "
        f"without momentum, batch {BATCH}, {EPOCHS} local epochs over the lab's per-node batch order, {ROUNDS} rounds "
        "of sample-weighted FedAvg with every client every round, the global model's test accuracy after every round"
    )


def spawn(
    module: str, args: Iterable[str], *, busy: bool, foreign: bool, settle: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Run ``python -m module args --out FILE`` in a fresh interpreter; its JSON result plus whole-process
    seconds and the 1-minute load average just before it started (``load``) and at its end (``load_end``)."""
    if settle is not None:
        settle()
    paths = [str(ROOT), *(extra_path() if foreign else []), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        # Flower and Ray phone home by default; the benchmark must not depend on a network.
        "FLWR_TELEMETRY_ENABLED": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        if burner is not None:
            time.sleep(0.5)  # let it take its core
        with tempfile.TemporaryDirectory() as tmp:
            out, log = Path(tmp) / "result.json", Path(tmp) / "child.log"
            load = os.getloadavg()[0]
            t = time.perf_counter()
            with log.open("w") as fh:
                # Its own session, so that whatever it leaves behind (Ray's gcs_server, raylet, workers after
                # a failed start) is ended with it and never runs beside the next child.
                child = subprocess.Popen(
                    [sys.executable, "-m", module, *args, "--out", str(out)],
                    cwd=ROOT,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                try:
                    rc: int | str = child.wait(timeout=CHILD_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    rc = f"timeout after {CHILD_TIMEOUT_S} s"
                finally:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            process = time.perf_counter() - t
            if rc != 0 or not out.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
                raise RuntimeError(f"`{module} {' '.join(args)}` failed ({rc}); the last lines of its output:\n{tail}")
            result = json.loads(out.read_text())
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
    result.update(process_s=process, load=load, load_end=os.getloadavg()[0], busy=busy)
    return result


def median(runs: list[dict[str, Any]], key: str | Callable[[dict[str, Any]], float]) -> float:
    fn = key if callable(key) else (lambda r: r[key])
    return statistics.median(fn(r) for r in runs)


def loads(runs: list[dict[str, Any]]) -> str:
    """The 1-minute load average at the start of each run, as 'median (min-max)'."""
    ls = [r["load"] for r in runs]
    return f"{statistics.median(ls):.2f} ({min(ls):.2f}-{max(ls):.2f})"


def fmt(s: float) -> str:
    if s != s:  # NaN: not measured
        return "-"
    return f"{s:.3f}" if s < 10 else f"{s:.1f}"


def each(runs: list[dict[str, Any]], key: str, scale: float = 1.0) -> str:
    """Every run's figure with its load: 'figure @ load' (for the notes)."""
    return ", ".join(f"{fmt(r[key] * scale)} @ {r['load']:.2f}" for r in runs)


# -- the lab's side, run in a child interpreter ----------------------------------------------------
def lab_side(nodes: int) -> dict[str, Any]:
    """The workload in this lab; imports, set-up and rounds timed apart."""
    t = time.perf_counter()
    import torch

    from hypergpu_lab import Coordinator, NodePool
    from hypergpu_lab.events import RoundReport

    imports = time.perf_counter() - t
    reports: list[RoundReport] = []
    ends: list[float] = []

    start = time.perf_counter()
    pool = NodePool.simulated(nodes, dataset="digits", partition="iid", network="perfect", seed=SEED)
    coord = Coordinator(pool=pool, model="mlp", lr=LR, momentum=0.0, batch_size=BATCH, local_epochs=EPOCHS)
    coord.bus.subscribe(lambda rep: (reports.append(rep), ends.append(time.perf_counter())))
    t_setup = time.perf_counter()
    coord.run(rounds=ROUNDS, progress=False)
    end = time.perf_counter()

    # No work skipped: every node trained with batch 32 and every update was applied, every round.
    if len(reports) != ROUNDS:
        raise RuntimeError(f"{len(reports)} of {ROUNDS} rounds ran")
    for rep in reports:
        if rep.accepted != nodes or rep.test_accuracy is None or any(n.batch_size != BATCH for n in rep.nodes):
            raise RuntimeError(f"round {rep.round} did not train and apply every node: {rep.summary()}")
    return {
        "imports_s": imports,
        "setup_s": t_setup - start,
        "round_ends_s": [e - start for e in ends],
        "round_wall_s": [r.wall_s for r in reports],
        "loop_s": end - t_setup,
        "total_s": end - start,
        "accuracy": [r.test_accuracy for r in reports],
        "final_weights": coord.weights.tolist(),
        "threads": torch.get_num_threads(),
    }
