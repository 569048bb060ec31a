"""Peak memory and wall per round from 1,000 to 1,000,000 registered nodes (synthetic data, MLP, B=10).

Each case runs in a fresh process so its peak RSS (VmHWM) is its own; torch's import alone is
~0.7 GB of it on this build. Synthetic nodes generate their shard when they train, so "training
samples" counts what the registered nodes would hold, not what is in memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, os, statistics, time
t0 = time.perf_counter()
from hypergpu_lab import Coordinator, NodePool
registered, per_round = int(os.environ["N"]), int(os.environ["K"])
pool = NodePool.simulated(registered, dataset="synthetic", network="mixed", seed=0)
t1 = time.perf_counter()
coord = Coordinator(pool=pool, model="mlp", clients_per_round=per_round, batch_size=10)
walls = [coord.step().wall_s for _ in range(5)]
status = dict(line.split(":", 1) for line in open(f"/proc/{os.getpid()}/status"))
print(json.dumps({"build_s": t1 - t0, "round_s": statistics.median(walls[1:]),
                  "peak_mb": int(status["VmHWM"].split()[0]) / 1024, "samples": pool.total_samples}))
"""

CASES = ((1_000, 100), (10_000, 100), (10_000, 1_000), (1_000_000, 1_000))


def main() -> str:
    root = str(Path(__file__).resolve().parent.parent)
    rows = [
        "| registered nodes | per round | training samples (generated when trained) | pool build s | wall s per round (median) "
        "| peak RSS MB | 1-min load before / after |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for n, k in CASES:
        env = {**os.environ, "N": str(n), "K": str(k), "PYTHONPATH": root}
        load0 = os.getloadavg()[0]
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(
            f"| {n:,} | {k:,} | {r['samples']:,} | {r['build_s']:.1f} | {r['round_s']:.3f} | {r['peak_mb']:,.0f} "
            f"| {load0:.2f} / {os.getloadavg()[0]:.2f} |"
        )
    return "\n".join(rows) + (
        "\n\nGoals: peak memory <= 2 GB for 10,000 registered / 100 per round; "
        "<= 3 GB peak and <= 5 s per round for 1,000,000 registered / 1,000 per round."
    )
