"""Side by side with Flower: the same federated workload in this lab and in Flower's Ray simulation.

Workload (issue, part 1): 10 clients, digits, IID split, the 64-32-10 MLP, SGD lr 0.1 without
momentum, batch 32, 1 local epoch, 3 rounds of FedAvg with every client in every round, and the
global model evaluated on the held-out test set after every round.

Both sides use the same bytes: the lab's ``load_dataset("digits", seed=0)`` and
``partition(labels, 10, "iid", seed=0)`` (Flower's supernode ``partition-id`` i trains on the lab's
node i's shard), the same seed-0 initial weights and the same per-node batch order. This module
checks the shards, the test set and the initial weights for equality before it times anything,
and compares the two final global models after.

Each side runs in a fresh interpreter of its own (``python -m bench.flower --side ...``), so Ray's
processes never share a machine state with the lab's run and both sides pay their own first-call
costs. In each child:

* imports (torch, hypergpu_lab, and for Flower flwr and ray) are timed apart, outside the total;
* total wall = from just before anything is built to just after the last round (lab:
  ``NodePool.simulated`` + ``Coordinator(...)`` + ``run(rounds=3)``; Flower: loading and splitting
  the data, then ``run_simulation`` up to the end of round 3's server-side evaluation, which
  includes ``ray.init``, starting the actor processes and their imports, as a user pays them);
* steady-state wall per round = the mean of rounds 2 and 3 (lab: ``RoundReport.wall_s``; Flower:
  the time between the ends of consecutive rounds, stamped in the strategy's ``evaluate_fn``).

Flower runs with two client-resource settings: num_cpus=0.2 (all 10 supernodes' actors at once on
2 cores) and num_cpus=1 (one actor per core, fewer processes to start). The ratios are taken
against whichever setting did better on each measure, so no ratio rests on a slow Flower setting.

Run with ``python -m bench flower`` in an environment with the ``bench`` extra (flwr[simulation]).
Environment knobs: ``BENCH_FLOWER_CLIENT_CPUS`` (default ``0.2,1``), ``BENCH_FLOWER_REPEATS``
(Flower runs per setting, default 1) and ``BENCH_FLOWER_REPEATS_OURS`` (default 5).

Before each child starts, the parent waits until no Ray process of an earlier Flower run is left
(raylet, gcs_server, ray:: workers; at most 30 s), so neither side runs beside another's teardown.
Each side's steady-state round is the median over its runs of each run's mean of rounds 2-3.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import ROOT

NODES, ROUNDS, LR, BATCH, EPOCHS, SEED = 10, 3, 0.1, 32, 1, 0
#: Ray CPUs per ClientApp, one Flower run each: 0.2 fits all 10 actors on 2 cores, 1 starts one per core.
CLIENT_CPUS = tuple(float(c) for c in os.environ.get("BENCH_FLOWER_CLIENT_CPUS", "0.2,1").split(","))
#: Fresh-process runs per side (and per Flower setting); the median run by total wall is reported.
REPEATS_OURS = int(os.environ.get("BENCH_FLOWER_REPEATS_OURS", "5"))
REPEATS_FLOWER = int(os.environ.get("BENCH_FLOWER_REPEATS", "1"))
GOAL_TOTAL, GOAL_ROUND = 100.0, 20.0
CHILD_TIMEOUT_S = 900
INSTALL_HINT = "pip install -e '.[bench]'"


# -- the two sides, each run in a child interpreter ---------------------------------------------
def _ours() -> dict[str, Any]:
    t = time.perf_counter()
    import torch

    from hypergpu_lab import Coordinator, NodePool
    from hypergpu_lab.events import RoundReport

    imports = time.perf_counter() - t
    reports: list[RoundReport] = []
    ends: list[float] = []

    start = time.perf_counter()
    pool = NodePool.simulated(NODES, dataset="digits", partition="iid", network="perfect", seed=SEED)
    t_pool = time.perf_counter()
    coord = Coordinator(pool=pool, model="mlp", lr=LR, momentum=0.0, batch_size=BATCH, local_epochs=EPOCHS)
    coord.bus.subscribe(lambda rep: (reports.append(rep), ends.append(time.perf_counter())))
    t_coord = time.perf_counter()
    coord.run(rounds=ROUNDS, progress=False)
    end = time.perf_counter()

    # No work skipped: every node trained with batch 32 and every update was applied, every round.
    if len(reports) != ROUNDS:
        raise RuntimeError(f"{len(reports)} of {ROUNDS} rounds ran")
    for rep in reports:
        if rep.accepted != NODES or rep.test_accuracy is None or any(n.batch_size != BATCH for n in rep.nodes):
            raise RuntimeError(f"round {rep.round} did not train and apply every node: {rep.summary()}")
    return {
        "imports_s": imports,
        "pool_s": t_pool - start,
        "coordinator_s": t_coord - t_pool,
        "round_ends_s": [e - start for e in ends],
        "round_wall_s": [r.wall_s for r in reports],
        "total_s": end - start,
        "accuracy": [r.test_accuracy for r in reports],
        "final_weights": coord.weights.tolist(),
        "threads": torch.get_num_threads(),
    }


def _flower(cpus: float) -> dict[str, Any]:
    t = time.perf_counter()
    import ray
    import torch
    from flwr.simulation import run_simulation

    from . import flower_app

    imports = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        flower_app.export_shards(folder)  # load digits and split it once; each client reads its own shard
        t_data = time.perf_counter()
        run_simulation(
            server_app=flower_app.server_app,
            client_app=flower_app.client_app,
            num_supernodes=NODES,
            backend_config={"client_resources": {"num_cpus": cpus, "num_gpus": 0.0}},
        )
        returned = time.perf_counter()

    ends = flower_app.ROUND_ENDS
    if sorted(ends) != list(range(ROUNDS + 1)) or not flower_app.FINAL:
        raise RuntimeError(f"the Flower simulation finished rounds {sorted(ends)}, not 0..{ROUNDS}")
    walls = [ends[r] - ends[r - 1] for r in range(1, ROUNDS + 1)]
    walls[0] = ends[1] - start  # round 1 also waits for the data, Ray and the actors
    return {
        "imports_s": imports,
        "data_s": t_data - start,
        "cpus": cpus,
        "round_ends_s": [ends[r] - start for r in range(1, ROUNDS + 1)],
        "round_wall_s": walls,
        "total_s": ends[ROUNDS] - start,
        "returned_s": returned - start,
        "accuracy": [flower_app.ACCURACY[r] for r in range(1, ROUNDS + 1)],
        "final_weights": flower_app.FINAL[0].tolist(),
        "driver_threads": torch.get_num_threads(),
        "client_threads": f"{flower_app.CLIENT_THREADS[0]:g}" if flower_app.CLIENT_THREADS else "?",
        "flwr": _version("flwr"),
        "ray": ray.__version__,
    }


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


# -- the parent: checks, spawns, tabulates ----------------------------------------------------------
def _missing() -> str | None:
    for mod, what in (("flwr", "flwr"), ("ray", "ray (flwr[simulation])")):
        if importlib.util.find_spec(mod) is None:
            return f"{what} not installed: {INSTALL_HINT} (the `bench` extra), then `python -m bench flower`."
    return None


def _same_inputs() -> str:
    """Check that both sides start from identical shards, test set and weights; describe what matched."""
    import torch

    from hypergpu_lab import Coordinator, NodePool
    from hypergpu_lab.models import ParamLayout

    from . import flower_app

    pool = NodePool.simulated(NODES, dataset="digits", partition="iid", network="perfect", seed=SEED)
    if (pool.input_shape, pool.num_classes) != (flower_app.INPUT_SHAPE, flower_app.NUM_CLASSES):
        raise RuntimeError(f"the pool's samples are {pool.input_shape} x {pool.num_classes} classes")
    with tempfile.TemporaryDirectory() as folder:
        flower_app.export_shards(folder)
        for i in range(NODES):
            x, y = flower_app.shard(i)  # what Flower's client i will train on
            if not (torch.equal(x, pool[i].x) and torch.equal(y, pool[i].y)):
                raise RuntimeError(f"Flower's shard {i} differs from the lab's node {i}")
        flower_app.shard.cache_clear()
        os.environ.pop(flower_app.DATA_ENV)
    data = flower_app.dataset()
    if not (torch.equal(data.x_test, pool.x_test) and torch.equal(data.y_test, pool.y_test)):
        raise RuntimeError("the two test sets differ")
    coord = Coordinator(pool=pool, model="mlp", lr=LR, momentum=0.0, batch_size=BATCH, local_epochs=EPOCHS)
    model = flower_app.new_model()
    if not torch.equal(ParamLayout.of(model).flatten(model), coord.weights):
        raise RuntimeError("the initial weights differ")
    return (
        f"identical on both sides (checked before timing): the {NODES} shards "
        f"({', '.join(str(n.num_samples) for n in pool)} samples), the {len(pool.y_test)}-sample test set "
        f"and the {coord.layout.size:,} initial weights"
    )


SETTLE_TIMEOUT_S = 30.0
_RAY_PROCESSES = ("raylet", "gcs_server", "ray::")
_settled = [0.0]  # seconds spent waiting for Ray processes to exit, over the whole benchmark


def _ray_processes() -> int:
    """How many processes on this machine belong to a Ray cluster (read from /proc; 0 where there is none)."""
    count = 0
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = entry.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        count += any(name in cmd for name in _RAY_PROCESSES)
    return count


def _settle() -> None:
    """Wait until the previous Flower run's Ray processes have exited (at most SETTLE_TIMEOUT_S)."""
    t = time.perf_counter()
    while _ray_processes() and time.perf_counter() - t < SETTLE_TIMEOUT_S:
        time.sleep(0.2)
    _settled[0] += time.perf_counter() - t


