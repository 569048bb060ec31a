"""A different chain is one new file: an in-memory Ledger runs a real Coordinator through the recorder.

``MemoryLedger`` below is the whole cost of a new chain: it implements the Ledger Protocol (dicts
instead of contracts, keeping the Protocol's contract: rounds recorded and funded once, integer
splits with the dust left to the funder, the same revert names) and nothing else in the package
changes. It imports no web3, and neither do the recorder and the ledger module it talks to.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.chain.ledger import (
    ZERO32,
    ContractRevert,
    Contribution,
    Funding,
    Ledger,
    LedgerInfo,
    RecordedRound,
    Session,
    TxResult,
    hex32,
    new_session_id,
)
from hypergpu_lab.chain.recorder import RecordsRounds
from hypergpu_lab.chain.rewards import dust, split_pool

CHAIN = Path(__file__).resolve().parents[2] / "hypergpu_lab" / "chain"


class MemoryLedger(RecordsRounds):
    """A dict-backed Ledger: what a new chain implements, and nothing more."""

    chain_id = 0
    tracker_address = "memory:tracker"
    coordinator = "memory:coordinator"
    token_decimals = 6

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.sessions: dict[str, Session] = {}
        self.rounds: dict[tuple[str, int], RecordedRound] = {}
        self.funded: set[tuple[str, int]] = set()
        self.totals: Counter[tuple[str, str]] = Counter()
        self.credits: Counter[str] = Counter()
        self.paid: Counter[str] = Counter()
        self.block = 0
        self.record_calls = 0

    def describe(self) -> LedgerInfo:
        return LedgerInfo("memory", self.chain_id, self.coordinator, {"tracker": self.tracker_address})

    def address_of(self, node: int | str) -> str:
        return node if isinstance(node, str) else f"memory:node-{node:04d}"

    def _tx(self, what: str) -> TxResult:
        self.block += 1
        return TxResult("0x" + hashlib.sha256(f"{what}{self.block}".encode()).hexdigest(), self.block, 0)

    def new_session_id(self) -> str:
        return new_session_id()

    def start_session(
        self, session_id: str, *, model_hash: str = ZERO32, dataset_id: str = "", config_hash: str = ZERO32
    ) -> Session:
        with self._lock:
            sid = hex32(session_id)
            if sid in self.sessions:
                raise ContractRevert("SessionExists", {"sessionId": sid})
            self.sessions[sid] = Session(sid, self.coordinator, "active", model_hash, dataset_id, config_hash, 0, 0)
            return self.sessions[sid]

    def session(self, session_id: str) -> Session | None:
        return self.sessions.get(hex32(session_id))

    def complete_session(self, session_id: str) -> Session:
        with self._lock:
            s = self.session(session_id)
            if s is None:
                raise ContractRevert("UnknownSession", {"sessionId": session_id})
            if s.status != "active":
                raise ContractRevert("SessionNotActive", {"sessionId": session_id})
            self.sessions[s.session_id] = dataclasses.replace(s, status="completed")
            return self.sessions[s.session_id]

    def record_round(self, session_id: str, round: int, contributions: Iterable[Contribution]) -> TxResult:
        with self._lock:
            self.record_calls += 1
            sid, rows = hex32(session_id), tuple(sorted(contributions, key=lambda c: c.address))
            s = self.sessions.get(sid)
            if s is None or s.status != "active":
                raise ContractRevert("SessionNotActive", {"sessionId": sid})
            if (sid, round) in self.rounds:
                raise ContractRevert("RoundAlreadyRecorded", {"sessionId": sid, "round": round})
            if not rows:
                raise ContractRevert("NoContributions")
            if len({c.address for c in rows}) != len(rows):
                raise ContractRevert("NodesNotAscending")
            tx = self._tx("record")
            self.rounds[sid, round] = RecordedRound(sid, round, rows, sum(c.score for c in rows), tx.block, tx.tx_hash)
            for c in rows:
                self.totals[sid, c.address] += c.score
            return tx

    def is_recorded(self, session_id: str, round: int) -> bool:
        return (hex32(session_id), round) in self.rounds

    def rounds_recorded(self, session_id: str) -> int:
        return sum(1 for sid, _ in self.rounds if sid == hex32(session_id))

    def total_score(self, session_id: str, node: int | str) -> int:
        return self.totals[hex32(session_id), self.address_of(node)]

    def history(self, session_id: str) -> list[RecordedRound]:
        return sorted((r for (sid, _), r in self.rounds.items() if sid == hex32(session_id)), key=lambda r: r.block)

    def fund_round(self, session_id: str, round: int, pool: int) -> Funding:
        with self._lock:
            sid = hex32(session_id)
            recorded = self.rounds.get((sid, round))
            if recorded is None:
                raise ContractRevert("RoundNotRecorded", {"sessionId": sid, "round": round})
            if (sid, round) in self.funded:
                raise ContractRevert("RoundAlreadyFunded", {"sessionId": sid, "round": round})
            if pool == 0:
                raise ContractRevert("ZeroPool")
            if recorded.total_score == 0:
                raise ContractRevert("NothingToDistribute", {"sessionId": sid, "round": round})
            shares = split_pool(pool, {c.address: c.score for c in recorded.contributions})
            self.funded.add((sid, round))
            self.credits.update(shares)
            return Funding(sid, round, pool, sum(shares.values()), shares, self._tx("fund").tx_hash)

    def is_funded(self, session_id: str, round: int) -> bool:
        return (hex32(session_id), round) in self.funded

    def claimable(self, node: int | str) -> int:
        address = self.address_of(node)
        return self.credits[address] - self.paid[address]

    def claimed(self, node: int | str) -> int:
        return self.paid[self.address_of(node)]

    def claim(self, node: int) -> int:
        with self._lock:
            amount = self.claimable(node)
            if amount == 0:
                raise ContractRevert("NothingToClaim", {"node": self.address_of(node)})
            self.paid[self.address_of(node)] += amount
            return amount

    def token_balance(self, node: int | str) -> int:
        return self.claimed(node)


POOL = 10**6 + 7  # one token of 6 decimals, plus base units that cannot split evenly


def test_a_memory_ledger_records_a_real_coordinators_rounds_once_and_pays_the_integer_split() -> None:
    # Prepare
    ledger = MemoryLedger()
    assert isinstance(ledger, Ledger)
    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)
    coord = Coordinator(
        pool=pool, model="mlp", chain=ledger, chain_options={"background": False, "reward_per_round": POOL}
    )
    reports: list = []
    coord.bus.subscribe(reports.append)

    # Execute
    coord.run(rounds=2, progress=False)
    status = coord.recorder.flush()
    coord.recorder.retry_failed()  # nothing parked: a no-op that must not resend
    coord.recorder.flush()

    # Assert: both rounds delivered, once each
    sid = coord.recorder.session_id
    assert status.sent == 2 and status.pending == 0 and status.failed == 0
    assert [r.round for r in ledger.history(sid)] == [r.round for r in reports]
    assert ledger.record_calls == 2 and ledger.rounds_recorded(sid) == 2
    assert ledger.session(sid).coordinator == ledger.coordinator
    # what the recorder says it paid is what the ledger credited, to the base unit
    credited = {n: ledger.claimable(n) for n in range(4) if ledger.claimable(n)}
    assert coord.recorder.paid_by_node() == credited
    for recorded in ledger.history(sid):
        shares = split_pool(POOL, {c.address: c.score for c in recorded.contributions})
        assert 0 <= dust(POOL, shares) < len(recorded.contributions)
    assert coord.recorder.scores_by_node() == {n: ledger.total_score(sid, n) for n in range(4)}


def test_the_memory_ledger_keeps_the_contracts_once_only_rules() -> None:
    ledger = MemoryLedger()
    sid = ledger.start_session("0x" + "ab" * 32).session_id
    rows = [Contribution(ledger.address_of(0), 3), Contribution(ledger.address_of(1), 0)]
    ledger.record_round(sid, 1, rows)
    with pytest.raises(ContractRevert) as again:
        ledger.record_round(sid, 1, rows)
    assert again.value.name == "RoundAlreadyRecorded"
    funding = ledger.fund_round(sid, 1, 10)
    assert funding.shares == {ledger.address_of(0): 10} and funding.dust == 0  # a zero share is no credit
    with pytest.raises(ContractRevert, match="RoundAlreadyFunded"):
        ledger.fund_round(sid, 1, 10)
    assert ledger.claim(0) == 10 and ledger.claimable(0) == 0
    with pytest.raises(ContractRevert, match="NothingToClaim"):
        ledger.claim(0)


def test_split_pool_floors_each_share_skips_zero_shares_and_leaves_the_dust() -> None:
    assert split_pool(10, {"a": 1, "b": 1, "c": 1}) == {"a": 3, "b": 3, "c": 3}
    assert dust(10, split_pool(10, {"a": 1, "b": 1, "c": 1})) == 1
    assert split_pool(5, {"a": 1, "b": 100}) == {"b": 4}  # a's floor is 0: no credit
    assert split_pool(0, {"a": 1}) == {} and split_pool(7, {"a": 0}) == {}
    big = 2**255  # uint256-sized: Math.mulDiv is exact, so is Python's int
    assert split_pool(big, {"a": 2**200, "b": 2**200}) == {"a": big // 2, "b": big // 2}
    with pytest.raises(ValueError):
        split_pool(-1, {"a": 1})


def test_split_pool_is_what_the_contract_credits(request: pytest.FixtureRequest) -> None:
    pytest.importorskip("web3")
    from hypergpu_lab.chain import ChainClient

    chain = request.getfixturevalue("chain")  # the embedded chain, rewound afterwards

    assert isinstance(chain, ChainClient) and isinstance(chain, Ledger)
    sid = chain.new_session_id()
    chain.start_session(sid)
    scores = {chain.address_of(n): s for n, s in enumerate((1, 2, 3_000_000, 7, 0))}
    chain.record_round(sid, 1, [Contribution(a, s) for a, s in scores.items()])
    odd_pool = 10**18 + 12_345
    funding = chain.fund_round(sid, 1, odd_pool)
    assert funding.shares == split_pool(odd_pool, scores)
    assert funding.dust == dust(odd_pool, funding.shares)
    assert chain.token_decimals == 18 and chain.describe().contracts["tracker"] == chain.tracker_address


def test_ledger_and_recorder_import_no_web3_and_not_the_client() -> None:
    code = (
        "import sys\n"
        "import hypergpu_lab.chain.ledger, hypergpu_lab.chain.recorder, hypergpu_lab.chain.rewards\n"
        "import hypergpu_lab.ui.chain_panel, hypergpu_lab.ui.charts\n"
        "bad = [m for m in ('web3', 'eth_abi', 'eth_utils', 'hypergpu_lab.chain.client') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    pytest.importorskip("ipywidgets")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# Each chain module may import only these siblings: the direction is client -> recorder -> ledger.
ALLOWED = {
    "ledger": set(),
    "rewards": set(),
    "scoring": set(),
    "outbox": {"ledger", "rewards", "scoring"},
    "recorder": {"ledger", "outbox", "rewards", "scoring"},
    "errors": {"ledger"},
    "accounts": set(),
    "compiled": set(),
    "redact": set(),
    "client": {"ledger", "recorder", "errors", "accounts", "compiled", "redact"},
}


def _chain_imports(module: str) -> set[str]:
    tree = ast.parse((CHAIN / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found.add((node.module or "").split(".")[0])
            elif node.module and node.module.startswith("hypergpu_lab.chain."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("hypergpu_lab.chain.")}
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_chain_modules_import_downwards_only(module: str) -> None:
    assert _chain_imports(module) <= ALLOWED[module]
