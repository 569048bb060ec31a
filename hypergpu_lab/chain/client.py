"""ChainClient: the lab's typed interface to its three contracts, on an embedded or a real chain.

``ChainClient.embedded()`` runs py-evm in process (web3's EthereumTesterProvider) with prefunded
deterministic accounts: no node to start, the default everywhere. ``ChainClient(rpc_url,
private_key=...)`` talks to any JSON-RPC node (anvil, Hardhat, ganache) and either deploys fresh
contracts or attaches to a given :class:`Deployment`.

Every transaction is signed locally, after a gas estimate that doubles as a dry run: a revert
surfaces before anything is sent, as a :class:`ContractRevert` naming the Solidity error. One lock
serialises the client, so the recorder's sender thread and a notebook can share it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from eth_utils import is_address, to_checksum_address
from web3 import Web3
from web3.logs import DISCARD

from ..errors import ConfigError
from .accounts import Key, NodeAccounts, Signer
from .compiled import Artifact, lab_artifacts, load
from .errors import ErrorDecoder
from .ledger import (
    ZERO32,
    ChainError,
    Contribution,
    Funding,
    LedgerInfo,
    RecordedRound,
    Session,
    TxResult,
    b32,
    hex32,
    new_session_id,
)
from .recorder import ChainRecorder, attach_recorder
from .redact import SCRUBBER, protect, redact_url

__all__ = [  # the moved values stay importable from here, where existing code looks for them
    "ChainClient",
    "Contribution",
    "Deployment",
    "Funding",
    "RecordedRound",
    "Session",
    "TOKEN_UNIT",
    "TxResult",
    "b32",
    "hex32",
    "new_session_id",
]

log = logging.getLogger(__name__)

TOKEN_UNIT = 10**18  # the reward token has 18 decimals
DEFAULT_SUPPLY = 10**9 * TOKEN_UNIT  # minted to the coordinator when it deploys the token
GAS_TOPUP_WEI = 10**17  # what a node gets for gas when it has too little to claim
MIN_GAS_WEI = 10**16
GAS_MARGIN = 1.25  # estimate x margin: storage warmth can shift between estimate and block
STATUSES = ("none", "active", "completed")

Who = int | str | Signer
T = TypeVar("T")


@dataclass(frozen=True)
class Deployment:
    """Addresses of the four contracts; pass one to ``ChainClient(..., deployment=...)`` to attach."""

    registry: str
    tracker: str
    token: str
    distributor: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _locked(fn: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(fn)
    def wrapper(self: ChainClient, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return fn(self, *args, **kwargs)

    return wrapper


class ChainClient:
    """Deploys or attaches to the lab's contracts and runs the reward workflow on them.

    Implements :class:`~hypergpu_lab.chain.ledger.Ledger` (structurally: the Protocol is the
    contract, see its docstrings); the recorder and the UI use it through that Protocol only.

    Parameters
    ----------
    rpc_url
        A JSON-RPC endpoint (``http://127.0.0.1:8545``); or pass ``provider`` instead.
    private_key
        The coordinator account's key. It signs locally and never appears in logs or reprs.
    deployment
        Attach to these contract addresses; ``None`` deploys fresh ones (the coordinator owns the token).
    accounts
        Node accounts; by default keys derived from the public embedded seed, fine for dev chains only.
    fund_node_gas
        Send an account other than the coordinator a little ether when it signs (a node's claim) with
        too little to pay for gas. Meant for dev chains; turn it off where ether is worth something.
    fixed_gas
        ``None`` (default): each transaction's gas limit is the node's estimate (``eth_estimateGas``,
        which is also the dry run that surfaces a revert before sending). An integer: the dry run is
        one ``eth_call`` and the coordinator's contract calls are sent with this gas limit (unused gas is
        refunded; a node's own transactions, its claims, keep the estimate).
        ``embedded()`` uses the block gas limit: py-evm estimates gas by a binary search of ~20 EVM
        runs, which made recording a round cost ~0.5 s of wall time and let the chain fall behind a
        run (BENCHMARKS.md, "Chain lag at the dashboard's pace").
    """

    def __init__(
        self,
        rpc_url: str | None = None,
        *,
        private_key: Key,
        deployment: Deployment | Mapping | None = None,
        accounts: NodeAccounts | None = None,
        provider: Any = None,
        initial_supply: int = DEFAULT_SUPPLY,
        fund_node_gas: bool = True,
        timeout: float = 60.0,
        label: str | None = None,
        fixed_gas: int | None = None,
    ) -> None:
        if provider is None:
            if not rpc_url:
                raise ChainError("pass rpc_url (or provider=); for an in-process chain use ChainClient.embedded()")
            provider = _redacting_provider(rpc_url, timeout)
        self._lock = threading.RLock()
        self._recorded: dict[tuple[str, int], tuple[tuple[str, int, bytes], ...]] = {}
        self._signer = Signer(private_key)
        self.w3 = Web3(provider)
        if accounts is None:
            log.warning(
                "node accounts derive from the public embedded seed: anyone can sign as these nodes; "
                "pass accounts=NodeAccounts(seed=<secret>) or keys/addresses on a chain with value"
            )
            accounts = NodeAccounts()
        self.accounts = accounts
        self.fund_node_gas, self.timeout = fund_node_gas, timeout
        if fixed_gas is not None and (
            isinstance(fixed_gas, bool) or not isinstance(fixed_gas, int) or fixed_gas < 21_000
        ):
            raise ConfigError(
                "fixed_gas", fixed_gas, "None (estimate each transaction) or an integer gas limit >= 21000"
            )
        self.fixed_gas = fixed_gas
        self.label = label or (_redact(rpc_url) if rpc_url else type(provider).__name__)
        self.errors = ErrorDecoder(a.abi for a in lab_artifacts().values())
        try:
            self.chain_id: int = self.w3.eth.chain_id
        except (OSError, ChainError) as exc:
            failure = exc
        else:
            failure = None
        if failure is not None:  # raised outside the except block: the new error carries no context
            raise ChainError(f"cannot reach the chain at {self.label}: {failure}")
        if deployment is None:
            self.deployment = self._deploy_lab(initial_supply)
        else:
            self.deployment = deployment if isinstance(deployment, Deployment) else Deployment(**deployment)
            self._attach_lab()
        # Read once: the UI asks on every update and must not wait on (or fail with) the node.
        self._token_decimals: int = int(self.call(self.token.functions.decimals()))

    @classmethod
    def embedded(cls, *, accounts: NodeAccounts | None = None, provider: Any = None, **options: Any) -> ChainClient:
        """A fresh in-process chain (py-evm) with the contracts deployed by its first prefunded account.

        ``provider`` may be an ``EthereumTesterProvider`` (or a subclass, e.g. one that fails on purpose).
        """
        if provider is None:
            from web3 import EthereumTesterProvider

            provider = EthereumTesterProvider()
        key = provider.ethereum_tester.backend.account_keys[0]
        accounts = accounts if accounts is not None else NodeAccounts()
        if "fixed_gas" not in options:  # py-evm's gas estimate is a binary search: too slow to keep up with a run
            options["fixed_gas"] = int(Web3(provider).eth.get_block("latest")["gasLimit"])
        return cls(provider=provider, private_key=key, accounts=accounts, label="embedded", **options)

    # -- plumbing ----------------------------------------------------------------------------------
    @property
    def coordinator(self) -> str:
        """The coordinator account's address (it deploys, opens sessions, records and funds rounds)."""
        return self._signer.address

    @property
    def tracker_address(self) -> str:
        """The ContributionTracker's address: where rounds are recorded (an outbox feeds exactly one)."""
        return self.deployment.tracker

    @property
    def token_decimals(self) -> int:
        """The RewardToken's ERC-20 decimals (18), read from the token once at construction."""
        return self._token_decimals

    def __repr__(self) -> str:
        return (
            f"ChainClient({self.label}, chain_id={self.chain_id}, coordinator={self.coordinator}, "
            f"tracker={self.deployment.tracker})"
        )

    __str__ = __repr__

    def describe(self) -> LedgerInfo:
        """Plain facts for a UI: where (the redacted endpoint), who, which contracts, which compiler."""
        compiler = load("ContributionTracker").compiler
        return LedgerInfo(
            endpoint=self.label,
            chain_id=self.chain_id,
            coordinator=self.coordinator,
            contracts=self.deployment.as_dict(),
            software=f"solc {compiler['version']}, evm {compiler['evmVersion']}",
        )

    def address_of(self, who: Who) -> str:
        """An address from a node index, an address or a :class:`Signer`."""
        if isinstance(who, Signer):
            return who.address
        if isinstance(who, bool):
            raise TypeError("expected a node index, an address or a Signer")
        if isinstance(who, int):
            return self.accounts.address(who)
        if isinstance(who, str) and is_address(who):
            return to_checksum_address(who)
        raise ValueError(f"not a node index, address or Signer: {who!r}")

    def _sender(self, who: Who | None) -> Signer:
        if who is None:
            return self._signer
        if isinstance(who, Signer):
            return who
        if isinstance(who, int) and not isinstance(who, bool):
            return self.accounts.signer(who)
        raise ValueError("a sender is a node index or a Signer (an address cannot sign)")

    def _fees(self) -> dict[str, int]:
        priority = self.w3.eth.max_priority_fee
        base = self.w3.eth.get_block("latest").get("baseFeePerGas") or 0
        return {"maxPriorityFeePerGas": priority, "maxFeePerGas": 2 * base + priority}

    def _send(self, tx: dict[str, Any], sender: Signer, what: str) -> Any:
        """Sign locally, send, wait for the receipt (nonce and fees filled in here)."""
        tx = {
            **self._fees(),
            **tx,
            "from": sender.address,
            "chainId": self.chain_id,
            "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
        }
        signed = sender.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout, poll_latency=0.05)
        log.debug(
            "%s: tx 0x%s in block %d, gas %d", what, bytes(tx_hash).hex(), receipt["blockNumber"], receipt["gasUsed"]
        )
        return receipt

    def transact(self, fn: Any, *, sender: Who | None = None, value: int = 0) -> Any:
        """Dry-run (estimate gas), sign and send a contract call or constructor; return the receipt.

        Raises :class:`ContractRevert` with the Solidity error's name when the call reverts, whether
        at the estimate or (after a race with another transaction) in the mined block.
        """
        name = getattr(fn, "fn_name", "constructor")
        with self._lock:
            signer = self._sender(sender)
            self._ensure_gas(signer)
            base = {"from": signer.address, "value": value}
            try:
                # One EVM run as the dry run, for the coordinator's calls only: a node pays for gas from
                # a small top-up, which could not cover a block-sized limit up front.
                if self.fixed_gas is not None and signer == self._signer and hasattr(fn, "call"):
                    fn.call(base)
                    limit = self.fixed_gas
                else:
                    limit = int(fn.estimate_gas(base) * GAS_MARGIN) + 10_000
            except Exception as exc:
                raise self._revert_or(exc, name) from None
            fees = self._fees()
            tx = fn.build_transaction({**base, **fees, "gas": limit, "nonce": 0})
            tx = {k: tx[k] for k in ("to", "data", "gas", "value", *fees) if k in tx}
            receipt = self._send(tx, signer, name)
            if receipt["status"] != 1:
                raise self._replay_revert(fn, name, signer, value, receipt)
            return receipt

    def _revert_or(self, exc: BaseException, function: str) -> BaseException:
        revert = self.errors.from_exception(exc, function)
        return revert if revert is not None else exc

    def _replay_revert(self, fn: Any, name: str, signer: Signer, value: int, receipt: Any) -> BaseException:
        """Name the error of a mined, reverted transaction by replaying it on the state after its block."""
        if hasattr(fn, "call"):
            try:
                fn.call({"from": signer.address, "value": value}, block_identifier=receipt["blockNumber"])
            except Exception as exc:
                revert = self.errors.from_exception(exc, name)
                if revert is not None:
                    return revert
        return ChainError(f"{name} reverted in block {receipt['blockNumber']} (reason not recoverable)")

    def call(self, fn: Any) -> Any:
        """A read-only contract call, reverts decoded."""
        with self._lock:
            try:
                return fn.call()
            except Exception as exc:
                raise self._revert_or(exc, fn.fn_name) from None

    def deploy(self, artifact: Artifact | str, *args: Any, sender: Who | None = None) -> Any:
        """Deploy any compiled artifact (its errors become decodable); returns the web3 contract."""
        artifact = load(artifact) if isinstance(artifact, str) else artifact
        with self._lock:
            self.errors.add(artifact.abi)
            factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
            receipt = self.transact(factory.constructor(*args), sender=sender)
            log.info("deployed %s at %s", artifact.name, receipt["contractAddress"])
            return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)

    def contract(self, artifact: Artifact | str, address: str) -> Any:
        """A web3 contract for an artifact at an existing address (its errors become decodable)."""
        artifact = load(artifact) if isinstance(artifact, str) else artifact
        self.errors.add(artifact.abi)
        return self.w3.eth.contract(address=to_checksum_address(address), abi=artifact.abi)

    def _deploy_lab(self, initial_supply: int) -> Deployment:
        registry = self.deploy("TrainingRegistry")
        tracker = self.deploy("ContributionTracker", registry.address)
        token = self.deploy("RewardToken", self.coordinator, initial_supply)
        distributor = self.deploy("RewardDistributor", token.address, tracker.address)
        self.registry, self.tracker, self.token, self.distributor = registry, tracker, token, distributor
        return Deployment(registry.address, tracker.address, token.address, distributor.address)

    def _attach_lab(self) -> None:
        d = self.deployment
        for name, address in (
            ("TrainingRegistry", d.registry),
            ("ContributionTracker", d.tracker),
            ("RewardToken", d.token),
            ("RewardDistributor", d.distributor),
        ):
            if self.w3.eth.get_code(to_checksum_address(address)) in (b"", b"\x00"):
                raise ChainError(f"no contract code at {address} ({name}) on chain {self.chain_id}")
        self.registry = self.contract("TrainingRegistry", d.registry)
        self.tracker = self.contract("ContributionTracker", d.tracker)
        self.token = self.contract("RewardToken", d.token)
        self.distributor = self.contract("RewardDistributor", d.distributor)
        wiring = {
            "tracker.registry": (self.call(self.tracker.functions.registry()), d.registry),
            "distributor.tracker": (self.call(self.distributor.functions.tracker()), d.tracker),
            "distributor.token": (self.call(self.distributor.functions.token()), d.token),
        }
        for what, (found, expected) in wiring.items():
            if to_checksum_address(found) != to_checksum_address(expected):
                raise ChainError(f"deployment does not fit together: {what} is {found}, expected {expected}")
        log.info("attached to %s on chain %d", d, self.chain_id)

    # -- sessions ----------------------------------------------------------------------------------
    def new_session_id(self) -> str:
        """A fresh session id in the coordinator's namespace (its address, then 12 random bytes)."""
        return new_session_id(self.coordinator)

    @_locked
    def start_session(
        self,
        session_id: str | bytes,
        *,
        model_hash: str | bytes = ZERO32,
        dataset_id: str = "",
        config_hash: str | bytes = ZERO32,
        sender: Who | None = None,
    ) -> Session:
        """Open a training session; the sender (the coordinator by default) becomes its coordinator."""
        self.transact(
            self.registry.functions.startSession(b32(session_id), b32(model_hash), dataset_id, b32(config_hash)),
            sender=sender,
        )
        log.info("session %s started", hex32(session_id))
        return self.session(session_id)

    @_locked
    def complete_session(self, session_id: str | bytes, *, sender: Who | None = None) -> Session:
        self.transact(self.registry.functions.completeSession(b32(session_id)), sender=sender)
        log.info("session %s completed", hex32(session_id))
        return self.session(session_id)

    @_locked
    def session(self, session_id: str | bytes) -> Session | None:
        """The session, or None when the chain has never heard of it."""
        s = self.call(self.registry.functions.getSession(b32(session_id)))
        coordinator, status, started, completed, model_hash, config_hash, dataset = s
        if status == 0:
            return None
        return Session(
            hex32(session_id),
            coordinator,
            STATUSES[status],
            hex32(model_hash),
            dataset,
            hex32(config_hash),
            started,
            completed,
        )

    # -- contributions -----------------------------------------------------------------------------
    @_locked
    def record_round(
        self, session_id: str | bytes, round: int, contributions: Iterable[Contribution], *, sender: Who | None = None
    ) -> TxResult:
        """Record one round's contributions in one transaction (sorted by address, as the contract wants)."""
        rows = sorted(contributions, key=lambda c: int(c.address, 16))
        receipt = self.transact(
            self.tracker.functions.recordRound(
                b32(session_id),
                int(round),
                [to_checksum_address(c.address) for c in rows],
                [int(c.score) for c in rows],
                [b32(c.update_hash) for c in rows],
            ),
            sender=sender,
        )
        self._remember(
            (hex32(session_id), int(round)),
            tuple((to_checksum_address(c.address), int(c.score), b32(c.update_hash)) for c in rows),
        )
        log.info("round %d recorded: %d contributions, total score %d", round, len(rows), sum(c.score for c in rows))
        return TxResult("0x" + bytes(receipt["transactionHash"]).hex(), receipt["blockNumber"], receipt["gasUsed"])

    @_locked
    def is_recorded(self, session_id: str | bytes, round: int) -> bool:
        return self.call(self.tracker.functions.isRecorded(b32(session_id), int(round)))

    @_locked
    def round_contributions(self, session_id: str | bytes, round: int) -> tuple[Contribution, ...]:
        """A recorded round's contributions, from its RoundRecorded event (storage keeps only a digest)."""
        key = (hex32(session_id), int(round))
        if key not in self._recorded:
            logs = self.tracker.events.RoundRecorded.get_logs(
                from_block=0, argument_filters={"sessionId": b32(session_id), "round": int(round)}
            )
            if not logs:
                return ()
            a = logs[0]["args"]
            self._remember(key, tuple(zip(a["nodes"], a["scores"], a["updateHashes"])))
        return tuple(
            Contribution(n, s, "0x" + bytes(h).hex(), self.accounts.node_of(n)) for n, s, h in self._recorded[key]
        )

    def _remember(self, key: tuple[str, int], rows: tuple[tuple[str, int, bytes], ...]) -> None:
        """Keep a recorded round's rows for its funding (bounded: the event log is the fallback)."""
        self._recorded[key] = rows
        while len(self._recorded) > 64:
            self._recorded.pop(next(iter(self._recorded)))

    @_locked
    def total_score(self, session_id: str | bytes, who: Who) -> int:
        """The node's summed score over the session, from the RoundRecorded events (not stored on chain)."""
        address = self.address_of(who)
        return sum(c.score for r in self.history(session_id) for c in r.contributions if c.address == address)

    @_locked
    def rounds_recorded(self, session_id: str | bytes) -> int:
        """How many rounds of the session are recorded, from its events (no counter is stored on chain)."""
        return len(self.history(session_id))

    @_locked
    def history(self, session_id: str | bytes, *, from_block: int = 0) -> list[RecordedRound]:
        """Every recorded round of the session, from the RoundRecorded events, in chain order."""
        logs = self.tracker.events.RoundRecorded.get_logs(
            from_block=from_block, argument_filters={"sessionId": b32(session_id)}
        )
        out = []
        for ev in logs:
            a = ev["args"]
            rows = tuple(
                Contribution(n, s, "0x" + bytes(h).hex(), self.accounts.node_of(n))
                for n, s, h in zip(a["nodes"], a["scores"], a["updateHashes"])
            )
            out.append(
                RecordedRound(
                    hex32(a["sessionId"]),
                    a["round"],
                    rows,
                    a["totalScore"],
                    ev["blockNumber"],
                    "0x" + bytes(ev["transactionHash"]).hex(),
                )
            )
        return out

    # -- rewards -----------------------------------------------------------------------------------
    @_locked
    def token_balance(self, who: Who) -> int:
        return self.call(self.token.functions.balanceOf(self.address_of(who)))

    @_locked
    def mint(self, to: Who, amount: int) -> TxResult:
        """Mint reward tokens (the token's owner, the deploying coordinator, only)."""
        r = self.transact(self.token.functions.mint(self.address_of(to), int(amount)))
        return TxResult("0x" + bytes(r["transactionHash"]).hex(), r["blockNumber"], r["gasUsed"])

    @_locked
    def is_funded(self, session_id: str | bytes, round: int) -> bool:
        return self.call(self.distributor.functions.isFunded(b32(session_id), int(round)))

    @_locked
    def fund_round(self, session_id: str | bytes, round: int, pool: int, *, sender: Who | None = None) -> Funding:
        """Split ``pool`` token units over the round's nodes, pro rata by score (floor; dust stays with the funder).

        Approves the distributor for the pool first when the allowance is short.
        """
        signer = self._sender(sender)
        allowance = self.call(self.token.functions.allowance(signer.address, self.deployment.distributor))
        if allowance < pool:
            self.transact(self.token.functions.approve(self.deployment.distributor, 2**256 - 1), sender=signer)
        rows = self.round_contributions(session_id, round)
        receipt = self.transact(
            self.distributor.functions.fundRound(
                b32(session_id), int(round), int(pool), [c.address for c in rows], [c.score for c in rows]
            ),
            sender=signer,
        )
        shares = {
            e["args"]["node"]: e["args"]["amount"]
            for e in self.distributor.events.RewardCredited().process_receipt(receipt, errors=DISCARD)
        }
        (funded,) = self.distributor.events.RoundFunded().process_receipt(receipt, errors=DISCARD)
        log.info(
            "round %d funded: pool %d, distributed %d to %d nodes",
            round,
            pool,
            funded["args"]["distributed"],
            len(shares),
        )
        return Funding(
            hex32(session_id),
            int(round),
            int(pool),
            funded["args"]["distributed"],
            shares,
            "0x" + bytes(receipt["transactionHash"]).hex(),
        )

    @_locked
    def claimable(self, who: Who) -> int:
        return self.call(self.distributor.functions.claimable(self.address_of(who)))

    @_locked
    def claimed(self, who: Who) -> int:
        return self.call(self.distributor.functions.claimed(self.address_of(who)))

    @_locked
    def claim(self, who: int | Signer) -> int:
        """The node withdraws its own whole balance (signing as itself); returns the amount.

        Raises ContractRevert ``NothingToClaim`` when there is nothing (e.g. a second claim).
        """
        signer = self._sender(who)
        receipt = self.transact(self.distributor.functions.claim(), sender=signer)
        (ev,) = self.distributor.events.Claimed().process_receipt(receipt, errors=DISCARD)
        log.info("%s claimed %d", signer.address, ev["args"]["amount"])
        return ev["args"]["amount"]

    def _ensure_gas(self, signer: Signer) -> None:
        if not self.fund_node_gas or signer == self._signer:
            return
        if self.w3.eth.get_balance(signer.address) >= MIN_GAS_WEI:
            return
        self._send({"to": signer.address, "value": GAS_TOPUP_WEI, "gas": 21_000}, self._signer, "gas top-up")
        log.info("sent %s %d wei for gas", signer.address, GAS_TOPUP_WEI)

    @_locked
    def eth_balance(self, who: Who) -> int:
        return self.w3.eth.get_balance(self.address_of(who))

    # -- the lab -----------------------------------------------------------------------------------
    def attach(self, coordinator: Any, **options: Any) -> ChainRecorder:
        """Record ``coordinator``'s rounds on this chain; see :class:`~hypergpu_lab.chain.ChainRecorder`."""
        return attach_recorder(self, coordinator, **options)


