"""Side by side with Flower: the same federated workload in this lab and in Flower's Ray simulation.

Workload (``bench.sidebyside``): 10 clients, digits, IID split, the 64-32-10 MLP, SGD lr 0.1 without
momentum, batch 32, 5 local epochs, 3 rounds of sample-weighted FedAvg with every client in every round,
and the global model evaluated on the held-out test set after every round.

Both sides use the same bytes: the lab's ``load_dataset("digits", seed=0)`` and
``partition(labels, 10, "iid", seed=0)`` (Flower's supernode ``partition-id`` i trains on the lab's
node i's shard), the same seed-0 initial weights and the same per-node batch order. This module
checks the shards, the test set and the initial weights for equality before it times anything,
and compares the two final global models after.

Every run is a fresh interpreter (``python -m bench.flower --side ...``) and reports two kinds of figure:

* whole process, as a person running a script pays it: from the parent starting ``python`` to the
  child's exit (interpreter, imports, set-up, the 3 rounds, teardown: for Flower, Ray's shutdown);
* in-run: total = from just before anything is built to the end of round 3 (lab:
  ``NodePool.simulated`` + ``Coordinator(...)`` + ``run(rounds=3)``; Flower: loading and splitting
  the data, then ``run_simulation`` up to the end of round 3's server-side evaluation, which includes
  ``ray.init`` and starting the actors); steady round = the mean of rounds 2 and 3 (lab:
  ``RoundReport.wall_s``; Flower: the time between the ends of consecutive rounds, stamped in the
  strategy's ``evaluate_fn``), median over runs.

The sides alternate run by run (lab, Flower num_cpus=0.2, lab, Flower num_cpus=1, ...), first on the
machine as found and then with one CPU-bound process started beside each run (``busy``), and the
1-minute load average at the start of each run is written beside its figure. Flower runs with two
client-resource settings, num_cpus=0.2 (all 10 supernodes' actors at once on 2 cores) and num_cpus=1
(one actor per core); each ratio is against whichever setting did better on that line.

Run with ``python -m bench flower`` where flwr[simulation] is importable: the ``bench`` extra, or a
folder named in ``BENCH_EXTRA_PATH`` (see ``bench.sidebyside``). Knobs: ``BENCH_FLOWER_CLIENT_CPUS``
(default ``0.2,1``), ``BENCH_FLOWER_REPEATS`` (runs per side, setting and machine state; default 3),
``BENCH_FLOWER_BUSY`` (``0`` skips the contended runs).

Before each child starts, the parent waits until no Ray process of an earlier Flower run is left
(raylet, gcs_server, ray:: workers; at most 30 s), so neither side runs beside another's teardown.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .sidebyside import BATCH, EPOCHS, LR, ROUNDS, SEED, each, extra_path, fmt, lab_side, loads, median, spawn, workload

NODES = 10
#: Ray CPUs per ClientApp, one Flower run each: 0.2 fits all 10 actors on 2 cores, 1 starts one per core.
CLIENT_CPUS = tuple(float(c) for c in os.environ.get("BENCH_FLOWER_CLIENT_CPUS", "0.2,1").split(","))
REPEATS = int(os.environ.get("BENCH_FLOWER_REPEATS", "3"))
BUSY = (False, True) if os.environ.get("BENCH_FLOWER_BUSY", "1") != "0" else (False,)
GOAL_PROCESS, GOAL_ROUND, GOAL_ROUND_BUSY = 20.0, 50.0, 30.0
INSTALL_HINT = "pip install -e '.[bench]'"


# -- the two sides, each run in a child interpreter ---------------------------------------------
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
        failed, lost = _start_ray(ray)
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
    walls[0] = ends[1] - start - lost  # round 1 also waits for the data, Ray and the actors
    return {
        "imports_s": imports,
        "data_s": t_data - start,
        "cpus": cpus,
        "round_ends_s": [ends[r] - start for r in range(1, ROUNDS + 1)],
        "round_wall_s": walls,
        "total_s": ends[ROUNDS] - start - lost,
        "ray_failed": failed,
        "ray_lost_s": lost,
        "returned_s": returned - start,
        "accuracy": [flower_app.ACCURACY[r] for r in range(1, ROUNDS + 1)],
        "final_weights": flower_app.FINAL[0].tolist(),
        "driver_threads": torch.get_num_threads(),
        "client_threads": f"{flower_app.CLIENT_THREADS[0]:g}" if flower_app.CLIENT_THREADS else "?",
        "flwr": _version("flwr"),
        "ray": ray.__version__,
    }


def _start_ray(ray: Any) -> tuple[int, float]:
    """Start Ray as Flower's ``RayBackend.init_ray`` does (which then finds it running and goes on).

    On a busy machine Ray's node can miss its fixed 30 s start-up window and fail; a person would
    start again, so this retries (at most 3 times) and returns the failed starts and the seconds they
    took, which the figures leave out.
    """
    pythonpath = os.pathsep.join(sys.path)
    if os.environ.get("PYTHONPATH"):
        pythonpath = f"{pythonpath}{os.pathsep}{os.environ['PYTHONPATH']}"
    os.environ["PYTHONPATH"] = pythonpath
    failed, lost = 0, 0.0
    while True:
        t = time.perf_counter()
        try:
            ray.init(runtime_env={"env_vars": {"PYTHONPATH": pythonpath}}, include_dashboard=False)
            return failed, lost
        except Exception:
            if failed == 3:
                raise
            traceback.print_exc()
            ray.shutdown()
            failed, lost = failed + 1, lost + time.perf_counter() - t


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


_foreign_ray: set[str] = set()  # Ray processes already running when the benchmark started (another user's)


def _ray_processes() -> set[str]:
    """The pids of processes on this machine that belong to a Ray cluster (read from /proc)."""
    pids = set()
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = entry.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(name in cmd for name in _RAY_PROCESSES):
            pids.add(entry.parent.name)
    return pids


def _settle() -> None:
    """Wait until the previous Flower run's Ray processes have exited (at most SETTLE_TIMEOUT_S)."""
    t = time.perf_counter()
    while _ray_processes() - _foreign_ray and time.perf_counter() - t < SETTLE_TIMEOUT_S:
        time.sleep(0.2)
    _settled[0] += time.perf_counter() - t


