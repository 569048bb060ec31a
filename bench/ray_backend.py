"""The Ray backend's cost: ``ray.init``, moving the shards into actors, and the per-round overhead.

Workload (issue 9): digits, IID, MLP, B=10, 1 local epoch, every node trains every round,
a perfect network (so the same nodes train in both runs). A round is ``Coordinator.step()``,
evaluation included (the same work in both); the Ray backend runs one actor per CPU
(``num_cpus_per_actor=1``), each vectorising over its block of nodes.
"""

from __future__ import annotations

import logging
import os
import statistics
import time

NODES = (10, 100)
ROUNDS = 15


def _interleaved(a, b) -> tuple[float, float]:
    """Fastest and median wall seconds of a round of each coordinator, rounds taken in turn (a shared
    machine's load hits both alike), after one warm-up round each."""
    a.step(), b.step()
    ta, tb = [], []
    for _ in range(ROUNDS):
        for coord, times in ((a, ta), (b, tb)):
            t = time.perf_counter()
            coord.step()
            times.append(time.perf_counter() - t)
    return (min(ta), statistics.median(ta)), (min(tb), statistics.median(tb))


def main() -> str:
    try:
        import ray
    except ImportError:
        return "Ray is not installed (`pip install 'hypergpu-lab[ray]'`): nothing measured."
    from hypergpu_lab import Coordinator, NodePool
    from hypergpu_lab.backends.ray import RayBackend

    logging.getLogger("ray").setLevel(logging.ERROR)
    if ray.is_initialized():
        init = None
    else:
        t = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        init = time.perf_counter() - t
    cpus = int(ray.cluster_resources().get("CPU", 1))
    rows = [
        (
            "| nodes | actors | pool setup in process s | pool setup Ray s | in-process s/round | Ray s/round "
            "| overhead ms/round | Ray / in process | max abs weight difference |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    # s/round cells: fastest (median) of ROUNDS rounds; overhead and ratio from the fastest
    try:
        for n in NODES:
            options = {"dataset": "digits", "partition": "iid", "network": "perfect", "seed": 0}
            t = time.perf_counter()
            local = NodePool.simulated(n, **options)
            setup_local = time.perf_counter() - t
            backend = RayBackend(num_cpus_per_actor=1)
            t = time.perf_counter()
            pool = NodePool.simulated(n, backend=backend, **options)
            setup_ray = time.perf_counter() - t
            try:
                ref = Coordinator(pool=local, model="mlp")
                coord = Coordinator(pool=pool, model="mlp")
                (lo, lo_med), (ro, ro_med) = _interleaved(ref, coord)
                same = f"{float((ref.weights - coord.weights).abs().max()):.1e}"
                rows.append(
                    f"| {n} | {len(backend.actors)} | {setup_local:.2f} | {setup_ray:.2f} "
                    f"| {lo:.3f} ({lo_med:.3f}) | {ro:.3f} ({ro_med:.3f}) | {1000 * (ro - lo):.0f} "
                    f"| {ro / lo:.2f}x | {same} |"
                )
            finally:
                backend.close()
    finally:
        if init is not None:
            ray.shutdown()
    head = (
        f"`ray.init()` (local, {cpus} CPUs, no dashboard): {init:.1f} s."
        if init is not None
        else "`ray.init()`: Ray was already initialised, not measured."
    )
    return (
        head + f" Rounds: fastest (median) of {ROUNDS} after one warm-up, the two backends' rounds taken in "
        "turn so that other load on the machine hits both; overhead and ratio from the fastest. Pool setup with "
        "Ray includes starting the actors and putting the shards into the object store. `max abs weight difference` "
        f"compares the global weights (float32 rounding: actors batch fewer nodes per kernel) after {ROUNDS + 1} rounds.\n\n"
        + "\n".join(rows)
    )


if __name__ == "__main__":
    print(main())
