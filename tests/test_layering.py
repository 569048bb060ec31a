"""Dependencies point one way: the core never imports a UI or chain library."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = ("web3", "eth_tester", "ipywidgets", "plotly", "anywidget", "voila", "ray", "flwr")


def test_headless_run_imports_no_ui_or_chain_library() -> None:
    code = (
        "import sys\n"
        "from hypergpu_lab import Coordinator, NodePool\n"
        "from hypergpu_lab import cli, analytics, export, faults, detection\n"
        "pool = NodePool.simulated(4, dataset='digits', network='lan', seed=0)\n"
        "Coordinator(pool=pool, model='mlp').run(rounds=1, progress=False)\n"
        f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"


def test_chain_client_is_exported_lazily_and_attaches_through_the_bus() -> None:
    pytest.importorskip("web3")
    from hypergpu_lab import ChainClient, Coordinator, NodePool

    chain = ChainClient.embedded()
    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)
    coord = Coordinator(pool=pool, model="mlp", chain=chain, chain_options={"background": False})
    coord.run(rounds=2, progress=False)
    coord.recorder.flush()
    assert coord.recorder.status().sent == 2 and coord.recorder.status().pending == 0
