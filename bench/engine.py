"""Local training throughput: vectorised engine vs per-node loop vs the one-big-batch bound.

Workload (issue 2): digits, IID, CNN, 1 local epoch, B=10, every node trains.
The bound pushes the same samples through ONE model in the same number of SGD
steps (batches of K x B), i.e. the same FLOPs with no per-model overhead, in
whichever memory format (contiguous or channels-last) plain PyTorch runs faster.

The bound returns one model; an engine returns K. The "output floor" adds to the
bound what writing K x P float32 values into fresh memory costs here (the least
any engine that hands back K separate updates must pay): no engine can beat it.
The vectorised engine is timed as a run uses it: one Trainer for every call, so its
scratch [K, P] buffers are reused (the first, warm-up call allocates them).
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import sys
from collections.abc import Callable

import torch

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.models import ParamLayout, build_model
from hypergpu_lab.network import LinkProfile
from hypergpu_lab.training import Job, SGDConfig, Trainer, node_seed, resolve_device

from .common import ROOT, best_of, run_in

NODES = (10, 100, 1000)
B = 10
# BENCH_DEVICE=cuda python -m bench engine reports the same figures on a GPU (default: auto = CUDA if present).
DEVICE = os.environ.get("BENCH_DEVICE", "auto")


def _pool(n: int) -> NodePool:
    return NodePool.simulated(n, dataset="digits", partition="iid", network="lan", seed=0)


def _bound(model: torch.nn.Module, jobs: list[Job], sgd: SGDConfig, channels_last: bool) -> Callable[[], None]:
    """One model over all the nodes' samples in the same number of SGD steps; returns the timed call.

    The model is built and moved outside the timed call (its weights are reset inside, ~0.1 ms), and
    the caller takes the faster of the contiguous and channels-last memory formats, so that the bound
    is what plain PyTorch does best on this machine.
    """
    device = resolve_device(DEVICE)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=fmt)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.cat([j.x for j in jobs]).to(device).contiguous(memory_format=fmt)
    y = torch.cat([j.y for j in jobs]).to(device)
    steps = max(math.ceil(len(j.y) / j.batch_size) for j in jobs)
    per = math.ceil(len(y) / steps)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0)).to(device)

    def run() -> None:
        model.load_state_dict(state)
        opt = torch.optim.SGD(model.parameters(), lr=sgd.lr, momentum=sgd.momentum)
        for s in range(steps):
            idx = perm[s * per : (s + 1) * per]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        if device.type == "cuda":  # the engine's results come back to the CPU; time the bound to completion too
            torch.cuda.synchronize()

    return run


def _fresh_write(k: int, p: int) -> Callable[[], None]:
    """Allocate a [K, P] float32 tensor and write every value once: the cost of K updates' memory."""
    device = resolve_device(DEVICE)

    def run() -> None:
        torch.empty(k, p, device=device).fill_(1.0)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run


