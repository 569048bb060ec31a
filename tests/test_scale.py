"""Many registered nodes: bounded memory (in a fresh process), and lazy nodes equal eager ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.data import SyntheticShards, synthetic
from hypergpu_lab.network import Network
from hypergpu_lab.nodes import NodeState
from hypergpu_lab.pool_config import PoolConfig

pytestmark = pytest.mark.slow

SCRIPT = r"""
import json, os
from hypergpu_lab import Coordinator, NodePool
pool = NodePool.simulated(10_000, dataset="synthetic", network="mixed", seed=0)
coord = Coordinator(pool=pool, model="mlp", clients_per_round=100, batch_size=10)
reports = [coord.step() for _ in range(3)]
status = dict(line.split(":", 1) for line in open(f"/proc/{os.getpid()}/status"))
print(json.dumps({"peak_mb": int(status["VmHWM"].split()[0]) / 1024, "nodes": len(pool),
                  "selected": [r.selected for r in reports], "accepted": [r.accepted for r in reports],
                  "node_records": len(coord.history.node_records)}))
"""


def test_ten_thousand_nodes_hundred_per_round_stay_under_2_gb() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"peak RSS {result['peak_mb']:.0f} MB")  # shown with -s; the figure goes in the closing note
    assert result["nodes"] == 10_000 and result["selected"] == [100, 100, 100]
    assert sum(result["accepted"]) > 0 and result["node_records"] == 300
    assert result["peak_mb"] < 2048


# -- nodes that cost nothing until selected ---------------------------------------------------------


def _run(pool: NodePool, rounds: int = 3) -> tuple[torch.Tensor, list[dict], list]:
    coord = Coordinator(pool=pool, model="mlp", clients_per_round=8, batch_size=10, local_epochs=2)
    history = coord.run(rounds=rounds, progress=False)
    rows = [{k: v for k, v in r.items() if k != "wall_s"} for r in history]
    return coord.weights, rows, [rec for _, rec in history.node_records]


def test_lazy_synthetic_nodes_train_exactly_as_eager_ones() -> None:
    # Prepare: the same config, shards generated when a node trains vs all generated up front
    cfg = PoolConfig(num_nodes=40, dataset="synthetic", network="mixed", gpus="mixed", seed=7, max_test=300)
    lazy, eager = NodePool.from_config(cfg), NodePool.from_config(cfg, lazy=False)

    # Assert: the lazy pool holds no training rows, yet every node's shard equals the eager one's
    assert isinstance(lazy.table.shards, SyntheticShards) and not lazy.table.own
    assert lazy.total_samples == eager.total_samples and len(lazy) == len(eager) == 40
    for i in (0, 17, 39):
        assert torch.equal(lazy[i].x, eager[i].x) and torch.equal(lazy[i].y, eager[i].y)
        assert lazy[i].gpu == eager[i].gpu and lazy.network.links[i] == eager.network.links[i]
    assert torch.equal(lazy.x_test, eager.x_test) and torch.equal(lazy.y_test, eager.y_test)

    # Execute
    w_lazy, rows_lazy, recs_lazy = _run(lazy)
    w_eager, rows_eager, recs_eager = _run(eager)

    # Assert: identical weights, round metrics and per-node records
    assert torch.equal(w_lazy, w_eager)
    assert rows_lazy == rows_eager and recs_lazy == recs_eager


def test_a_synthetic_node_is_the_same_alone_or_among_all() -> None:
    # Prepare: the eager generator makes every node; the lazy one makes node k from its own stream
    full = synthetic(num_nodes=12, seed=3)
    gen = SyntheticShards(12, alpha=1.0, beta=1.0, test_fraction=0.2, seed=3)

    # Execute / Assert
    for k in (0, 5, 11):
        x, y = gen.load(k)
        rows = torch.from_numpy(full.natural_partition[k])
        assert torch.equal(x, full.x_train[rows]) and torch.equal(y, full.y_train[rows])


def test_built_links_made_on_first_read_equal_links_built_up_front() -> None:
    # Prepare: range(n) makes links lazily; a list of the same ids builds every Link now
    lazy = Network.build(range(50), mix="mixed", regions=["us-east", "eu-west"], seed=4)
    eager = Network.build(list(range(50)), mix="mixed", regions=["us-east", "eu-west"], seed=4)

    # Assert
    assert dict(lazy.regions) == {n: link.region for n, link in eager.links.items()}
    assert lazy.state_dict() == eager.state_dict()
    assert list(lazy.links) == list(eager.links) and len(lazy.links) == 50


def test_a_pool_is_a_table_not_a_million_objects() -> None:
    # Prepare: rows, with Node objects made only when asked for
    pool = NodePool.simulated(5, dataset="digits", max_train=100, seed=0)

    # Execute: a view writes through to the row, removal and registration keep ids unique
    pool[3].state = NodeState.CRASHED
    pool[1].rounds_selected += 2
    removed = pool.remove(0)

    # Assert
    assert pool.available() == [1, 2, 4] and pool[1].rounds_selected == 2
    assert removed.id == 0 and removed.num_samples == 20 and removed.x.shape == (20, 1, 8, 8)
    assert 0 not in pool.nodes and list(pool.nodes) == [1, 2, 3, 4]
    pool.register(removed)
    assert pool[0] is removed and list(pool.nodes) == [1, 2, 3, 4, 0] and pool.available() == [1, 2, 4, 0]
