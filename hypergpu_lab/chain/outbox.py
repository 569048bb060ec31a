"""The recorder's durable to-do list: an append-only JSON-lines log, replayed on open.

One JSON object a line, each written, flushed and fsynced before the call returns::

    {"op": "session", "session_id": "0x..", "chain_id": 1337, "tracker": "0x..", ...}  the session it feeds
    {"op": "round", "round": 3, "contributions": [{"node", "score", "update_hash"}, ...], "reward": 10**18}
    {"op": "ack", "round": 3, "tx": "0x..", "already": false, "paid": {"0": 5*10**17}}  it is on chain
    {"op": "fail", "round": 3, "error": "NotCoordinator(...)"}                         a revert; parked
    {"op": "retry", "round": 3}                                                        a parked round re-queued
    {"op": "session", "session_id": "0x..", ..., "previous": "0x..", "reason": ".."}   a new deployment: resend all

A second "session" line starts a new *epoch*: the rounds were acknowledged by a ledger that is gone
or is another one (an embedded chain lives only as long as its process; a resumed run may record on
a different deployment). Every round the outbox holds is pending again for the new session, except
those parked as invalid; the counters (sent, paid, scores) start again from zero, because they say
what the *current* ledger holds. So a round is recorded at most once per session, and a resumed run
loses no round on a new chain.

A round is ``pending`` from its "round" line until an "ack" (``sent``) or a "fail" (``failed``).
Values are checked before a "round" line is written (integer scores in [0, MAX_SCORE], an integer
reward in [0, MAX_REWARD] or null): a value the chain cannot take would fail on every send. A line
written by an older version with such a value is parked on replay with the reason, never sent, and
:meth:`Outbox.retry_failed` leaves it parked.
A crash can leave at most a torn last line, which opening cuts off: a torn "round" line is a round
the bus callback had not finished handing over, a torn "ack" one the sender will check on chain again.
Memory holds every round's entry (a new epoch resends them all) and counters; the file is the full
history. ``path=None`` keeps
the same bookkeeping in memory only.

Counters include, per node, the score and the reward (token base units, ``paid``: node -> amount the
ledger credited) of every acknowledged round, so a UI can show what the ledger holds without asking
it. An ack without ``paid`` (older outboxes) counts the contract's split of the round's reward.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .rewards import check_reward, split_pool
from .scoring import check_score

log = logging.getLogger(__name__)

FILENAME = "chain-outbox.jsonl"


class Outbox:
    """Pending, sent and failed rounds for one on-chain session; thread-safe."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self.session: dict[str, Any] | None = None
        self._pending: dict[int, dict[str, Any]] = {}
        self._failed: dict[int, tuple[dict[str, Any], str, bool]] = {}  # round -> (entry, error, retriable)
        self._known = RoundSet()
        self._entries: dict[int, dict[str, Any]] = {}  # every round queued, to resend to a new deployment
        self.epochs = 0  # "session" lines after the first: how often the ledger changed under this outbox
        self.sent = 0
        self.already = 0  # acks for rounds the chain had before the send (a crash or lost ack earlier)
        self._scores: Counter[int] = Counter()  # node -> summed score of the acknowledged rounds
        self._paid: Counter[int] = Counter()  # node -> base units the acknowledged rounds credited
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                self._replay()
            self._file = open(self.path, "ab")

    # -- the log -----------------------------------------------------------------------------------
    def _replay(self) -> None:
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):  # a torn last line: cut it so the next append starts clean
            keep = raw.rfind(b"\n") + 1
            log.warning("%s: dropping a torn last line (%d bytes)", self.path, len(raw) - keep)
            with open(self.path, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())
            raw = raw[:keep]
        for number, line in enumerate(raw.splitlines(), 1):
            try:
                self._apply(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s:%d: skipping an unreadable line (%s)", self.path, number, exc)

    def _apply(self, entry: dict[str, Any]) -> None:
        op = entry["op"]
        if op == "session":
            if self.session is not None:
                self._new_epoch()
            self.session = entry
        elif op == "round":
            r = int(entry["round"])
            if self._known.add(r):
                self._entries[r] = entry
                try:
                    check_round(entry)
                except ConfigError as exc:
                    log.error("round %d in %s holds a value the chain cannot take; parked: %s", r, self.path, exc)
                    self._failed[r] = (entry, f"invalid round in the outbox: {exc}", False)
                else:
                    self._pending[r] = entry
        elif op == "ack":
            r = int(entry["round"])
            done = self._pending.pop(r, None)
            if done is None and r in self._failed:
                done = self._failed.pop(r)[0]
            if done is not None:
                self.sent += 1
                self.already += bool(entry.get("already"))
                self._count(done, entry.get("paid"))
        elif op == "fail":
            r = int(entry["round"])
            if r in self._pending:
                self._failed[r] = (self._pending.pop(r), entry.get("error", ""), entry.get("retriable", True))
        elif op == "retry":
            r = int(entry["round"])
            if r in self._failed and self._failed[r][2]:
                self._pending[r] = self._failed.pop(r)[0]
        else:
            raise ValueError(f"unknown op {op!r}")

    def _new_epoch(self) -> None:
        """Every round pending again (invalid ones stay parked), counters from zero: a new ledger holds none."""
        invalid = {r: failed for r, failed in self._failed.items() if not failed[2]}
        self._pending = {r: e for r, e in sorted(self._entries.items()) if r not in invalid}
        self._failed = invalid
        self.sent = self.already = 0
        self._scores.clear()
        self._paid.clear()
        self.epochs += 1

    def _count(self, round_entry: dict[str, Any], paid: Mapping[str, int] | None) -> None:
        scores = _scores(round_entry)
        self._scores.update(scores)
        if paid is None:
            self._paid.update(split_pool(round_entry.get("reward") or 0, scores))
        else:
            self._paid.update({int(node): int(amount) for node, amount in paid.items()})

    def _write(self, entry: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(entry, separators=(",", ":")).encode("utf-8") + b"\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        self._apply(entry)

    # -- what the recorder calls -------------------------------------------------------------------
    def open_session(self, info: dict[str, Any]) -> dict[str, Any]:
        """Record which session this outbox feeds (first call only); returns the recorded one."""
        with self._lock:
            if self.session is None:
                self._write({"op": "session", **info})
            return self.session

    def new_epoch(self, info: dict[str, Any]) -> dict[str, Any]:
        """Feed a new session on another (or a reset) ledger: every round held is pending again for it.

        One fsynced line, so a crash leaves either the old epoch or the new one, never half of each.
        """
        if self.session is None:
            return self.open_session(info)
        with self._lock:
            self._write({"op": "session", **info, "previous": self.session["session_id"]})
            return self.session

    def put(self, round: int, contributions: list[dict[str, Any]], reward: int | None) -> bool:
        """Queue a round; False when this outbox has already seen it (a replayed round is recorded once).

        Raises :class:`~hypergpu_lab.errors.ConfigError` (and writes nothing) for a value the chain
        cannot take.
        """
        entry = {"op": "round", "round": int(round), "contributions": contributions, "reward": reward}
        check_round(entry)
        with self._lock:
            if round in self._known:
                return False
            self._write(entry)
            return True

    def next_pending(self) -> dict[str, Any] | None:
        """The lowest pending round, or None."""
        with self._lock:
            return self._pending[min(self._pending)] if self._pending else None

    def pending_rounds(self) -> list[int]:
        """The pending round numbers, lowest first."""
        with self._lock:
            return sorted(self._pending)

    def pending(self, round: int) -> dict[str, Any] | None:
        """The pending round's entry, or None when it is not pending."""
        with self._lock:
            return self._pending.get(round)

    def ack(self, round: int, *, tx: str | None, already: bool, paid: Mapping[int, int] | None = None) -> None:
        """The round is on the ledger; ``paid`` is node -> base units it credited (None: no reward)."""
        entry: dict[str, Any] = {"op": "ack", "round": int(round), "tx": tx, "already": already}
        if paid is not None:
            entry["paid"] = {str(node): int(amount) for node, amount in paid.items()}
        with self._lock:
            self._write(entry)

    def fail(self, round: int, error: str, *, retriable: bool = True) -> None:
        """Park a pending round with its reason; ``retriable=False``: :meth:`retry_failed` leaves it parked."""
        entry: dict[str, Any] = {"op": "fail", "round": int(round), "error": error}
        if not retriable:
            entry["retriable"] = False
        with self._lock:
            self._write(entry)

    def retry_failed(self) -> int:
        """Queue every parked round again (not the invalid ones: they would fail the same way); returns how many."""
        with self._lock:
            rounds = sorted(r for r, (_, _, retriable) in self._failed.items() if retriable)
            for r in rounds:
                self._write({"op": "retry", "round": r})
            return len(rounds)

    def held(self) -> int:
        """How many rounds this outbox holds (every epoch's: what a new session is sent)."""
        with self._lock:
            return len(self._entries)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"pending": len(self._pending), "sent": self.sent, "failed": len(self._failed)}

    def paid(self) -> dict[int, int]:
        """node -> token base units credited by the acknowledged rounds."""
        with self._lock:
            return dict(self._paid)

    def recorded_scores(self) -> dict[int, int]:
        """node -> summed score of the acknowledged rounds."""
        with self._lock:
            return dict(self._scores)

    def queued_rewards(self) -> dict[int, int]:
        """node -> base units the pending rounds will credit (the contract's split of each reward)."""
        with self._lock:
            out: Counter[int] = Counter()
            for entry in self._pending.values():
                out.update(split_pool(entry.get("reward") or 0, _scores(entry)))
            return dict(out)

    def failures(self) -> dict[int, str]:
        """Parked rounds and the error that parked them."""
        with self._lock:
            return {r: err for r, (_, err, _) in self._failed.items()}

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __repr__(self) -> str:
        c = self.counts()
        return f"Outbox({self.path or 'in memory'}, pending={c['pending']}, sent={c['sent']}, failed={c['failed']})"


def read_session(path: str | os.PathLike) -> dict[str, Any] | None:
    """The session an outbox file feeds now (its last "session" line), read without opening it for writing.

    None when the file does not exist or names no session. Front ends use it to find the deployment a
    resumed run recorded on (``contracts``) before they connect.
    """
    path = Path(path)
    if not path.is_file():
        return None
    session = None
    for line in path.read_bytes().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if isinstance(entry, dict) and entry.get("op") == "session":
            session = entry
    return session


def check_round(entry: Mapping[str, Any]) -> None:
    """ConfigError unless a "round" line holds only values the chain can take."""
    r = entry.get("round")
    check_reward(entry.get("reward"), f"round {r}: reward")
    contributions = entry.get("contributions")
    if not isinstance(contributions, list):
        raise ConfigError(f"round {r}: contributions", contributions, "a list of {node, score, update_hash}")
    for c in contributions:
        node = c.get("node") if isinstance(c, Mapping) else None
        if isinstance(node, bool) or not isinstance(node, int) or node < 0:
            raise ConfigError(f"round {r}: node", node, "an integer node index >= 0")
        check_score(c.get("score"), f"round {r}: score of node {node}")
        h = c.get("update_hash")
        if not (isinstance(h, str) and len(h) == 66 and h.startswith("0x") and _is_hex(h[2:])):
            raise ConfigError(f"round {r}: update_hash of node {node}", h, "0x + 64 hex digits")


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _scores(round_entry: dict[str, Any]) -> dict[int, int]:
    """node -> score of a "round" line (a node appears once per round)."""
    return {int(c["node"]): int(c["score"]) for c in round_entry["contributions"]}


class RoundSet:
    """Round numbers as sorted disjoint ranges: a long run costs a few ranges, not an entry per round."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []  # inclusive

    def __contains__(self, r: int) -> bool:
        i = bisect.bisect_right(self._starts, r) - 1
        return i >= 0 and r <= self._ends[i]

    def add(self, r: int) -> bool:
        """Add ``r``; False when it was there already."""
        if r in self:
            return False
        i = bisect.bisect_right(self._starts, r)  # ranges [0, i) start at or before r
        joins_left = i > 0 and self._ends[i - 1] == r - 1
        joins_right = i < len(self._starts) and self._starts[i] == r + 1
        if joins_left and joins_right:
            self._ends[i - 1] = self._ends.pop(i)
            self._starts.pop(i)
        elif joins_left:
            self._ends[i - 1] = r
        elif joins_right:
            self._starts[i] = r
        else:
            self._starts.insert(i, r)
            self._ends.insert(i, r)
        return True

    def __len__(self) -> int:
        return sum(e - s + 1 for s, e in zip(self._starts, self._ends))

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends))