def engine_table() -> str:
    sgd = SGDConfig(lr=0.05, momentum=0.9)
    rows = [
        "| nodes/round | vectorised s | per-node loop s | one-big-batch bound s | output floor s "
        "| updates/s (vectorised) | vs loop | vs bound | vs floor |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in NODES:
        pool = _pool(n)
        model = build_model("cnn", pool.input_shape, pool.num_classes, seed=0)
        start = ParamLayout.of(model).flatten(model)
        jobs = [Job(node.id, node.x, node.y, B, node_seed(0, 1, node.id)) for node in pool]
        engine = Trainer(model, sgd, vectorise=True, device=DEVICE)  # one per run, as a Coordinator keeps it
        vec = best_of(lambda: engine.train(start, jobs))
        loop = best_of(lambda: Trainer(model, sgd, vectorise=False, device=DEVICE).train(start, jobs), repeats=1)
        bound = min(
            best_of(_bound(build_model("cnn", pool.input_shape, pool.num_classes), jobs, sgd, cl))
            for cl in (False, True)
        )
        floor = bound + best_of(_fresh_write(n, start.numel()), repeats=7)
        rows.append(
            f"| {n} | {vec:.3f} | {loop:.3f} | {bound:.3f} | {floor:.3f} | {n / vec:,.0f} "
            f"| {loop / vec:.1f}x | {vec / bound:.2f}x | {vec / floor:.2f}x |"
        )
    return "\n".join(rows)


def round_table() -> str:
    rows = ["| nodes/round | wall s per round (median of 3) | of which local training s |", "|---:|---:|---:|"]
    for n in NODES:
        coord = Coordinator(pool=_pool(n), model="cnn", batch_size=B, device=DEVICE)
        trained: list[float] = []
        inner = coord.trainer.train

        def timed(w, jobs):  # type: ignore[no-untyped-def]
            import time

            t = time.perf_counter()
            out = inner(w, jobs)
            trained.append(time.perf_counter() - t)
            return out

        coord.trainer.train = timed  # type: ignore[method-assign]
        wall = best_of(coord.step)
        rows.append(f"| {n} | {wall:.3f} | {sorted(trained[1:])[1]:.3f} |")
    return "\n".join(rows)


def virtual_time_table() -> str:
    """Wall time must not grow with simulated latency: the core never sleeps."""
    walls = {}
    for ms in (0.0, 500.0):
        pool = _pool(10)
        profile = LinkProfile(name="fixed", latency_ms=(0.0, 0.0), loss=0.0, bandwidth_mbps=100.0)
        for link in pool.network.links.values():
            link.profile, link.base_latency_ms = profile, ms
        coord = Coordinator(pool=pool, model="cnn")
        walls[ms] = (best_of(lambda: coord.run(rounds=5, progress=False), repeats=3), coord.clock.now / coord.round)
    (w0, s0), (w5, s5) = walls[0.0], walls[500.0]
    return (
        "| one-way link latency | wall s for 5 rounds | simulated s per round |\n|---:|---:|---:|\n"
        f"| 0 ms | {w0:.3f} | {s0:.3f} |\n| 500 ms | {w5:.3f} | {s5:.3f} |\n\n"
        f"Wall ratio 500 ms / 0 ms: {w5 / w0:.3f} (goal <= 1.05)."
    )


_ROUNDS_CHILD = """
import json, logging, sys, time
logging.getLogger("hypergpu_lab").setLevel(logging.ERROR)
from hypergpu_lab import Coordinator, NodePool
nodes, rounds = int(sys.argv[1]), int(sys.argv[2])
pool = NodePool.simulated(nodes, dataset="digits", partition="iid", network="perfect", seed=0)
coord = Coordinator(pool=pool, model="mlp", lr=0.1, momentum=0.0, batch_size=32, local_epochs=5)
t = time.perf_counter(); coord.step(); first = time.perf_counter() - t
times = []
for _ in range(rounds):
    t = time.perf_counter(); coord.step(); times.append(time.perf_counter() - t)
print(json.dumps([first, sorted(times)[len(times) // 2]]))
"""


def rounds_side_by_side(against: str, nodes: tuple[int, ...] = (10, 100, 1000), repeats: int = 5) -> list[str]:
    """Round wall time of the Flower / pfl-research workload (digits MLP, IID, batch 32, 5 epochs) in fresh
    processes, this checkout's run and then an older checkout's (``git archive COMMIT | tar -x -C DIR``),
    ``repeats`` times per size: the first round and the median of the next ones (40 at 10 nodes, 10 at
    100, 3 at 1000), each side's median over its processes and their range. ``python -m bench.engine
    rounds DIR``."""
    lines = [f"load at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    for n in nodes:
        rounds = {10: 40, 100: 10}.get(n, 3)
        runs: dict[str, list[list[float]]] = {"this checkout": [], against: []}
        for _ in range(repeats):
            for tag, root in (("this checkout", ROOT), (against, against)):
                runs[tag].append(run_in(root, _ROUNDS_CHILD, str(n), str(rounds)))
        for tag, rs in runs.items():
            first, steady = sorted(r[0] for r in rs), sorted(r[1] for r in rs)
            lines.append(
                f"{n} nodes, {tag}: first round {statistics.median(first) * 1e3:.1f} ms, then "
                f"{statistics.median(steady) * 1e3:.1f} ms a round ({steady[0] * 1e3:.1f}-{steady[-1] * 1e3:.1f})"
            )
    lines.append(f"load at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return lines


def main() -> str:
    logging.getLogger("hypergpu_lab").setLevel(logging.WARNING)
    load0 = os.getloadavg()[0]
    engine = engine_table()
    return (
        f"Device: {resolve_device(DEVICE)}. 1-min load average (`uptime`) before / after the engine "
        f"table: {load0:.2f} / {os.getloadavg()[0]:.2f}.\n\n"
        "### Local training engine (digits CNN, 1 epoch, B=10, momentum 0.9)\n\n"
        + engine
        + "\n\n### Whole round (coordinator.step, all nodes selected, 'lan' network)\n\n"
        + round_table()
        + "\n\n### Virtual time (10 nodes, digits CNN)\n\n"
        + virtual_time_table()
    )


if __name__ == "__main__":
    # ``python -m bench.engine rounds OLDER_CHECKOUT``: the workload's rounds, side by side with an older checkout
    if sys.argv[1:2] == ["rounds"]:
        print("\n".join(rounds_side_by_side(sys.argv[2])))
    else:
        print(main())
