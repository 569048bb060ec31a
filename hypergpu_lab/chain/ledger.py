"""The chain seam: the :class:`Ledger` Protocol and the plain values that cross it.

Everything the lab needs from "a chain" goes through :class:`Ledger`: the recorder
(:mod:`hypergpu_lab.chain.recorder`) opens a session, records each round once and funds its reward
pool; the dashboard's chain panel and rewards chart read scores, balances and the round history.
:class:`~hypergpu_lab.chain.client.ChainClient` (Ethereum, web3) is one implementation; a different
chain is one new module that implements this Protocol, and nothing else changes.

Why a Protocol and not a base class: an implementation owes the lab behaviour (the guarantees in
each method's docstring), not code, and a Protocol lets a test fake or another chain's SDK wrapper
satisfy it without inheriting web3 plumbing.

Layering: this module imports nothing from the chain package (and no web3), so the recorder, the
UI and any other ledger depend on it alone. Import direction inside the package:
``client -> recorder -> ledger`` (and ``rewards``, ``scoring``, ``outbox`` beside ``ledger``).

Units: scores are the integers of :mod:`hypergpu_lab.chain.scoring`; token amounts are integers in
the token's base units (``10 ** token_decimals`` base units = one whole token), never floats.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

ZERO32 = "0x" + "00" * 32


# -- errors: part of the contract (which failures are final, which are worth a retry) -------------
class ChainError(Exception):
    """A final failure talking to a ledger: a wrong setup, or a revert (see :class:`ContractRevert`).

    The recorder parks a round that fails with a ChainError (sending it again would fail the same
    way); any other exception (``ConnectionError``, ``TimeoutError``, ``OSError``...) is transient
    and retried with backoff. Implementations must keep to that split.
    """


class ContractRevert(ChainError):
    """A ledger refused a call; ``name`` is the error (``"RoundAlreadyRecorded"``), ``arguments`` its fields.

    Reverts are deterministic: sending the same call again gives the same answer, so the recorder
    never retries them (except the "already done" ones, which it counts as success). A revert
    changes nothing on the ledger. The names are the Solidity contracts' custom errors, and every
    :class:`Ledger` raises the same names for the same conditions.
    """

    def __init__(
        self, name: str, args: Mapping[str, Any] | None = None, *, function: str | None = None, data: bytes = b""
    ) -> None:
        self.name, self.arguments, self.function, self.data = name, dict(args or {}), function, data
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.arguments.items())
        where = f" in {function}" if function else ""
        super().__init__(f"{name}({shown}) reverted{where}")

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working with keyword arguments
        return (_rebuild_revert, (self.name, self.arguments, self.function, self.data))


def _rebuild_revert(name: str, args: dict[str, Any], function: str | None, data: bytes) -> ContractRevert:
    return ContractRevert(name, args, function=function, data=data)


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


# -- ids -------------------------------------------------------------------------------------------
def b32(value: str | bytes) -> bytes:
    """A 32-byte value from bytes or hex (with or without 0x)."""
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}: {value!r}")
    return raw


def hex32(value: str | bytes) -> str:
    """The canonical text form of a 32-byte id or hash: 0x + 64 lowercase hex."""
    return "0x" + b32(value).hex()


def new_session_id(owner: str | None = None) -> str:
    """A fresh session id (0x + 64 hex): ``owner``'s 20-byte address then 12 random bytes, or 32 random bytes.

    On Ethereum a session id must start with its coordinator's address (TrainingRegistry refuses any
    other with ``SessionIdNotOwned``), so nobody can open, and squat, the id a coordinator will use.
    """
    if owner is None:
        return "0x" + secrets.token_hex(32)
    raw = bytes.fromhex(owner.removeprefix("0x"))
    if len(raw) != 20:
        raise ValueError(f"owner must be a 20-byte address, got {len(raw)} bytes")
    return "0x" + raw.hex() + secrets.token_hex(12)


# -- the values a ledger trades in -----------------------------------------------------------------
@dataclass(frozen=True)
class Session:
    """A training session as the ledger knows it; ``status`` is ``"active"`` or ``"completed"``."""

    session_id: str
    coordinator: str
    status: str  # active | completed
    model_hash: str
    dataset_id: str
    config_hash: str
    started_at: int
    completed_at: int


@dataclass(frozen=True)
class Contribution:
    """One node's part of a round, as recorded: integer score (see scoring.py) and update hash."""

    address: str
    score: int
    update_hash: str = ZERO32
    node: int | None = None


