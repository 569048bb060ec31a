"""Side by side with Apple's pfl-research (PyPI ``pfl``, single process): the same workload at 10 / 100 / 1000 clients.

The workload is ``bench.sidebyside``'s (digits, IID, the 64-32-10 MLP, SGD lr 0.1, batch 32, 5 local
epochs, 3 rounds of sample-weighted FedAvg, test accuracy after every round). pfl gets the same bytes:

* data: client i's dataset is exactly the lab's node i's shard (``NodePool.simulated``'s pool,
  built once in pfl's process), as torch tensors;
* batch order: each client's dataset yields, epoch by epoch, the lab's per-node order
  (``epoch_orders(node_seed(seed, round, node))``); pfl's own ``Dataset.iter`` does not shuffle;
* model: the lab's ``build_model("mlp")`` with the same seed-0 weights, wrapped with the ``loss`` and
  ``metrics`` methods pfl's ``PyTorchModel`` asks for; local ``torch.optim.SGD(lr=0.1)``, central
  ``SGD(lr=1.0)`` (pfl's FedAvg applies the averaged difference as a gradient: the plain average);
* aggregation: pfl's ``FederatedAveraging`` with ``WeightByDatapoints`` (sample-weighted, as the lab);
  every client every round (cohort = all clients, ``minimize_reuse`` sampler);
* evaluation: a callback computes the global model's test accuracy after every round, as the lab does;
  no client-side evaluation on either side (pfl's per-client evaluation in its first round is made a no-op
  by the model's ``metrics``, as a user without client metrics would write it).

pfl runs as its users run it: torch's default threads, and also with one thread (``torch.set_num_threads(1)``
before anything is built); every ratio is against whichever pfl setting did better on that line. The
final global models of both sides are compared (max |w_lab - w_pfl|) and the final accuracies must be equal.

Each run is a fresh interpreter (``python -m bench.pfl_compare --side ...``). Figures: "loop" = the
3 rounds (lab ``coord.run(rounds=3)``, pfl ``algorithm.run(...)``), set-up excluded; "whole process"
= interpreter start to exit, timed by the parent. Sides alternate run by run, with the 1-minute load
average written beside each figure; "busy" starts one CPU-bound process beside each run (10 clients only:
pfl with two threads beside a busy core takes minutes at 100 and 1000 clients).

Needs ``pfl`` (0.6.x) importable: install it outside the dev venv and name the folder in ``BENCH_EXTRA_PATH``
(see ``bench.sidebyside``); ``pip install --target DIR --no-deps pfl==0.6.0`` plus the few of its
dependencies the venv lacks (dp-accounting, prv-accountant, multiprocess, dill, absl-py; pfl's pins).
Knobs: ``BENCH_PFL_SIZES`` (default ``10,100,1000``), ``BENCH_PFL_REPEATS`` (default 3),
``BENCH_PFL_BUSY_SIZES`` (default ``10``), ``BENCH_PFL_THREADS`` (default ``default,1``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

from .sidebyside import BATCH, EPOCHS, LR, ROUNDS, SEED, each, extra_path, fmt, lab_side, loads, median, spawn, workload

SIZES = tuple(int(n) for n in os.environ.get("BENCH_PFL_SIZES", "10,100,1000").split(","))
BUSY_SIZES = tuple(int(n) for n in os.environ.get("BENCH_PFL_BUSY_SIZES", "10").split(",") if n)
REPEATS = int(os.environ.get("BENCH_PFL_REPEATS", "3"))
#: pfl's torch threads, one setting per run: "default" (torch's choice, as its users run it) and/or a number.
PFL_THREADS = tuple(os.environ.get("BENCH_PFL_THREADS", "default,1").split(","))
#: Beside a CPU-bound process pfl runs with one thread only: with torch's default two threads its
#: 10-client loop did not finish in 2.5 minutes on this machine (see BENCHMARKS.md).
PFL_THREADS_BUSY = tuple(t for t in PFL_THREADS if t != "default") or ("1",)
GOAL_LOOP, GOAL_PROCESS = 10.0, 4.0
#: pfl's per-client evaluation batch: larger than any shard, so it is told apart from a training pass.
EVAL_BATCH = 1 << 30


# -- pfl's side, run in a child interpreter --------------------------------------------------------
def _pfl(nodes: int, threads: str) -> dict[str, Any]:
    t = time.perf_counter()
    import torch

    if threads != "default":
        torch.set_num_threads(int(threads))
    from pfl.aggregate.simulate import SimulatedBackend
    from pfl.aggregate.weighting import WeightByDatapoints
    from pfl.algorithm import FederatedAveraging, NNAlgorithmParams
    from pfl.callback.base import TrainingProcessCallback
    from pfl.data.dataset import Dataset
    from pfl.data.federated_dataset import FederatedDataset
    from pfl.data.sampling import get_user_sampler
    from pfl.hyperparam import NNEvalHyperParams, NNTrainHyperParams
    from pfl.metrics import Metrics
    from pfl.model.pytorch import PyTorchModel
    from torch import nn

    from hypergpu_lab import NodePool
    from hypergpu_lab.models import ParamLayout, build_model
    from hypergpu_lab.training import epoch_orders, node_seed

    imports = time.perf_counter() - t

    class LabOrder(Dataset):  # type: ignore[misc]
        """One client's shard; each pass yields the lab's batch order for that round and epoch."""

        def __init__(self, x: torch.Tensor, y: torch.Tensor, node: int, round_: int) -> None:
            super().__init__((x, y), user_id=node)
            self._xy = (x, y)
            self._orders = iter(epoch_orders(node_seed(SEED, round_, node), len(y), EPOCHS))

        def iter(self, batch_size: int | None):  # type: ignore[no-untyped-def]
            if batch_size != BATCH:  # pfl's per-client evaluation (EVAL_BATCH; see Net.metrics), not training
                yield self._xy
                return
            x, y = self._xy
            perm = torch.from_numpy(next(self._orders))
            for s in range(0, len(perm), batch_size):
                idx = perm[s : s + batch_size]
                yield x[idx], y[idx]

    class Net(nn.Module):
        def __init__(self, model: nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)

        def loss(self, x: torch.Tensor, y: torch.Tensor, eval: bool = False) -> torch.Tensor:
            return nn.functional.cross_entropy(self(x), y)

        def metrics(self, x: torch.Tensor, y: torch.Tensor, eval: bool = True) -> dict[str, Any]:
            # pfl evaluates every client before and after local training in its first round
            # (iteration 0 % evaluation_frequency == 0); the lab does no client-side evaluation, so none here.
            return {}

    accuracy: list[float] = []
    ends: list[float] = []

    class TestAccuracy(TrainingProcessCallback):  # type: ignore[misc]
        """The global model's test accuracy after every round, computed as ``Coordinator.evaluate`` does."""

        def after_central_iteration(self, aggregate_metrics, model, *, central_iteration):  # type: ignore[no-untyped-def]
            net.eval()
            with torch.no_grad():
                accuracy.append(int((net(pool.x_test).argmax(1) == pool.y_test).sum()) / len(pool.y_test))
            ends.append(time.perf_counter())
            return False, Metrics()

    start = time.perf_counter()
    pool = NodePool.simulated(nodes, dataset="digits", partition="iid", network="perfect", seed=SEED)
    shards = [(pool[i].x, pool[i].y) for i in range(nodes)]
    asked: dict[int, int] = {}

    def make_dataset(node: int) -> LabOrder:
        asked[node] = asked.get(node, 0) + 1  # the n-th time a client is asked for is round n
        return LabOrder(*shards[node], node, asked[node])

    net = Net(build_model("mlp", pool.input_shape, pool.num_classes, seed=SEED))
    model = PyTorchModel(
        model=net,
        local_optimizer_create=torch.optim.SGD,
        central_optimizer=torch.optim.SGD(net.parameters(), lr=1.0),
    )
    backend = SimulatedBackend(
        training_data=FederatedDataset(make_dataset, get_user_sampler("minimize_reuse", list(range(nodes)))),
        val_data=None,
        postprocessors=[WeightByDatapoints()],
    )
    algorithm_params = NNAlgorithmParams(
        central_num_iterations=ROUNDS, evaluation_frequency=ROUNDS + 1, train_cohort_size=nodes, val_cohort_size=None
    )
    train_params = NNTrainHyperParams(local_learning_rate=LR, local_num_epochs=EPOCHS, local_batch_size=BATCH)
    eval_params = NNEvalHyperParams(local_batch_size=EVAL_BATCH)
    t_setup = time.perf_counter()
    FederatedAveraging().run(
        algorithm_params=algorithm_params,
        backend=backend,
        model=model,
        model_train_params=train_params,
        model_eval_params=eval_params,
        callbacks=[TestAccuracy()],
    )
    end = time.perf_counter()

    if len(accuracy) != ROUNDS or sorted(asked.values()) != [ROUNDS] * nodes:
        raise RuntimeError(f"pfl ran {len(accuracy)} rounds; clients asked for: {sorted(set(asked.values()))} times")
    return {
        "imports_s": imports,
        "setup_s": t_setup - start,
        "round_ends_s": [e - start for e in ends],
        "loop_s": end - t_setup,
        "total_s": end - start,
        "accuracy": accuracy,
        "final_weights": ParamLayout.of(net.model).flatten(net.model).tolist(),
        "threads": torch.get_num_threads(),
        "pfl": _version("pfl"),
    }


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


