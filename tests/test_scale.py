"""Ten thousand registered nodes, a hundred per round, in bounded memory (measured in a fresh process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