def _run(side: str, busy: bool, cpus: float = 0.0) -> dict[str, Any]:
    args = ["--side", "ours"] if side == "lab" else ["--side", "flower", "--cpus", str(cpus)]
    run = spawn("bench.flower", args, busy=busy, foreign=side != "lab", settle=_settle)
    run["process_s"] -= run.get("ray_lost_s", 0.0)  # failed Ray starts, retried: left out (see _start_ray)
    return run


_failed: list[str] = []  # Flower starts that failed and were run again


def _flower_run(busy: bool, cpus: float) -> dict[str, Any]:
    """One Flower run; on a busy machine Ray's node can miss its fixed 30 s start-up window, so one retry."""
    try:
        return _run("flower", busy, cpus)
    except RuntimeError as exc:
        _failed.append(str(exc).splitlines()[-1][:200])
        return _run("flower", busy, cpus)


def _steady(run: dict[str, Any]) -> float:
    return statistics.fmean(run["round_wall_s"][1:])


def main() -> str:
    extra_path()
    if (missing := _missing()) is not None:
        from .common import Unavailable

        raise Unavailable(missing)
    load0 = os.getloadavg()[0]
    _foreign_ray.update(_ray_processes())
    runs: dict[bool, dict[str, list[dict[str, Any]]]] = {b: {} for b in BUSY}
    try:
        same = _same_inputs()
        # Alternate the sides run by run, so that both see the same load on a shared machine.
        for _ in range(REPEATS):
            for busy in BUSY:
                for cpus in CLIENT_CPUS:
                    runs[busy].setdefault("lab", []).append(_run("lab", busy))
                    runs[busy].setdefault(f"{cpus:g}", []).append(_flower_run(busy, cpus))
    except RuntimeError as exc:
        return f"The Flower comparison could not run: {exc}"
    return _report(runs, same, (load0, os.getloadavg()[0]))


