"""Three fixed-seed runs whose final weights and metrics must not change under a refactor.

``python tests/golden/golden_runs.py --write`` records them in ``golden.json``; the test compares.
A change that means to alter results (a new random stream, a new default) re-records on purpose
and says so in its commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.faults import Fault

GOLDEN = Path(__file__).with_name("golden.json")


def _digest(coord: Coordinator) -> dict[str, Any]:
    rows = [{k: v for k, v in r.items() if k != "wall_s"} for r in coord.history.rounds]
    metrics = json.dumps(rows, sort_keys=True, default=repr).encode()
    weights = coord.weights.detach().to(torch.float32).contiguous().numpy().tobytes()
    return {
        "rounds": coord.round,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "metrics_sha256": hashlib.sha256(metrics).hexdigest(),
        "final_accuracy": rows[-1].get("test_accuracy"),
    }


def fedavg_cnn() -> dict[str, Any]:
    pool = NodePool.simulated(6, dataset="digits", partition="dirichlet", alpha=0.5, network="mixed", seed=3)
    coord = Coordinator(pool=pool, model="cnn", strategy="fedavg", local_epochs=1, batch_size=16)
    coord.run(rounds=3, progress=False)
    return _digest(coord)


def adaptive_with_faults() -> dict[str, Any]:
    pool = NodePool.simulated(10, dataset="digits", partition="iid", network="unstable-wan", seed=5)
    faults = [
        Fault("crash", (1,), start=5.0, unit="time"),
        Fault("sign_flip", (4,)),
        Fault("nan", (7,), start=1, end=3),
        Fault("straggler", (2,), magnitude=5.0),
        Fault("duplicate", (3,)),
    ]
    coord = Coordinator(
        pool=pool,
        model="mlp",
        policy="adaptive",
        strategy="median",
        faults=faults,
        deadline_s=1.2,
        late_updates="buffer",
        max_update_norm=50.0,
    )
    coord.run(rounds=6, progress=False)
    return _digest(coord)


def chain_on() -> dict[str, Any]:
    from hypergpu_lab import ChainClient

    chain = ChainClient.embedded()
    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=1)
    coord = Coordinator(pool=pool, model="mlp", chain=chain, chain_options={"background": False})
    coord.run(rounds=3, progress=False)
    coord.recorder.flush()
    out = _digest(coord)
    session = coord.recorder.session_id
    out["chain_scores"] = [chain.total_score(session, pool_node) for pool_node in range(len(pool))]
    out["chain_rounds"] = chain.rounds_recorded(session)
    return out


RUNS = {"fedavg_cnn": fedavg_cnn, "adaptive_with_faults": adaptive_with_faults, "chain_on": chain_on}

if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/golden/golden_runs.py --write")
    GOLDEN.write_text(json.dumps({name: fn() for name, fn in RUNS.items()}, indent=2, sort_keys=True) + "\n")
    print(GOLDEN.read_text())
