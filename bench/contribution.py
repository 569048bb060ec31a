"""Attackers' share of rewards under the robust contribution measure (issue 16).

Digits, 10 nodes, Dirichlet(0.5) shards, plain FedAvg (no robust aggregation: the measure must hold
on its own), MLP, 15 rounds, every node every round, one token a round split by the chain's rule
(:func:`split_pool` of :func:`round_scores`). Attackers are node 2 (and node 5 for the collusion).
"""

from __future__ import annotations

import os
import time

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.chain.rewards import split_pool
from hypergpu_lab.chain.scoring import round_scores
from hypergpu_lab.faults import Fault

ROUNDS, POOL = 15, 10**18
ATTACKS = {
    "none": [],
    "sign_flip": [Fault("sign_flip", (2,))],
    "scale": [Fault("scale", (2,))],
    "noise": [Fault("noise", (2,))],
    "free_rider": [Fault("free_rider", (2,))],
    "label_flip": [Fault("label_flip", (2,))],
    "collusion (2 free riders)": [Fault("free_rider", (2, 5))],
}


def shares(faults: list, *, rounds: int = ROUNDS, seed: int = 0, model: str = "mlp") -> tuple[dict[int, float], float]:
    """Each node's share of all rewards paid, and the final test accuracy."""
    pool = NodePool.simulated(10, dataset="digits", partition="dirichlet", alpha=0.5, network="lan", seed=seed)
    coord = Coordinator(pool=pool, model=model, strategy="fedavg", faults=faults)
    paid: dict[int, int] = {n: 0 for n in range(10)}
    coord.bus.subscribe(
        lambda r: [paid.__setitem__(n, paid[n] + v) for n, v in split_pool(POOL, round_scores(r)).items()]
    )
    history = coord.run(rounds=rounds, progress=False)
    total = sum(paid.values()) or 1
    return {n: v / total for n, v in paid.items()}, history.final["test_accuracy"]


def main() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = ["| attack | attackers' share | honest mean share | final accuracy | wall s |", "|---|---:|---:|---:|---:|"]
    for name, faults in ATTACKS.items():
        t = time.perf_counter()
        share, acc = shares(faults)
        attackers = sorted({n for f in faults for n in f.nodes})
        honest = [share[n] for n in range(10) if n not in attackers]
        rows.append(
            f"| {name} | {sum(share[n] for n in attackers):.2%} | {sum(honest) / len(honest):.2%} | {acc:.3f} | "
            f"{time.perf_counter() - t:.1f} |"
        )
    return (
        f"Machine: 2-core VM (shared), load average from `uptime` at the start: {load}.\n\n"
        f"Digits, 10 nodes, Dirichlet(0.5), plain FedAvg, MLP, {ROUNDS} rounds, seed 0; attacker node 2 "
        f"(nodes 2 and 5 colluding). Share = the attackers' part of all tokens paid. Goal: <= 1% for "
        f"sign_flip, scale, noise, free_rider and collusion; label_flip below an honest share (10%).\n\n"
        + "\n".join(rows)
    )