@dataclass(frozen=True)
class RecordedRound:
    """A round as the ledger recorded it: its contributions, their total, where (block, tx)."""

    session_id: str
    round: int
    contributions: tuple[Contribution, ...]
    total_score: int
    block: int
    tx_hash: str


@dataclass(frozen=True)
class TxResult:
    """What a write cost and where it landed; ``block`` orders writes, ``gas_used`` may be 0 off Ethereum."""

    tx_hash: str
    block: int
    gas_used: int


@dataclass(frozen=True)
class Funding:
    """A funded round: ``distributed`` = sum(shares) <= ``pool``; the difference (dust) stays with the funder.

    ``shares`` maps address -> token base units credited, zero shares left out; it equals
    :func:`hypergpu_lab.chain.rewards.split_pool` of the round's recorded scores.
    """

    session_id: str
    round: int
    pool: int
    distributed: int
    shares: dict[str, int]
    tx_hash: str

    @property
    def dust(self) -> int:
        return self.pool - self.distributed


@dataclass(frozen=True)
class LedgerInfo:
    """Plain facts a UI shows about a ledger; no secrets (no keys, no RPC paths that may hold API keys).

    ``contracts`` names what holds the state (contract name -> address on Ethereum); ``software``
    says what built it (``"solc 0.8.24, evm cancun"``), or is empty.
    """

    endpoint: str
    chain_id: int
    coordinator: str
    contracts: Mapping[str, str] = field(default_factory=dict)
    software: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["contracts"] = dict(self.contracts)
        return out


