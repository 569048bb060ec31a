"""Final accuracy for each strategy under each attack (issue 4's table).

Digits, IID, 10 nodes, CNN, 10 rounds; attackers are nodes 3 and 7 (f = 2 < n/4);
mean and spread over three seeds.
"""

from __future__ import annotations

import statistics

import torch

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.faults import Fault

STRATEGIES = {
    "fedavg": {},
    "fedavgm": {},
    "fedadam": {},
    "median": {},
    "trimmed-mean": {"beta": 0.2},
    "krum": {"f": 2},
    "multi-krum": {"f": 2},
    "clipped-fedavg": {"max_norm": 1.0},
}
ATTACKS = (None, "sign_flip", "noise", "scale", "nan", "free_rider", "label_flip")
SEEDS = (0, 1, 2)
ROUNDS = 10


def _accuracy(strategy: str, attack: str | None, seed: int) -> float:
    pool = NodePool.simulated(10, dataset="digits", partition="iid", network="lan", seed=seed)
    coord = Coordinator(
        pool=pool,
        model="cnn",
        strategy=strategy,
        strategy_options=STRATEGIES[strategy],
        faults=[Fault(attack, (3, 7))] if attack else [],
    )
    return coord.run(rounds=ROUNDS, progress=False).final["test_accuracy"]


def main() -> str:
    torch.set_num_threads(1)
    head = "| strategy | " + " | ".join(a or "clean" for a in ATTACKS) + " |"
    rows = [head, "|---|" + "---:|" * len(ATTACKS)]
    for strategy in STRATEGIES:
        cells = []
        for attack in ATTACKS:
            accs = [_accuracy(strategy, attack, s) for s in SEEDS]
            cells.append(f"{statistics.mean(accs):.3f} ± {statistics.pstdev(accs):.3f}")
        rows.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return (
        f"Final test accuracy after {ROUNDS} rounds (digits IID, 10 nodes, CNN, attackers = nodes 3 and 7; "
        f"mean ± std over seeds {SEEDS}; one torch thread).\n\n" + "\n".join(rows)
    )
