"""The committed artifacts: pinned compiler and EVM version, in step with the sources, deployable as is."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from chain_support import CONTRACTS_BUILD, REPO, TEST_ARTIFACTS

from hypergpu_lab.chain.compiled import ARTIFACTS_DIR, LAB_CONTRACTS, load

EVM_VERSION = "shanghai"  # ganache 7 stops at shanghai; py-evm (prague), anvil and Hardhat run it too
ALL = [(name, ARTIFACTS_DIR) for name in LAB_CONTRACTS] + [
    (name, TEST_ARTIFACTS) for name in ("HookToken", "ReentrantClaimer")
]


def _keccak_hex(data: bytes) -> str:
    eth_hash = pytest.importorskip("eth_hash.auto", reason="keccak comes with the chain extras")
    return "0x" + eth_hash.keccak(data).hex()


def test_artifacts_record_the_pinned_compiler_and_evm_version() -> None:
    lock = json.loads((CONTRACTS_BUILD / "package-lock.json").read_text())
    solc_version = lock["packages"]["node_modules/solc"]["version"]
    for name, folder in ALL:
        artifact = load(name, folder)
        assert artifact.name == name and artifact.compiler["name"] == "solc-js"
        assert artifact.compiler["version"].startswith(solc_version + "+commit.")
        assert artifact.evm_version == EVM_VERSION and artifact.compiler["optimizer"] == {"enabled": True, "runs": 200}
        assert artifact.bytecode.startswith("0x60") and len(artifact.deployed_bytecode) > 100


def test_artifacts_were_built_from_the_sources_in_this_checkout() -> None:
    # Without node: every source the bytecode came from has the keccak256 solc's metadata recorded.
    node_modules = CONTRACTS_BUILD / "node_modules"
    for name, folder in ALL:
        artifact = load(name, folder)
        for unit, digest in artifact.sources.items():
            local = REPO / unit if not unit.startswith("@") else node_modules / unit
            if unit.startswith("@") and not local.exists():
                continue  # OpenZeppelin not installed here; its version is pinned by package-lock.json
            assert local.exists(), f"{name} was built from {unit}, which is gone"
            assert _keccak_hex(local.read_bytes()) == digest, f"{unit} changed since {name} was compiled"
    sources = sorted(p.name for p in (REPO / "hypergpu_lab/chain/contracts").glob("*.sol"))
    assert sources == sorted(f"{n}.sol" for n in LAB_CONTRACTS)


@pytest.mark.slow
def test_recompiling_the_sources_reproduces_the_artifacts_exactly() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: cannot run solc-js (the keccak check above still ran)")
    if not (CONTRACTS_BUILD / "node_modules" / "solc").exists():
        pytest.skip("solc-js is not installed in contracts-build/node_modules: run scripts/setup_chain.sh")
    done = subprocess.run(
        ["node", str(CONTRACTS_BUILD / "compile.js"), "--check"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_deployed_code_is_the_committed_runtime_bytecode(chain) -> None:
    # The two contracts without immutables must match byte for byte (the others embed addresses).
    for name, address in (("TrainingRegistry", chain.deployment.registry), ("RewardToken", chain.deployment.token)):
        assert "0x" + bytes(chain.w3.eth.get_code(address)).hex() == load(name).deployed_bytecode