# -- the Protocol ----------------------------------------------------------------------------------
@runtime_checkable
class Ledger(Protocol):
    """A chain the lab records contributions on and pays rewards from.

    Contract every implementation keeps (the recorder's exactly-once delivery rests on it):

    * **Sessions** group rounds. Only a session's coordinator records or funds its rounds.
    * **Idempotent rounds**: a (session, round) is recorded at most once and funded at most once; a
      second attempt raises :class:`ContractRevert` (``RoundAlreadyRecorded`` /
      ``RoundAlreadyFunded``) and changes nothing. That is what makes resending safe.
    * **Reverts are atomic and final**: a :class:`ContractRevert` leaves the ledger as it was and
      would be raised again for the same call; other :class:`ChainError` s are final too. Anything
      else raised (connection, timeout) is transient: the caller retries the same call later.
    * **Integers only**: scores are integers; token amounts are integers in base units
      (``10 ** token_decimals`` per whole token). Rewards split with
      :func:`hypergpu_lab.chain.rewards.split_pool` (floor per node, dust stays with the funder).
    * **Thread safety**: the recorder's sender thread and a UI call it concurrently.
    * Nodes are named by an index (the pool's node id) or an address; each node index maps to one
      address for the ledger's lifetime (:meth:`address_of`).
    """

    @property
    def chain_id(self) -> int:
        """Which chain (EIP-155 id on Ethereum); with :attr:`tracker_address` it names this ledger.

        The recorder's outbox stores both and refuses to feed a different ledger.
        """
        ...

    @property
    def tracker_address(self) -> str:
        """The stable address (or id) of where rounds are recorded; must not change for this ledger."""
        ...

    @property
    def coordinator(self) -> str:
        """The address this ledger writes as: it opens sessions, records and funds their rounds."""
        ...

    @property
    def token_decimals(self) -> int:
        """Decimals of the reward token: ``10 ** token_decimals`` base units make one whole token.

        Cheap (no round trip after construction): UIs read it on every update.
        """
        ...

    def describe(self) -> LedgerInfo:
        """Plain facts for a UI: endpoint, chain id, coordinator, contracts, software. No secrets."""
        ...

    def address_of(self, node: int | str) -> str:
        """The address of a node index (or an address, normalised).

        Raises ``KeyError`` when a node index has no account: the recorder parks the round until it
        gets one. Must not block on the network.
        """
        ...

    # -- sessions -----------------------------------------------------------------------------------
    def new_session_id(self) -> str:
        """A fresh id that only :attr:`coordinator` can open (no outsider can squat it).

        Called once per recorder, offline (the id is pinned in the outbox before any chain call).
        Ethereum: :func:`new_session_id` with the coordinator's address as prefix.
        """
        ...

    def start_session(
        self, session_id: str, *, model_hash: str = ZERO32, dataset_id: str = "", config_hash: str = ZERO32
    ) -> Session:
        """Open an active session with :attr:`coordinator` as its coordinator; returns it.

        Reverts ``SessionExists`` when the id is known (active or completed), ``SessionIdNotOwned``
        for an id that :meth:`new_session_id` would not give this coordinator.
        """
        ...

    def session(self, session_id: str) -> Session | None:
        """The session, or None when the ledger has never heard of it (a fresh chain)."""
        ...

    def complete_session(self, session_id: str) -> Session:
        """Close an active session: no further round can be recorded in it.

        Reverts ``UnknownSession``, ``NotCoordinator`` (not the caller's), ``SessionNotActive``.
        """
        ...

    # -- contributions ------------------------------------------------------------------------------
    def record_round(self, session_id: str, round: int, contributions: Iterable[Contribution]) -> TxResult:
        """Record one round's contributions, all or nothing, at most once per (session, round).

        Afterwards :meth:`is_recorded` is true, each node's :meth:`total_score` grew by its score,
        :meth:`rounds_recorded` by one and :meth:`history` ends with the round. Any input order (the
        ledger may sort); each address at most once. Reverts ``RoundAlreadyRecorded`` (the recorder
        counts it as success), ``NotCoordinator``, ``SessionNotActive``, ``NoContributions``.
        """
        ...

    def is_recorded(self, session_id: str, round: int) -> bool:
        """Whether the (session, round) is recorded (checked before resending after a lost acknowledgement)."""
        ...

    def rounds_recorded(self, session_id: str) -> int:
        """How many rounds of the session are recorded."""
        ...

    def total_score(self, session_id: str, node: int | str) -> int:
        """The node's summed score over the session's recorded rounds (0 for a stranger)."""
        ...

    def history(self, session_id: str) -> list[RecordedRound]:
        """Every recorded round of the session, in recording order."""
        ...

    # -- rewards ------------------------------------------------------------------------------------
    def fund_round(self, session_id: str, round: int, pool: int) -> Funding:
        """Credit ``pool`` base units over a recorded round's nodes pro rata by score, once per round.

        Shares are exactly :func:`~hypergpu_lab.chain.rewards.split_pool` (floor each); only their
        sum is taken from the coordinator, the dust stays with it. Credits raise :meth:`claimable`.
        Reverts ``RoundAlreadyFunded`` (counted as success by the recorder), ``NotCoordinator``,
        ``RoundNotRecorded``, ``ZeroPool``, ``NothingToDistribute`` (all scores zero).
        """
        ...

    def is_funded(self, session_id: str, round: int) -> bool:
        """Whether the (session, round) was funded already."""
        ...

    def claimable(self, node: int | str) -> int:
        """Base units credited to the node and not yet claimed (over every session)."""
        ...

    def claimed(self, node: int | str) -> int:
        """Base units the node has claimed so far; ``claimable + claimed`` is all it was ever credited."""
        ...

    def claim(self, node: int) -> int:
        """Pay the node its whole claimable balance (as the node itself); returns the amount.

        Moves the amount from :meth:`claimable` to :meth:`claimed` and the node's
        :meth:`token_balance`. Reverts ``NothingToClaim`` when the balance is zero.
        """
        ...

    def token_balance(self, node: int | str) -> int:
        """The node's reward-token balance in base units."""
        ...

    # -- the lab ------------------------------------------------------------------------------------
    def attach(self, coordinator: Any, **options: Any) -> Any:
        """Record ``coordinator``'s rounds on this ledger; returns the recorder.

        ``Coordinator(chain=ledger, chain_options=...)`` calls this. Implement it as
        ``return hypergpu_lab.chain.recorder.attach_recorder(self, coordinator, **options)`` (or
        inherit :class:`hypergpu_lab.chain.recorder.RecordsRounds`); the options are the
        :class:`~hypergpu_lab.chain.recorder.ChainRecorder` keywords.
        """
        ...
