"""ChainRecorder: a bus subscriber that gets every accepted round's contributions on chain exactly once.

::

    round loop --bus.emit--> on_report: score the round, append it to the outbox (fsync). That is all
                             the round loop ever waits for: a slow or dead chain cannot stall training.
    sender thread ---------> lowest pending round that is due -> already on chain? -> recordRound
                             -> fundRound -> ack
                             the node down or a timeout: every round waits, in order, with exponential
                             backoff (capped), for as long as it takes; nothing is given up
                             another error: that round waits with backoff while later rounds go on,
                             and is parked after ``max_attempts`` tries
                             a revert or a bad value (permanent): park the round with its reason at
                             once (retry_failed() re-queues it); the rounds behind it go on

A value the chain cannot take never reaches the outbox: ``reward_per_round`` is checked when the
recorder is made (ConfigError), and a round whose scorer gave a bad score is parked with the reason
at once. Which failures are permanent is :func:`is_permanent`.

Exactly once: the outbox ignores a round it has seen (a resumed run replays rounds), and the contract
records a (session, round) at most once. After a crash between send and acknowledgement the round is
still pending; the sender first asks the chain whether it is recorded (and funded), and counts the
contract's RoundAlreadyRecorded / RoundAlreadyFunded reverts as success, so nothing is paid twice.
The session id lives in the outbox's "session" line, so a restarted recorder finds its session again.
"Once" is per session: a ledger that is not the one that acknowledged the rounds (another tracker or
chain id; or the same addresses without the session, as an embedded chain after a restart) gets a new
session (a new "session" line, see outbox.py) and every round the outbox holds, each once.

The recorder talks to the chain only through the :class:`~hypergpu_lab.chain.ledger.Ledger` Protocol
and imports neither web3 nor :mod:`~hypergpu_lab.chain.client`: any ledger records through it
(``ChainClient.attach`` calls :func:`attach_recorder`; so does any other implementation).

What each acknowledged round paid is logged with its acknowledgement (from the ledger's
:class:`~hypergpu_lab.chain.ledger.Funding`, else :func:`~hypergpu_lab.chain.rewards.split_pool`,
the contract's own rule), so :meth:`ChainRecorder.paid_by_node` is what the ledger credited, in
integer base units, with no chain call: the rewards chart reads it on every update.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..events import NodeRecord, RoundReport
from .ledger import ZERO32, ChainError, ContractRevert, Contribution, Funding, Ledger, hex32, new_session_id
from .outbox import FILENAME, Outbox
from .rewards import check_reward, split_pool
from .scoring import check_score, score

log = logging.getLogger(__name__)

_AUTO = "auto"

# Errors that would come back the same on every send: a revert or wrong setup (ChainError), and a value
# the client cannot encode. Anything with a network cause (OSError covers ConnectionError, TimeoutError
# and requests' errors) is transient. Named, not imported: the recorder imports no web3.
_PERMANENT_TYPES = (ChainError, ValueError, TypeError, ArithmeticError, LookupError, AttributeError)
_PERMANENT_NAMES = frozenset({"Web3ValidationError", "MismatchedABI", "InvalidAddress", "InvalidTransaction"})
# The chain (or the way to it) is down: says nothing about the round, so every round waits, in order.
_UNREACHABLE_NAMES = frozenset(
    {"ProviderConnectionError", "TimeExhausted", "RequestTimedOut", "TooManyRequests", "CannotHandleRequest"}
)


def is_permanent(exc: BaseException) -> bool:
    """Whether sending the same round again would fail the same way (then it is parked, not retried)."""
    if isinstance(exc, ChainError):
        return True
    if isinstance(exc, OSError):
        return False
    if isinstance(exc, _PERMANENT_TYPES):
        return True
    return any(cls.__name__ in _PERMANENT_NAMES for cls in type(exc).__mro__)


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the ledger cannot be reached (then every round waits; none is given up)."""
    return isinstance(exc, OSError) or any(cls.__name__ in _UNREACHABLE_NAMES for cls in type(exc).__mro__)