# -- the parent ------------------------------------------------------------------------------------
def _run(side: str, nodes: int, busy: bool, threads: str = "default") -> dict[str, Any]:
    args = ["--side", side, "--clients", str(nodes), "--threads", threads]
    return spawn("bench.pfl_compare", args, busy=busy, foreign=side == "pfl")


def main() -> str:
    extra_path()
    if importlib.util.find_spec("pfl") is None:
        from .common import Unavailable

        raise Unavailable("pfl not installed: install pfl 0.6.x into a folder and name it in BENCH_EXTRA_PATH.")
    plan = [(n, False) for n in SIZES] + [(n, True) for n in BUSY_SIZES]
    runs: dict[tuple[int, bool], dict[str, list[dict[str, Any]]]] = {key: {} for key in plan}
    load0 = os.getloadavg()[0]
    try:
        # Alternate the sides run by run (lab, pfl, lab, pfl 1 thread, ...), so both see the same load.
        for _ in range(REPEATS):
            for nodes, busy in plan:
                for threads in PFL_THREADS_BUSY if busy else PFL_THREADS:
                    runs[nodes, busy].setdefault("lab", []).append(_run("ours", nodes, busy))
                    runs[nodes, busy].setdefault(threads, []).append(_run("pfl", nodes, busy, threads))
    except RuntimeError as exc:
        return f"The pfl comparison could not run: {exc}"
    return _report(runs, (load0, os.getloadavg()[0]))