def _spawn(*args: str) -> dict[str, Any]:
    _settle()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        # Flower and Ray phone home by default; the benchmark must not depend on a network.
        "FLWR_TELEMETRY_ENABLED": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    with tempfile.TemporaryDirectory() as tmp:
        out, log = Path(tmp) / "result.json", Path(tmp) / "child.log"
        t = time.perf_counter()
        with log.open("w") as fh:
            try:
                rc: int | str = subprocess.run(
                    [sys.executable, "-m", "bench.flower", *args, "--out", str(out)],
                    cwd=ROOT,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    timeout=CHILD_TIMEOUT_S,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                rc = f"timeout after {CHILD_TIMEOUT_S} s"
        process = time.perf_counter() - t
        if rc != 0 or not out.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise RuntimeError(f"`{' '.join(args)}` failed ({rc}); the last lines of its output:\n{tail}")
        result = json.loads(out.read_text())
    result["process_s"] = process
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["total_s"])[(len(runs) - 1) // 2]


def _steady(run: dict[str, Any]) -> float:
    return statistics.fmean(run["round_wall_s"][1:])


def _fmt(s: float) -> str:
    return f"{s:.3f}" if s < 10 else f"{s:.1f}"


def main() -> str:
    if (missing := _missing()) is not None:
        from .common import Unavailable

        raise Unavailable(missing)
    load0 = os.getloadavg()[0]
    try:
        same = _same_inputs()
        ours: list[dict[str, Any]] = []
        flower: dict[float, list[dict[str, Any]]] = {c: [] for c in CLIENT_CPUS}
        # Interleave the sides so that a load spike on a shared machine is less likely to hit one only.
        for i in range(max(REPEATS_OURS, REPEATS_FLOWER)):
            if i < REPEATS_OURS:
                ours.append(_spawn("--side", "ours"))
            for cpus in CLIENT_CPUS:
                if i < REPEATS_FLOWER:
                    flower[cpus].append(_spawn("--side", "flower", "--cpus", str(cpus)))
    except RuntimeError as exc:
        return f"The Flower comparison could not run: {exc}"
    return _report(ours, flower, same, (load0, os.getloadavg()[0]))


def _report(
    ours_runs: list[dict[str, Any]],
    flower_runs: dict[float, list[dict[str, Any]]],
    same: str,
    load: tuple[float, float],
) -> str:
    ours = _median_run(ours_runs)
    fls = [_median_run(runs) for runs in flower_runs.values()]
    best = min(fls, key=lambda r: r["total_s"])
    total_x = best["total_s"] / ours["total_s"]
    steady_ours = statistics.median(_steady(r) for r in ours_runs)
    steady_fl = [statistics.median(_steady(r) for r in runs) for runs in flower_runs.values()]
    round_x = min(steady_fl) / steady_ours
    diff = max(max(abs(a - b) for a, b in zip(ours["final_weights"], f["final_weights"], strict=True)) for f in fls)
    cpus_n = os.cpu_count() or 1

    def row(*cells: str) -> str:
        return "| " + " | ".join(cells) + " |"

    def verdict(x: float, goal: float) -> str:
        return f"**{x:.1f}x** (goal >= {goal:.0f}x: {'met' if x >= goal else 'missed'})"

    def accuracy(run: dict[str, Any]) -> str:
        return " / ".join(f"{a:.3f}" for a in run["accuracy"])

    def totals(runs: list[dict[str, Any]]) -> str:
        return ", ".join(_fmt(r["total_s"]) for r in runs)

    def each(fn: Any) -> list[str]:
        return [fn(f) for f in fls]

    fw = f"Flower {best['flwr']} (Ray {best['ray']})"
    rows = [
        row(
            "",
            "hypergpu_lab",
            *each(lambda f: f"Flower, num_cpus={f['cpus']:g} ({min(NODES, round(cpus_n / f['cpus']))} actors)"),
            "best Flower / lab",
        ),
        "|---|---:|" + "---:|" * len(fls) + "---:|",
        row(
            f"**total wall s** (set-up + {ROUNDS} rounds)",
            _fmt(ours["total_s"]),
            *each(lambda f: _fmt(f["total_s"])),
            verdict(total_x, GOAL_TOTAL),
        ),
        row(
            "**steady-state wall s per round** (mean of rounds 2-3, median over runs)",
            f"{steady_ours:.4f}",
            *(f"{s:.4f}" for s in steady_fl),
            verdict(round_x, GOAL_ROUND),
        ),
        row(
            "set-up + round 1 s",
            f"{ours['round_ends_s'][0]:.3f}",
            *each(lambda f: _fmt(f["round_wall_s"][0])),
            f"{min(f['round_wall_s'][0] for f in fls) / ours['round_ends_s'][0]:.1f}x",
        ),
        row(
            "of which set-up before round 1 s",
            f"{ours['pool_s'] + ours['coordinator_s']:.3f}",
            *each(lambda f: f"{f['data_s']:.3f} + Ray start-up in round 1"),
            "",
        ),
        row(
            "round 2 / round 3 s",
            f"{ours['round_wall_s'][1]:.4f} / {ours['round_wall_s'][2]:.4f}",
            *each(lambda f: f"{f['round_wall_s'][1]:.4f} / {f['round_wall_s'][2]:.4f}"),
            "",
        ),
        row("test accuracy after rounds 1 / 2 / 3", accuracy(ours), *each(accuracy), ""),
        row("imports s (not in the totals)", f"{ours['imports_s']:.2f}", *each(lambda f: f"{f['imports_s']:.2f}"), ""),
        row(
            "whole child process s (interpreter + imports + run + exit)",
            _fmt(ours["process_s"]),
            *each(lambda f: _fmt(f["process_s"])),
            f"{min(f['process_s'] for f in fls) / ours['process_s']:.1f}x",
        ),
    ]
    notes = [
        (
            f"Workload: {NODES} clients, digits, IID split (seed {SEED}), 64-32-10 MLP, SGD lr {LR} without "
            f"momentum, batch {BATCH}, {EPOCHS} local epoch, {ROUNDS} rounds of FedAvg with every client every "
            "round, server-side evaluation on the held-out test set after every round (no client-side evaluation "
            "on either side). The lab runs on the 'perfect' network profile (0-1 ms links, no loss) in virtual "
            "time, so link latency costs no wall time either way."
        ),
        (
            f"Inputs: {same}. Flower's driver loads and splits the data once and writes each shard to its own "
            "file, which that client loads; the clients train with torch.optim.SGD over the same per-node batch "
            f"order as the lab's nodes. Max |w_lab - w_flower| of the final global models: {diff:.2e}."
        ),
        (
            "Lab: total runs from before `NodePool.simulated(...)` through `Coordinator(...)` to the end of "
            f"`run(rounds={ROUNDS})`; set-up = data + pool {ours['pool_s']:.3f} s, coordinator "
            f"{ours['coordinator_s']:.3f} s; rounds are `RoundReport.wall_s`."
        ),
        (
            f"Flower: {fw}, `flwr.simulation.run_simulation` (ServerApp + ClientApp, message API, "
            f"`FedAvg(fraction_train=1.0, fraction_evaluate=0.0)`), {NODES} supernodes, num_gpus=0, telemetry and "
            "Ray usage stats off. Its total runs from loading the data and the `run_simulation` call to the end "
            f"of round {ROUNDS}'s evaluation (stamped in the strategy's `evaluate_fn`), so it includes `ray.init`, "
            "starting the actor processes and their imports; `run_simulation` returned, Ray shut down, at "
            + ", ".join(f"{_fmt(f['returned_s'])} s (num_cpus={f['cpus']:g})" for f in fls)
            + ". Its server collects replies by polling its in-memory Grid every 0.1 s (`InMemoryGrid`'s default "
            "`pull_interval`), which paces its rounds. Each ratio is against the Flower setting that did best on "
            "that line."
        ),
        (
            f"torch threads: lab {ours['threads']}; Flower's client actors {best['client_threads']} (Ray sets "
            f"OMP_NUM_THREADS=1 in them), its driver {best['driver_threads']}; OMP_NUM_THREADS "
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')} in this shell."
        ),
        (
            "Each run is a fresh interpreter; imports are timed apart and left out of the totals. Runs: lab "
            f"{len(ours_runs)} (totals {totals(ours_runs)} s), "
            + ", ".join(f"Flower num_cpus={c:g} {len(r)} (totals {totals(r)} s)" for c, r in flower_runs.items())
            + "; the steady-state line is the median over runs, every other line the run with the median total. "
            + "Lab rounds 2 / 3 in each run (ms): "
            + "; ".join(f"{r['round_wall_s'][1] * 1e3:.2f} / {r['round_wall_s'][2] * 1e3:.2f}" for r in ours_runs)
            + f". Waited {_settled[0]:.1f} s in all for Ray processes of earlier runs to exit before starting the next "
            + f"child. Load average (1 min) {load[0]:.2f} before, {load[1]:.2f} after."
        ),
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.flower", description="one side of `python -m bench flower`")
    p.add_argument("--side", choices=("ours", "flower"), required=True)
    p.add_argument("--cpus", type=float, default=CLIENT_CPUS[0], help="Ray CPUs per Flower ClientApp")
    p.add_argument("--out", required=True, help="where to write the JSON result")
    a = p.parse_args()
    Path(a.out).write_text(json.dumps(_ours() if a.side == "ours" else _flower(a.cpus)))
