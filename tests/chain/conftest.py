"""Fixtures for the chain tests: embedded chains, flaky providers, one real training run, a ganache node.

Everything here imports web3 lazily: without the chain extras installed, the modules that need
them skip (``pytest.importorskip("web3")``) and scoring and artifact tests still run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from chain_support import GANACHE, REWARD, flaky_provider


@pytest.fixture(scope="session")
def _deployed_chain() -> Any:
    from hypergpu_lab.chain import ChainClient

    return ChainClient.embedded()


@pytest.fixture
def chain(_deployed_chain: Any) -> Iterator[Any]:
    """An embedded chain with the lab's contracts freshly deployed: one deployment, rewound after each test."""
    tester = _deployed_chain.w3.provider.ethereum_tester
    snapshot = tester.take_snapshot()
    yield _deployed_chain
    tester.revert_to_snapshot(snapshot)


@dataclass
class TrainedRun:
    """Three real rounds of 10 simulated nodes, recorded live on two embedded chains."""

    coord: Any
    reports: list
    chain: Any  # healthy chain, rewards funded
    recorder: Any
    down_chain: Any  # its provider raised ConnectionError through the whole run
    down_provider: Any
    down_recorder: Any
    while_down: list = field(default_factory=list)  # down_recorder.status() after each round


@pytest.fixture(scope="session")
def trained_run() -> Iterator[TrainedRun]:
    from hypergpu_lab import Coordinator, NodePool
    from hypergpu_lab.chain import ChainClient

    pool = NodePool.simulated(10, dataset="digits", network="lan", seed=0)
    coord = Coordinator(model="mlp", pool=pool)
    chain = ChainClient.embedded()
    recorder = chain.attach(coord, reward_per_round=REWARD)
    provider = flaky_provider()
    down_chain = ChainClient.embedded(provider=provider)
    provider.down = True
    down_recorder = down_chain.attach(coord, reward_per_round=REWARD, backoff_s=0.02, max_backoff_s=0.2)
    run = TrainedRun(coord, [], chain, recorder, down_chain, provider, down_recorder)
    coord.bus.subscribe(run.reports.append)
    coord.bus.subscribe(lambda report: run.while_down.append(down_recorder.status()))
    coord.run(rounds=3, progress=False)
    yield run
    recorder.close(flush=False, timeout=5)
    down_recorder.close(flush=False, timeout=5)


# -- a real JSON-RPC node ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    url: str
    private_key: str  # the one funded account's key, made up for this test run


@pytest.fixture(scope="session")
def ganache_node() -> Iterator[Node]:
    """ganache 7 (from contracts-build/node_modules) on 127.0.0.1 and a free port, killed afterwards."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the real-node test needs Node.js (scripts/setup_chain.sh)")
    if not GANACHE.exists():
        pytest.skip("ganache is not installed in contracts-build/node_modules: run scripts/setup_chain.sh")
    import secrets
    import urllib.request

    key = "0x" + secrets.token_hex(32)
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(GANACHE),
            "--server.host",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--chain.hardfork",
            "shanghai",
            "--logging.quiet",
            "--wallet.accounts",
            f"{key},{10**24}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ganache exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            try:
                req = urllib.request.Request(
                    url,
                    data=b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
                    headers={"Content-Type": "application/json"},
                )
                urllib.request.urlopen(req, timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("ganache did not answer within 60 s")
                time.sleep(0.2)
        yield Node(url, key)
    finally:
        try:
            os.killpg(proc.pid, 15)  # its own process group: the node wrapper and ganache itself
        except ProcessLookupError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)
        proc.stderr.close()
