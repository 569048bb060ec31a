"""The committed compiled contracts: ABI and bytecode JSON, read lazily, never compiled here.

``contracts-build/compile.js`` (run by ``scripts/compile_contracts.sh``) compiles ``contracts/*.sol``
with a pinned solc-js and writes ``artifacts/<Contract>.json``: the ABI, the creation and runtime
bytecode, the compiler version, the EVM version and the keccak256 of every source the bytecode came
from. ``tests/chain/test_chain_artifacts.py`` fails when the artifacts and the sources disagree.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).with_name("artifacts")
CONTRACTS_DIR = Path(__file__).with_name("contracts")
LAB_CONTRACTS = ("TrainingRegistry", "ContributionTracker", "RewardToken", "RewardDistributor")


@dataclass(frozen=True, eq=False)
class Artifact:
    """One compiled contract as the compile script wrote it."""

    name: str
    source_name: str
    compiler: dict[str, Any]
    sources: dict[str, str] = field(repr=False)  # source unit -> keccak256 of its text
    abi: list[dict[str, Any]] = field(repr=False)
    bytecode: str = field(repr=False)  # creation code, 0x-prefixed
    deployed_bytecode: str = field(repr=False)  # runtime code, 0x-prefixed

    @property
    def evm_version(self) -> str:
        return self.compiler["evmVersion"]


@functools.cache
def load(name: str, folder: str | Path = ARTIFACTS_DIR) -> Artifact:
    """The artifact of contract ``name`` from ``folder`` (the lab's own by default)."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no compiled artifact {path}; run scripts/compile_contracts.sh")
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Artifact(
        name=raw["contractName"],
        source_name=raw["sourceName"],
        compiler=raw["compiler"],
        sources=raw["sources"],
        abi=raw["abi"],
        bytecode=raw["bytecode"],
        deployed_bytecode=raw["deployedBytecode"],
    )


def lab_artifacts() -> dict[str, Artifact]:
    """The four contracts a :class:`~hypergpu_lab.chain.ChainClient` deploys, by name."""
    return {name: load(name) for name in LAB_CONTRACTS}