def _report(runs: dict[tuple[int, bool], dict[str, list[dict[str, Any]]]], load: tuple[float, float]) -> str:
    rows = [
        "| clients | machine | lab loop s | pfl loop s (default / 1 thread) | **loop ratio** | lab whole process s "
        "| pfl whole process s (default / 1 thread) | **whole-process ratio** | final accuracy lab / pfl | load (1 min) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    notes = []
    pfl_version = "?"
    seen: dict[tuple[int, bool], tuple[float, float, bool, str]] = {}
    for (nodes, busy), sides in runs.items():
        lab, pfls = sides["lab"], {t: sides[t] for t in PFL_THREADS if t in sides}
        pfl_version = next(iter(pfls.values()))[0]["pfl"]
        loop = {k: median(v, "loop_s") for k, v in sides.items()}
        proc = {k: median(v, "process_s") for k, v in sides.items()}
        loop_x = min(loop[t] for t in pfls) / loop["lab"]
        proc_x = min(proc[t] for t in pfls) / proc["lab"]
        loop.setdefault("default", float("nan"))
        proc.setdefault("default", float("nan"))
        acc_lab = {r["accuracy"][-1] for r in lab}
        acc_pfl = {r["accuracy"][-1] for v in pfls.values() for r in v}
        diff = max(
            max(abs(a - b) for a, b in zip(lab[0]["final_weights"], r["final_weights"], strict=True))
            for v in pfls.values()
            for r in v
        )
        goal_loop = f" (goal >= {GOAL_LOOP:.0f}x: {'met' if loop_x >= GOAL_LOOP else 'missed'})" if not busy else ""
        goal_proc = (
            f" (goal >= {GOAL_PROCESS:.0f}x: {'met' if proc_x >= GOAL_PROCESS else 'missed'})"
            if nodes == 10 and not busy
            else ""
        )
        same = "identical" if acc_lab == acc_pfl and len(acc_lab) == 1 else "DIFFER"
        seen[nodes, busy] = (loop_x, proc_x, same == "identical", loads([r for v in sides.values() for r in v]))
        rows.append(
            f"| {nodes} | {'one CPU-bound process beside each run' if busy else 'as found'} | {fmt(loop['lab'])} "
            f"| {fmt(loop['default'])} / {fmt(loop['1'])} | **{loop_x:.1f}x**{goal_loop} | {fmt(proc['lab'])} "
            f"| {fmt(proc['default'])} / {fmt(proc['1'])} | **{proc_x:.1f}x**{goal_proc} "
            f"| {' '.join(f'{a:.3f}' for a in sorted(acc_lab))} / {' '.join(f'{a:.3f}' for a in sorted(acc_pfl))} "
            f"({same}; max weight diff {diff:.1e}) | {loads([r for v in sides.values() for r in v])} |"
        )
        notes.append(
            f"{nodes} clients{', busy' if busy else ''}: loop s @ load, in run order: lab {each(lab, 'loop_s')}; "
            + "; ".join(f"pfl {t} {each(v, 'loop_s')}" for t, v in pfls.items())
            + f". Whole process s: lab {each(lab, 'process_s')}; "
            + "; ".join(f"pfl {t} {each(v, 'process_s')}" for t, v in pfls.items())
            + f". Lab imports {median(lab, 'imports_s'):.2f} s, set-up {median(lab, 'setup_s'):.3f} s; pfl imports "
            f"{median(pfls['1'], 'imports_s'):.2f} s, set-up {median(pfls['1'], 'setup_s'):.3f} s."
        )
    head = (
        f"Workload, identical on both sides: {workload(0).replace('0 clients, ', '')}. pfl {pfl_version}, "
        "`FederatedAveraging` + `SimulatedBackend` (single process) with `WeightByDatapoints`; each client's dataset "
        "yields the lab's per-node batch order; the lab on the 'perfect' network (virtual time). Loop = the "
        f"{ROUNDS} rounds with set-up excluded; whole process = `python` start to exit (imports, set-up, loop, "
        f"teardown), timed by the parent. Medians over {REPEATS} runs per pfl setting and a lab run before each, "
        f"in the order lab, pfl, ... (pfl's torch threads: {', '.join(PFL_THREADS)}); each ratio is against the "
        "better pfl setting. Load = 1-minute load average at the start "
        f"of each run: median (min-max). Load average {load[0]:.2f} before the session, {load[1]:.2f} after."
    )
    return _headline(seen) + "\n\n" + head + "\n\n" + "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.pfl_compare", description="one side of `python -m bench pfl`")
    p.add_argument("--side", choices=("ours", "pfl"), required=True)
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--threads", default="default", help="pfl's torch threads: 'default' or a number")
    p.add_argument("--out", required=True, help="where to write the JSON result")
    a = p.parse_args()
    result = lab_side(a.clients) if a.side == "ours" else _pfl(a.clients, a.threads)
    Path(a.out).write_text(json.dumps(result))


def _headline(seen: dict[tuple[int, bool], tuple[float, float, bool, str]]) -> str:
    """The figures as a person reads them, in one paragraph above the table."""
    quiet = sorted(n for n, busy in seen if not busy)
    text = (
        "**As a person reads it:** the lab's training loop is "
        + " / ".join(f"**{seen[n, False][0]:.1f}x**" for n in quiet)
        + f" faster than pfl's at {' / '.join(str(n) for n in quiet)} clients, the whole process "
        + " / ".join(f"{seen[n, False][1]:.1f}x" for n in quiet)
        + f" (load {seen[quiet[0], False][3]} at {quiet[0]} clients)"
    )
    busy = sorted(n for n, b in seen if b)
    if busy:
        text += "; with one CPU-bound process beside each run, the loop " + ", ".join(
            f"{seen[n, True][0]:.1f}x at {n} clients" for n in busy
        )
    same = all(ok for _, _, ok, _ in seen.values())
    return text + f". Final accuracy {'identical at every size' if same else 'NOT identical at every size'}."
