"""Server aggregation cost: each strategy vs a memory copy of the same updates.

Workload: N updates of the digits CNN (P = 13,706 float32 parameters; random values, since
the arithmetic does not depend on them). The baseline copies the same [N, P] bytes into a
preallocated buffer (``Tensor.copy_``): a rule that reads every update once cannot be much
cheaper. ``clone`` also allocates, and shows what a fresh [N, P] buffer costs. Goal: FedAvg
<= 2x the copy.
"""

from __future__ import annotations

import torch

from hypergpu_lab.strategies import STRATEGIES, get_strategy

from .common import best_of

P = 13_706  # parameters of the digits CNN
NODES = (10, 100, 1000)


def aggregation_table() -> tuple[str, dict[str, list[float]]]:
    gen = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {"memory copy (copy_)": [], "clone": [], **{name: [] for name in STRATEGIES}}
    for n in NODES:
        deltas = torch.randn(n, P, generator=gen) * 0.01
        w = torch.randn(P, generator=gen)
        samples = torch.randint(10, 200, (n,), generator=gen).to(torch.float64)
        buffer = torch.empty_like(deltas)
        repeats = 15 if n < 1000 else 3  # small N: many calls, as one descheduling is 10x the call
        times["memory copy (copy_)"].append(best_of(lambda: buffer.copy_(deltas), repeats=repeats))
        times["clone"].append(best_of(deltas.clone, repeats=repeats))
        for name in STRATEGIES:
            strategy = get_strategy(name)
            times[name].append(best_of(lambda: strategy.aggregate(w, deltas, samples), repeats=repeats))
    copy = times["memory copy (copy_)"]
    head = "| strategy | " + " | ".join(f"N={n} ms | vs copy" for n in NODES) + " |"
    rows = [head, "|---|" + "---:|---:|" * len(NODES)]
    for name, ts in times.items():
        rows.append(f"| {name} | " + " | ".join(f"{t * 1e3:.2f} | {t / c:.1f}x" for t, c in zip(ts, copy)) + " |")
    return "\n".join(rows), times


def main() -> str:
    table, times = aggregation_table()
    fedavg_us, copy_us = times["fedavg"][0] * 1e6, times["memory copy (copy_)"][0] * 1e6
    gen = torch.Generator().manual_seed(1)
    deltas, w, weights = torch.randn(NODES[0], P, generator=gen), torch.randn(P, generator=gen), torch.rand(NODES[0])
    mv_us = best_of(lambda: torch.addmv(w, deltas.T, weights), repeats=15) * 1e6  # the product, nothing else
    return (
        f"### Time per aggregation, digits CNN updates (P = {P:,}), median of 15 calls (3 at N=1000)\n\n"
        + table
        + "\n\nGoal: fedavg <= 2x the copy. FedAvg and the other mean-based rules are one float32 "
        "matrix-vector product over the stacked updates (weights normalised in float64), reading each update "
        f"once; at N = {NODES[0]} the whole call takes {fedavg_us:.0f} us against a {copy_us:.0f} us in-cache "
        f"copy; the matrix-vector product alone (`torch.addmv`) takes {mv_us:.0f} us. FedAvgM and FedOpt keep "
        "float64 server state. Median and trimmed mean sort every coordinate; Krum and Multi-Krum compute all "
        "N^2 pairwise distances."
    )