@dataclass(frozen=True)
class RecorderStatus:
    """What a UI shows about the recorder; no secrets in here."""

    session_id: str
    pending: int  # queued, not yet on chain (including ones being retried)
    sent: int  # acknowledged on chain
    failed: int  # parked after a revert; see failures()
    already: int  # of ``sent``: found on chain already (a lost acknowledgement earlier)
    attempts: int  # consecutive failed attempts at the current round (0 when healthy)
    last_error: str | None
    last_sent_round: int | None
    running: bool

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def contributions(report: RoundReport, scorer: Callable[[NodeRecord], int] = score) -> list[dict[str, Any]]:
    """The accepted updates of a round as outbox rows: node, integer score, update hash.

    Addresses are looked up when sending, off the round loop (deriving a key costs milliseconds). A
    score that is not an integer in [0, MAX_SCORE] raises ConfigError (1.5 is not silently truncated).
    """
    return [
        {
            "node": rec.node,
            "score": check_score(scorer(rec), f"score of node {rec.node}"),
            "update_hash": "0x" + (rec.update_hash or "00" * 32),
        }
        for rec in report.nodes
        if rec.status == "accepted"
    ]


class ChainRecorder:
    """Records a coordinator's rounds on chain through a durable outbox (see the module docstring).

    Parameters
    ----------
    ledger
        The chain to record on: any :class:`~hypergpu_lab.chain.ledger.Ledger`.
    source
        A Coordinator (its bus, run folder, run id, config and pool are used) or a bare EventBus.
    outbox
        ``"auto"``: ``<run folder>/chain-outbox.jsonl`` when the coordinator has a run folder, else in
        memory; a path; ``None`` for in memory; or an :class:`Outbox`.
    reward_per_round
        Token units split over each recorded round's nodes (pro rata by score); ``None`` records only.
    scorer
        NodeRecord -> integer score; :func:`hypergpu_lab.chain.scoring.score` by default.
    background
        Send from a daemon thread (default). ``False``: nothing is sent until :meth:`flush`, which the
        caller runs at a safe point (between rounds, at the end).
    backoff_s, max_backoff_s
        Retry delay after the first failure, doubled each further failure, capped.
    max_attempts
        Tries before a round failing for a reason other than an unreachable chain is parked.
    """

    def __init__(
        self,
        ledger: Ledger,
        source: Any,
        *,
        outbox: str | Path | Outbox | None = _AUTO,
        session_id: str | None = None,
        reward_per_round: int | None = None,
        scorer: Callable[[NodeRecord], int] = score,
        background: bool = True,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_attempts: int = 6,
        dataset_id: str | None = None,
    ) -> None:
        reward_per_round = check_reward(reward_per_round)
        for name, value in (("backoff_s", backoff_s), ("max_backoff_s", max_backoff_s)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 86_400:
                raise ConfigError(name, value, "seconds, a number in (0, 86400)")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError("max_attempts", max_attempts, "an integer >= 1")
        self.max_attempts = max_attempts
        self.ledger, self.scorer, self.reward_per_round = ledger, scorer, reward_per_round
        self.backoff_s, self.max_backoff_s = float(backoff_s), float(max(backoff_s, max_backoff_s))
        self.outbox = self._open_outbox(source, outbox)
        try:
            self.session_id = self._open_session(source, session_id, dataset_id)
        except BaseException:
            self.outbox.close()
            raise
        self._session_checked = False
        self._attempts, self._last_error, self._last_sent = 0, None, None
        self._retry: dict[int, tuple[int, float]] = {}  # round -> (failed attempts, monotonic time it is due)
        self._down: tuple[int, float] = (0, 0.0)  # unreachable: (consecutive failures, when to try again)
        self._wake, self._closing = threading.Event(), threading.Event()
        self._step_lock = threading.Lock()
        self._progress = threading.Condition()  # notified after each background step: flush waits on it
        bus = getattr(source, "bus", source)
        self._unsubscribe = bus.subscribe(self.on_report)
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="hypergpu-chain-sender", daemon=True)
            self._thread.start()

    @property
    def client(self) -> Ledger:
        """The ledger under its name from before the Ledger seam (kept so existing notebooks keep working)."""
        return self.ledger

    # -- setup -------------------------------------------------------------------------------------
    @staticmethod
    def _open_outbox(source: Any, outbox: str | Path | Outbox | None) -> Outbox:
        if isinstance(outbox, Outbox):
            return outbox
        if isinstance(outbox, str) and outbox == _AUTO:
            folder = getattr(source, "run_folder", None)
            return Outbox(Path(folder.path) / FILENAME if folder is not None else None)
        return Outbox(outbox)

    def _open_session(self, source: Any, session_id: str | None, dataset_id: str | None) -> str:
        ledger = self.ledger
        known = self.outbox.session
        if known is not None:
            if known.get("chain_id") != ledger.chain_id or known.get("tracker") != ledger.tracker_address:
                # Another deployment (or chain): its rounds were recorded elsewhere. Open a new session
                # here and send every round again, once; refusing would leave the run unrecorded.
                log.warning(
                    "the outbox %s fed tracker %s on chain %s; this ledger is tracker %s on chain %s: "
                    "opening a new session here and sending all %d rounds again",
                    self.outbox.path,
                    known.get("tracker"),
                    known.get("chain_id"),
                    ledger.tracker_address,
                    ledger.chain_id,
                    self.outbox.held(),
                )
                return self._new_epoch("another ledger", session_id)
            if session_id is not None and hex32(session_id) != known["session_id"]:
                raise ChainError(f"the outbox {self.outbox.path} feeds session {known['session_id']}, not {session_id}")
            log.info("resuming chain session %s: %s", known["session_id"], self.outbox.counts())
            return known["session_id"]
        info = {
            "session_id": hex32(session_id or _fresh_session_id(ledger)),
            **self._ledger_facts(),
            **_describe(source, dataset_id),
        }
        return self.outbox.open_session(info)["session_id"]

    def _ledger_facts(self) -> dict[str, Any]:
        """What names the ledger in a "session" line: chain id, tracker, and its contracts (to attach again)."""
        ledger = self.ledger
        facts: dict[str, Any] = {"chain_id": ledger.chain_id, "tracker": ledger.tracker_address}
        describe = getattr(ledger, "describe", None)
        if callable(describe):
            try:
                facts["contracts"] = dict(describe().contracts)
            except Exception as exc:  # facts for a front end only; recording does not need them
                log.info("ledger.describe() failed; the outbox will not name its contracts: %s", exc)
        return facts

    def _new_epoch(self, reason: str, session_id: str | None = None) -> str:
        """A new session on the current ledger that every round of the outbox is sent to again."""
        old = self.outbox.session or {}
        info = {
            **{k: v for k, v in old.items() if k not in ("op", "previous", "reason", "contracts")},
            "session_id": hex32(session_id or _fresh_session_id(self.ledger)),
            **self._ledger_facts(),
            "reason": reason,
        }
        return self.outbox.new_epoch(info)["session_id"]

    # -- the round loop side -----------------------------------------------------------------------
    def on_report(self, report: RoundReport) -> None:
        """Bus subscriber: score the round and queue it durably. No chain call happens here."""
        try:
            rows = contributions(report, self.scorer)
        except Exception as exc:  # a scorer that raises: park the round with the reason, keep the others
            self._park_invalid(report.round, f"{type(exc).__name__}: {exc}")
            return
        if not rows:
            return
        try:
            queued = self.outbox.put(report.round, rows, self.reward_per_round)
        except ConfigError as exc:  # e.g. a custom scorer gave 1.5 or NaN: never let it reach the chain
            self._park_invalid(report.round, str(exc))
            return
        if queued:
            self._wake.set()
        else:
            log.info("round %d is already in the outbox; not queued again", report.round)

    def _park_invalid(self, round: int, reason: str) -> None:
        """Keep a round whose values the chain cannot take out of the queue, with the reason, once."""
        if self.outbox.put(round, [], None):
            self.outbox.fail(round, f"invalid contributions: {reason}", retriable=False)
        self._last_error = f"round {round}: invalid contributions: {reason}"
        log.error("round %d not queued: %s", round, reason)

    # -- the sender side ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closing.is_set():
            self._wake.clear()
            try:
                outcome = self._step()
            except Exception:  # the outbox itself failed (disk full?): keep the thread, try again later
                log.exception("chain sender step failed")
                self._attempts += 1
                self._closing.wait(self.next_backoff())
                continue
            finally:
                with self._progress:
                    self._progress.notify_all()
            if outcome == "idle":
                self._wake.wait(0.5)
            elif outcome in ("retry", "waiting"):
                self._wake.wait(self._until_due())

    def _backoff(self, attempts: int) -> float:
        return 0.0 if attempts <= 0 else min(self.backoff_s * 2 ** (attempts - 1), self.max_backoff_s)

    def next_backoff(self) -> float:
        """Seconds before the next attempt after the current run of failures."""
        return self._backoff(self._attempts)

    def _until_due(self) -> float:
        """Seconds until something may be tried again (0.5 when nothing waits)."""
        dues = [due for _, due in self._retry.values()] + ([self._down[1]] if self._down[0] else [])
        return max(0.0, min(dues) - time.monotonic()) if dues else 0.5

    def _next_due(self) -> dict[str, Any] | None:
        """The lowest pending round not waiting out a backoff (none while the ledger is unreachable)."""
        now = time.monotonic()
        if self._down[0] and self._down[1] > now:
            return None
        for r in self.outbox.pending_rounds():
            attempts_due = self._retry.get(r)
            if attempts_due is None or attempts_due[1] <= now:
                return self.outbox.pending(r)
        return None

    def _step(self) -> str:
        """Try one due round once: 'idle', 'waiting' (all in backoff), 'sent', 'retry' or 'parked'."""
        with self._step_lock:
            entry = self._next_due()
            if entry is None:
                return "waiting" if self.outbox.pending_rounds() else "idle"
            r = entry["round"]
            try:
                if not self._session_checked:
                    self._ensure_session()
                    entry = self._next_due() or entry  # a new session re-queues the rounds below this one
                    r = entry["round"]
                self._deliver(entry)
            except Exception as exc:
                return self._failed(r, exc)
            self._retry.pop(r, None)
            self._down = (0, 0.0)
            self._attempts = max((a for a, _ in self._retry.values()), default=0)
            if not self._retry:
                self._last_error = None
            self._last_sent = r
            return "sent"

    def _failed(self, r: int, exc: Exception) -> str:
        """Park, or schedule the next try of, a round whose delivery raised ``exc``."""
        error = str(exc) if isinstance(exc, ChainError) else f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if is_unreachable(exc):  # the chain is down: every round waits, none is given up
            attempts = self._down[0] + 1
            self._down = (attempts, now + self._backoff(attempts))
        else:
            attempts = self._retry.get(r, (0, 0.0))[0] + 1
            if is_permanent(exc) or attempts >= self.max_attempts:
                why = error if is_permanent(exc) else f"gave up after {attempts} attempts: {error}"
                self.outbox.fail(r, why)
                self._retry.pop(r, None)
                self._attempts = max((a for a, _ in self._retry.values()), default=self._down[0])
                self._last_error = f"round {r} parked: {why}"
                log.error("round %d parked, not retried: %s", r, why)
                return "parked"
            self._retry[r] = (attempts, now + self._backoff(attempts))
        self._attempts = max([a for a, _ in self._retry.values()] + [self._down[0]])
        self._last_error = error
        log.warning(
            "sending round %d failed (attempt %d), retrying in %.2fs: %s", r, attempts, self._backoff(attempts), error
        )
        return "retry"

    def _ensure_session(self) -> None:
        if self._session_checked:
            return
        ledger = self.ledger
        session = ledger.session(self.session_id)
        if session is None and self.outbox.sent:
            # A session, once opened, never leaves a ledger: this one is not the ledger that
            # acknowledged those rounds (an embedded chain restarted with its process, a dev node
            # reset). Record every round again, once, in a new session here.
            log.warning(
                "the chain has no session %s though %d rounds were acknowledged in it: a fresh chain "
                "(an embedded chain after a restart?); opening a new session and sending all %d rounds again",
                self.session_id,
                self.outbox.sent,
                self.outbox.held(),
            )
            self.session_id = self._new_epoch("the ledger lost the session (a fresh chain)")
            self._retry.clear()
        info = self.outbox.session
        if session is None:
            try:
                ledger.start_session(
                    self.session_id,
                    model_hash=info.get("model_hash", ZERO32),
                    dataset_id=info.get("dataset_id", ""),
                    config_hash=info.get("config_hash", ZERO32),
                )
            except ContractRevert as exc:
                if exc.name != "SessionExists":
                    raise
                session = ledger.session(self.session_id)
        if session is not None and session.coordinator != ledger.coordinator:
            raise ChainError(
                f"session {self.session_id} belongs to {session.coordinator}, "
                f"not this ledger's coordinator {ledger.coordinator}"
            )
        self._session_checked = True

    def _deliver(self, entry: dict[str, Any]) -> None:
        ledger, sid, r = self.ledger, self.session_id, entry["round"]
        rows = [
            Contribution(self._address(c["node"]), c["score"], c["update_hash"], c["node"])
            for c in entry["contributions"]
        ]
        tx, already = None, ledger.is_recorded(sid, r)
        if not already:
            try:
                tx = ledger.record_round(sid, r, rows).tx_hash
            except ContractRevert as exc:
                if exc.name != "RoundAlreadyRecorded":
                    raise
                already = True
        reward = entry.get("reward")
        funding = None
        if reward and sum(c.score for c in rows) > 0 and not ledger.is_funded(sid, r):
            try:
                funding = ledger.fund_round(sid, r, reward)
            except ContractRevert as exc:
                if exc.name != "RoundAlreadyFunded":
                    raise
        self.outbox.ack(r, tx=tx, already=already, paid=_paid(r, rows, reward, funding))
        if already:
            log.info("round %d was on chain already; acknowledged without resending", r)

    def _address(self, node: int) -> str:
        try:
            return self.ledger.address_of(node)
        except KeyError as exc:  # parked until the node gets an account and retry_failed() runs
            raise ChainError(f"node {node} has no account: {exc.args[0]}") from None

    # -- what was recorded and paid (local: no chain call) -----------------------------------------
    def paid_by_node(self) -> dict[int, int]:
        """Token base units the ledger credited each node for this session's acknowledged rounds.

        Survives a restart (it is replayed from the outbox). ``claimable + claimed`` on the ledger is
        at least this (more when the same address earned in other sessions).
        """
        return self.outbox.paid()

    def queued_by_node(self) -> dict[int, int]:
        """Base units the pending rounds will credit once delivered (the contract's split, in advance)."""
        return self.outbox.queued_rewards()

    def scores_by_node(self) -> dict[int, int]:
        """Each node's summed integer score over this session's acknowledged rounds."""
        return self.outbox.recorded_scores()

    # -- control -----------------------------------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> RecorderStatus:
        """Wait (background) or send now (manual) until nothing is pending or ``timeout`` s pass.

        In manual mode a transient failure is retried with backoff until the timeout; with
        ``timeout=None`` manual mode makes one pass and stops at the first failure.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()  # once: the sender then steps on its own (a wake per wait would spin in a backoff)
        while self.outbox.next_pending() is not None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            if self._thread is not None:
                with self._progress:  # checked and waited under the lock: no step's notify is missed
                    if self.outbox.next_pending() is None or self._closing.is_set():
                        break
                    self._progress.wait(remaining)
                continue
            outcome = self._step()
            if outcome in ("retry", "waiting"):
                if deadline is None:
                    break
                time.sleep(max(0.0, min(self._until_due(), deadline - time.monotonic())))
        return self.status()

    def retry_failed(self) -> int:
        """Queue the parked rounds again (after fixing what made them revert); returns how many."""
        n = self.outbox.retry_failed()
        self._session_checked = False
        self._retry.clear()
        self._wake.set()
        return n

    def failures(self) -> dict[int, str]:
        return self.outbox.failures()

    def complete_session(self, timeout: float | None = 30.0) -> RecorderStatus:
        """Flush, then close the session on chain (no more rounds can be recorded in it)."""
        status = self.flush(timeout)
        if status.pending:
            raise ChainError(f"{status.pending} rounds still pending; not completing session {self.session_id}")
        with self._step_lock:
            self._ensure_session()
            self.ledger.complete_session(self.session_id)
        return self.status()

    def close(self, *, flush: bool = True, timeout: float | None = 30.0) -> RecorderStatus:
        """Stop listening, optionally flush, stop the sender and close the outbox; what is pending stays on disk."""
        self._unsubscribe()
        if flush:
            self.flush(timeout)
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        status = self.status()
        self.outbox.close()
        return status

    def status(self) -> RecorderStatus:
        c = self.outbox.counts()
        return RecorderStatus(
            self.session_id,
            c["pending"],
            c["sent"],
            c["failed"],
            self.outbox.already,
            self._attempts,
            self._last_error,
            self._last_sent,
            self._thread is not None and self._thread.is_alive(),
        )

    def __repr__(self) -> str:
        c = self.outbox.counts()
        return (
            f"ChainRecorder(session={self.session_id[:10]}..., pending={c['pending']}, sent={c['sent']}, "
            f"failed={c['failed']})"
        )


def _paid(round: int, rows: list[Contribution], reward: int | None, funding: Funding | None) -> dict[int, int] | None:
    """node -> base units the round credited: the ledger's own shares when it funded now, else the split.

    A round funded earlier (a resend after a crash) has no Funding here; the contract's rule
    (:func:`split_pool`) gives the same shares. A mismatch means the ledger and the rule disagree,
    which is worth a warning but not a lost round: the ledger's answer is kept.
    """
    if not reward:
        return None
    expected = split_pool(reward, {c.node: c.score for c in rows})
    if funding is None:
        return expected
    node_of = {c.address.lower(): c.node for c in rows}
    credited = {node_of[a.lower()]: amount for a, amount in funding.shares.items() if a.lower() in node_of}
    if credited != expected:
        log.warning("round %d: the ledger credited %s, split_pool gives %s", round, credited, expected)
    return credited


def attach_recorder(ledger: Ledger, coordinator: Any, **options: Any) -> ChainRecorder:
    """Record ``coordinator``'s rounds on ``ledger``: what every ``Ledger.attach`` does.

    Lives here, not in a client, so the import direction stays client -> recorder -> ledger.
    """
    return ChainRecorder(ledger, coordinator, **options)


class RecordsRounds:
    """Mixin giving a :class:`~hypergpu_lab.chain.ledger.Ledger` implementation its ``attach``."""

    def attach(self, coordinator: Any, **options: Any) -> ChainRecorder:
        """``Coordinator(chain=self, chain_options=options)`` calls this; see :class:`ChainRecorder`."""
        return attach_recorder(self, coordinator, **options)  # type: ignore[arg-type]


def _fresh_session_id(ledger: Ledger) -> str:
    """The ledger's own unsquattable id; a random one from a ledger that predates the method."""
    make = getattr(ledger, "new_session_id", None)
    return make() if callable(make) else new_session_id()


def _describe(source: Any, dataset_id: str | None) -> dict[str, str]:
    """Session metadata from a coordinator: run id, dataset, a hash of its weights now and of its config."""
    pool_config = getattr(getattr(source, "pool", None), "config", None)
    dataset = dataset_id or getattr(pool_config, "dataset", None) or "custom"
    weights = getattr(source, "weights", None)
    model_hash = "0x" + "00" * 32
    if weights is not None:
        model_hash = "0x" + hashlib.sha256(weights.detach().cpu().numpy().tobytes()).hexdigest()
    config = getattr(source, "config", None)
    config_hash = "0x" + "00" * 32
    if config is not None and dataclasses.is_dataclass(config):
        text = json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)
        config_hash = "0x" + hashlib.sha256(text.encode()).hexdigest()
    return {
        "run_id": str(getattr(source, "run_id", "")),
        "dataset_id": str(dataset),
        "model_hash": model_hash,
        "config_hash": config_hash,
    }
