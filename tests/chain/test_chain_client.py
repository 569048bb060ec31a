"""ChainClient plumbing: keys never show, attaching to a deployment, readable errors, the core stays web3-free."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys

import pytest

pytest.importorskip("web3", reason="the chain extras (web3, eth-tester[py-evm]) are not installed")

from chain_support import REPO, REWARD

from hypergpu_lab.chain import ChainClient, ChainError, ContractRevert, NodeAccounts, Signer
from hypergpu_lab.chain.accounts import derive_key
from hypergpu_lab.chain.errors import ErrorDecoder
from hypergpu_lab.chain.recorder import ChainRecorder
from hypergpu_lab.events import EventBus


def key_texts(key: bytes) -> list[str]:
    h = key.hex()
    return [h, h.upper(), h[:32], h[32:], repr(key)[2:-1]]


def test_private_keys_never_appear_in_reprs_or_logs_of_a_whole_workflow(trained_run, caplog) -> None:
    # Prepare: a client whose coordinator key and node keys we know, logging everything at DEBUG.
    caplog.set_level(logging.DEBUG)
    from eth_utils import keccak
    from web3 import EthereumTesterProvider, Web3

    coordinator_key, seed = keccak(text="a coordinator key made up for this test"), "a node seed for this test"
    provider = EthereumTesterProvider()
    w3 = Web3(provider)  # the embedded chain prefunds only its own accounts: pay the made-up coordinator first
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": Signer(coordinator_key).address, "value": 10**21})
    chain = ChainClient(provider=provider, private_key=coordinator_key, accounts=NodeAccounts(seed=seed))
    bus = EventBus()
    recorder = ChainRecorder(chain, bus, reward_per_round=REWARD, background=False)

    # Execute: the whole workflow, then every repr/str a notebook or widget might show.
    for report in trained_run.reports:
        bus.emit(report)
    status = recorder.flush()
    claimed = [chain.claim(n) for n in (0, 1)]
    with pytest.raises(ContractRevert):
        chain.claim(0)
    shown = [
        repr(chain),
        str(chain),
        repr(chain.accounts),
        str(chain.accounts),
        repr(recorder),
        repr(status),
        str(status.as_dict()),
        str(chain.describe()),
        repr(chain._signer),
        str(chain.accounts.signer(3)),
        repr(recorder.outbox),
        caplog.text,
    ]

    # Assert
    assert status.sent == 3 and all(claimed)
    secrets = [coordinator_key, *(derive_key(seed, n) for n in range(10))]  # every node signed or was derived
    text = "\n".join(shown)
    assert caplog.records, "the workflow logged nothing: the check would be vacuous"
    for key in secrets:
        for fragment in key_texts(key):
            assert fragment not in text
    assert seed not in text
    with pytest.raises(TypeError):
        pickle.dumps(chain.accounts.signer(1))
    assert not hasattr(Signer(coordinator_key), "__dict__")


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    bad = "0x" + "zz" + "12" * 31
    with pytest.raises(ValueError) as exc:
        Signer(bad)
    assert "12121212" not in str(exc.value) and exc.value.__cause__ is None


def test_attach_to_an_existing_deployment_and_refuse_a_wrong_one(chain: ChainClient) -> None:
    sid = chain.new_session_id()
    chain.start_session(sid)
    key = chain.w3.provider.ethereum_tester.backend.account_keys[0]
    again = ChainClient(provider=chain.w3.provider, private_key=key, deployment=chain.deployment.as_dict())
    assert again.session(sid).coordinator == chain.coordinator and again.deployment == chain.deployment
    swapped = {**chain.deployment.as_dict(), "tracker": chain.deployment.registry}
    with pytest.raises(ChainError, match="does not fit together|reverted"):
        ChainClient(provider=chain.w3.provider, private_key=key, deployment=swapped)
    nowhere = {**chain.deployment.as_dict(), "token": "0x" + "12" * 20}
    with pytest.raises(ChainError, match="no contract code"):
        ChainClient(provider=chain.w3.provider, private_key=key, deployment=nowhere)


def test_rpc_url_is_required_and_shown_without_its_path() -> None:
    with pytest.raises(ChainError, match="rpc_url"):
        ChainClient(private_key=b"\x01" * 32)
    from hypergpu_lab.chain.client import _redact

    assert _redact("https://user:pw@eth.example:8545/v3/API-KEY?x=1") == "https://eth.example:8545"


def test_errors_decode_from_every_shape_nodes_report_them_in() -> None:
    from eth_abi import encode
    from eth_utils import keccak
    from web3.exceptions import ContractCustomError

    inputs = [{"name": "sessionId", "type": "bytes32"}, {"name": "round", "type": "uint256"}]
    decoder = ErrorDecoder([[{"type": "error", "name": "RoundAlreadyRecorded", "inputs": inputs}]])
    data = keccak(text="RoundAlreadyRecorded(bytes32,uint256)")[:4] + encode(["bytes32", "uint256"], [b"\1" * 32, 7])
    shapes = [
        ContractCustomError("execution reverted", data="0x" + data.hex()),  # geth, anvil
        ContractCustomError("execution reverted", data={"result": "0x" + data.hex()}),  # ganache
        type("TransactionFailed", (Exception,), {})(f"execution reverted: {data!r}"),
    ]  # eth-tester
    for exc in shapes:
        revert = decoder.from_exception(exc, "recordRound")
        assert (revert.name, revert.arguments["round"], revert.function) == ("RoundAlreadyRecorded", 7, "recordRound")
    assert decoder.from_exception(ConnectionError("down")) is None
    assert decoder.decode(b"\xde\xad\xbe\xef").name == "UnknownError"
    revert = pickle.loads(pickle.dumps(decoder.decode(data)))
    assert revert.name == "RoundAlreadyRecorded"


def test_the_core_never_imports_web3_and_importing_the_chain_compiles_nothing() -> None:
    code = (
        "import subprocess, sys\n"
        "import hypergpu_lab, hypergpu_lab.coordinator, hypergpu_lab.chain.scoring\n"
        "bad = [m for m in ('web3', 'eth_tester', 'eth_account') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "real = subprocess.Popen\n"
        "def watch(args, *a, **k):\n"
        "    assert not any(w in str(args) for w in ('node', 'solc', 'npm', 'npx')), args\n"
        "    return real(args, *a, **k)\n"
        "subprocess.Popen = watch\n"
        "from hypergpu_lab.chain import ChainClient, ChainRecorder\n"
        "import hypergpu_lab.chain.client, hypergpu_lab.chain.recorder\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_a_fixed_gas_limit_still_refuses_a_revert_before_anything_is_sent(chain) -> None:
    # The embedded chain dry-runs with one eth_call instead of py-evm's slow gas estimate.
    from hypergpu_lab.chain import ContractRevert, Contribution

    assert chain.fixed_gas == chain.w3.eth.get_block("latest")["gasLimit"]
    sid = chain.new_session_id()
    chain.start_session(sid)
    rows = [Contribution(chain.accounts.address(n), 10**6, "0x" + "ab" * 32, n) for n in range(3)]
    chain.record_round(sid, 1, rows)
    block = chain.w3.eth.block_number
    with pytest.raises(ContractRevert) as exc:
        chain.record_round(sid, 1, rows)  # a second time
    assert exc.value.name == "RoundAlreadyRecorded" and chain.w3.eth.block_number == block  # nothing mined
    assert chain.fund_round(sid, 1, 3 * 10**18).distributed == 3 * 10**18


@pytest.mark.parametrize("bad", [0, 20_999, 1.5, "30000000", True])
def test_fixed_gas_must_be_a_gas_limit(bad) -> None:
    from hypergpu_lab.errors import ConfigError

    with pytest.raises(ConfigError, match="fixed_gas"):
        ChainClient.embedded(fixed_gas=bad)