def _report(runs: dict[bool, dict[str, list[dict[str, Any]]]], same: str, load: tuple[float, float]) -> str:
    settings = [f"{c:g}" for c in CLIENT_CPUS]
    cpus_n = os.cpu_count() or 1
    head = "| measure | machine | lab | " + " | ".join(
        f"Flower num_cpus={c} ({min(NODES, round(cpus_n / float(c)))} actors)" for c in settings
    )
    rows = [head + " | best Flower / lab | load (1 min) |", "|---|---|---:|" + "---:|" * len(settings) + "---:|---|"]
    lines = (
        ("**whole process s** (python start to exit)", "process_s", {False: GOAL_PROCESS}),
        (f"in-run total s (set-up + {ROUNDS} rounds)", "total_s", {}),
        ("**steady round s** (mean of rounds 2-3)", _steady, {False: GOAL_ROUND, True: GOAL_ROUND_BUSY}),
    )
    flower_versions = ""
    seen: dict[tuple[bool, str], tuple[float, float, float, str]] = {}
    for busy, sides in runs.items():
        machine = "one CPU-bound process beside each run" if busy else "as found"
        all_runs = [r for v in sides.values() for r in v]
        for label, key, goals in lines:
            lab = median(sides["lab"], key)
            fl = [median(sides[c], key) for c in settings]
            x = min(fl) / lab
            goal = f" (goal >= {goals[busy]:.0f}x: {'met' if x >= goals[busy] else 'missed'})" if busy in goals else ""
            digits = (lambda v: f"{v:.4f}") if key is _steady else fmt
            seen[busy, label] = (lab, min(fl), x, loads(all_runs))
            rows.append(
                f"| {label} | {machine} | {digits(lab)} | "
                + " | ".join(digits(f) for f in fl)
                + f" | **{x:.1f}x**{goal} | {loads(all_runs)} |"
            )
        flower_versions = f"Flower {sides[settings[0]][0]['flwr']} (Ray {sides[settings[0]][0]['ray']})"
    accuracies = {tuple(round(a, 6) for a in r["accuracy"]) for v in runs.values() for s in v.values() for r in s}
    lab0 = runs[False]["lab"][0]
    diff = max(
        max(abs(a - b) for a, b in zip(lab0["final_weights"], r["final_weights"], strict=True))
        for v in runs.values()
        for c in settings
        for r in v[c]
    )
    notes = [
        (
            f"Workload, identical on both sides: {workload(NODES)}; no client-side evaluation on either side. The lab "
            "runs on the 'perfect' network profile (virtual time), so link latency costs no wall time either way."
        ),
        (
            f"Inputs: {same}. Test accuracy after rounds 1 / 2 / 3 in every run of both sides: "
            + ("; ".join(" / ".join(f"{a:.3f}" for a in acc) for acc in sorted(accuracies)))
            + f" ({'identical' if len(accuracies) == 1 else 'NOT identical'}); max |w_lab - w_flower| of the final "
            f"global models {diff:.2e}."
        ),
        (
            f"Flower: {flower_versions}, `flwr.simulation.run_simulation` (ServerApp + ClientApp, message API, "
            f"`FedAvg(fraction_train=1.0, fraction_evaluate=0.0)`), {NODES} supernodes, num_gpus=0, telemetry and Ray "
            "usage stats off; its server collects replies by polling its in-memory Grid every 0.1 s (`InMemoryGrid`'s "
            "default `pull_interval`), which paces its rounds. Flower's driver loads and splits the data once and "
            "writes each shard to its own file, which that client loads."
        ),
        (
            f"Medians of {REPEATS * len(CLIENT_CPUS)} lab runs and {REPEATS} runs per Flower setting for each machine "
            "state, run in the order lab, Flower "
            + ", lab, Flower ".join(settings)
            + ", ...; load = the 1-minute load average at the "
            f"start of each run, median (min-max). Load average {load[0]:.2f} before the session, {load[1]:.2f} after."
        ),
    ]
    for busy, sides in runs.items():
        lab = sides["lab"]
        notes.append(
            f"{'Busy' if busy else 'As found'}, each run's figure @ load: whole process s: lab {each(lab, 'process_s')}; "
            + "; ".join(f"Flower {c} {each(sides[c], 'process_s')}" for c in settings)
            + ". Steady round ms: lab "
            + ", ".join(f"{_steady(r) * 1e3:.1f} @ {r['load']:.2f}" for r in lab)
            + "; "
            + "; ".join(
                f"Flower {c} " + ", ".join(f"{_steady(r) * 1e3:.0f} @ {r['load']:.2f}" for r in sides[c])
                for c in settings
            )
            + f". Lab imports {median(lab, 'imports_s'):.2f} s, set-up {median(lab, 'setup_s'):.3f} s, torch threads "
            f"{lab[0]['threads']}; Flower imports "
            + ", ".join(f"{median(sides[c], 'imports_s'):.2f}" for c in settings)
            + " s."
        )
    retried = [r for v in runs.values() for c in settings for r in v[c] if r["ray_failed"]]
    if retried:
        notes.append(
            f"Ray's node missed its fixed 30 s start-up window and was started again in {len(retried)} Flower run(s) "
            f"({sum(r['ray_failed'] for r in retried)} failed starts, {sum(r['ray_lost_s'] for r in retried):.1f} s in "
            "all); the failed starts' time is left out of Flower's figures."
        )
    if _failed:
        notes.append(
            f"{len(_failed)} Flower start(s) failed and were run again; the last line each printed: "
            + "; ".join(_failed)
        )
    notes.append(f"Waited {_settled[0]:.1f} s in all for Ray processes of earlier runs to exit before the next child.")
    return _headline(seen, runs) + "\n\n" + "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def _headline(seen: dict[tuple[bool, str], tuple[float, float, float, str]], runs: dict[bool, Any]) -> str:
    """The figures as a person reads them, in one paragraph above the table."""
    process, _, steady = (label for label in dict.fromkeys(label for _, label in seen))
    p_lab, p_fl, p_x, p_load = seen[False, process]
    s_lab, s_fl, s_x, _ = seen[False, steady]
    text = (
        f"**As a person reads it:** the whole run, `python` start to exit, takes {fmt(p_lab)} s in the lab and "
        f"{fmt(p_fl)} s in Flower: **{p_x:.1f}x** at load {p_load}. Of the lab's {fmt(p_lab)} s, "
        f"{median(runs[False]['lab'], 'imports_s'):.2f} s are imports (torch). In the run, a steady round takes "
        f"{s_lab * 1e3:.1f} ms against {s_fl * 1e3:.0f} ms: **{s_x:.1f}x**"
    )
    if (True, steady) in seen:
        b_lab, b_fl, b_x, b_load = seen[True, steady]
        text += (
            f"; with one CPU-bound process beside each run, {b_lab * 1e3:.1f} ms against {b_fl * 1e3:.0f} ms: "
            f"**{b_x:.1f}x** at load {b_load}"
        )
    quiet = min(r["load"] for v in runs[False].values() for r in v)
    note = f" The machine was shared (load >= {quiet:.2f} at every run's start): no quiet-machine figure was possible."
    return text + "." + (note if quiet >= 1.0 else "")


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.flower", description="one side of `python -m bench flower`")
    p.add_argument("--side", choices=("ours", "flower"), required=True)
    p.add_argument("--cpus", type=float, default=CLIENT_CPUS[0], help="Ray CPUs per Flower ClientApp")
    p.add_argument("--out", required=True, help="where to write the JSON result")
    a = p.parse_args()
    try:
        Path(a.out).write_text(json.dumps(lab_side(NODES) if a.side == "ours" else _flower(a.cpus)))
    except Exception:  # a failed Ray start leaves threads that keep the interpreter alive: end it here
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(1)