def _redact(url: str) -> str:
    """scheme://host:port only: paths and query strings of hosted RPC URLs often carry API keys."""
    return redact_url(url)


def _redacting_provider(url: str, timeout: float) -> Any:
    """An HTTPProvider whose errors, logs and repr never show ``url``'s credentials."""
    from web3 import HTTPProvider

    protect(url)
    label = redact_url(url)

    class RedactingHTTPProvider(HTTPProvider):
        def make_request(self, method: Any, params: Any) -> Any:
            try:
                return super().make_request(method, params)
            except Exception as exc:
                clean = _sanitized(exc, label)
            raise clean  # outside the except block: the original (with the URL) is not its context

        def __str__(self) -> str:
            return f"RPC connection {label}"

        __repr__ = __str__

    return RedactingHTTPProvider(url, request_kwargs={"timeout": timeout})


def _sanitized(exc: BaseException, label: str) -> BaseException:
    """``exc`` with the URL's secrets cut, keeping its kind: transient (OSError) or final (ChainError)."""
    text = SCRUBBER.scrub(f"{type(exc).__name__}: {exc}")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return ChainError(f"{label} refused the request (HTTP {status}): check the RPC URL and its key")
    if isinstance(exc, OSError):  # requests' ConnectionError, Timeout, HTTPError 5xx: worth a retry
        kind = TimeoutError if "Timeout" in type(exc).__name__ else ConnectionError
        return kind(f"{label}: {text}")
    if SCRUBBER.scrub(str(exc)) == str(exc):
        return exc
    return RuntimeError(f"{label}: {text}")
