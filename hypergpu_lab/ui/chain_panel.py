"""The blockchain panel: accounts (addresses only), contributions, reward balances, claims, the log, the outbox.

Shown only when the coordinator records on a chain (``coord.recorder``); otherwise a short note says
how to attach one. The recorder's outbox status is local and cheap, so it follows every update;
balances and the transaction log are chain calls, read on Refresh, after a claim and when a run ends.
No private key is ever read: the panel asks the ledger for addresses and the recorder for its status.

The panel reads the chain only through :class:`~hypergpu_lab.chain.ledger.Ledger` (``recorder.ledger``),
so any ledger shows here; it imports ``ledger`` and ``rewards`` only, never web3.
"""

from __future__ import annotations

import html
import logging
from collections import deque
from typing import Any

import ipywidgets as widgets

from ..chain.ledger import Ledger
from ..chain.rewards import format_tokens
from ..events import RoundReport
from .common import error_html, guarded, note_html, table_html
from .driver import RunDriver

log = logging.getLogger(__name__)

HOW_TO = (
    "<i>No chain attached to this run.</i> Record contributions and pay rewards on an in-process "
    "Ethereum chain with<br><code>from hypergpu_lab import ChainClient<br>"
    "coord = Coordinator(..., chain=ChainClient.embedded(), chain_options={'reward_per_round': 10**18})"
    "</code><br>or <code>ChainClient(rpc_url, private_key=..., accounts=NodeAccounts(seed=...))</code> "
    "for a real node, then open the dashboard again."
)


def short(value: Any) -> str:
    """``0x1234…abcd``: an address or hash short enough for a table cell (the full one is in chain.json)."""
    text = str(value)
    return f"{text[:6]}\u2026{text[-4:]}" if text.startswith("0x") and len(text) > 14 else text


class ChainPanel(widgets.VBox):
    """Accounts, rewards, claims, the transaction log and the outbox of the coordinator's chain recorder."""

    def __init__(self, runner: RunDriver, *, max_accounts: int = 50, log_rows: int = 30) -> None:
        self.runner, self.max_accounts, self.log_rows = runner, max_accounts, log_rows
        self.note = widgets.HTML()
        self.chain_info = widgets.HTML()
        self.outbox = widgets.HTML()
        self.outbox.add_class("hgl-outbox")
        self.accounts = widgets.HTML()
        self.tx_log = widgets.HTML()
        self.tx_log.add_class("hgl-tx-log")
        self.message = widgets.HTML()
        self.node = widgets.Dropdown(
            description="node", layout=widgets.Layout(width="180px"), style={"description_width": "40px"}
        )
        self.claim_button = widgets.Button(description="Claim rewards", button_style="success")
        self.refresh_button = widgets.Button(description="Refresh")
        self.refresh_button.add_class("hgl-chain-refresh")
        self.retry_button = widgets.Button(description="Retry failed")
        self.claim_button.on_click(guarded(self.message, "claim")(self._on_claim))
        self.refresh_button.on_click(guarded(self.message, "refresh")(lambda _: self.refresh()))
        self.retry_button.on_click(guarded(self.message, "retry")(self._on_retry))
        self.claims: deque[dict[str, Any]] = deque(maxlen=200)
        self.body = widgets.VBox(
            [
                self.chain_info,
                widgets.HTML("<b>Outbox</b>"),
                self.outbox,
                widgets.HBox([self.refresh_button, self.retry_button]),
                widgets.HTML("<b>Accounts and rewards</b>"),
                self.accounts,
                widgets.HBox([self.node, self.claim_button]),
                self.message,
                widgets.HTML("<b>Transactions</b>"),
                self.tx_log,
            ]
        )
        self.snapshot: dict[str, Any] | None = None
        if self.remote:  # a run in its own process: render what it writes to chain.json, no chain calls here
            runner.on_chain(self._show_snapshot)
            for button in (self.claim_button, self.retry_button, self.node):
                button.layout.display = "none"
        runner.on_reports(self.update)
        runner.on_status(self._on_status)
        runner.on_coordinator(self.reset)
        super().__init__([self.note, self.body])
        self._was_active = False
        self.reset(runner.coord)

    @property
    def recorder(self) -> Any:
        return getattr(self.runner.coord, "recorder", None)

    @property
    def ledger(self) -> Ledger | None:
        rec = self.recorder
        return None if rec is None else rec.ledger

    def _tokens(self, amount: int | None) -> str:
        """Base units as whole tokens, with the ledger's token decimals."""
        ledger = self.ledger
        return format_tokens(amount, ledger.token_decimals if ledger is not None else 18)

    @property
    def remote(self) -> bool:
        return hasattr(self.runner, "on_chain")

    def reset(self, coord: Any) -> None:
        self.claims.clear()
        if self.remote:
            self.snapshot = None
            if not getattr(self.runner, "chain", False):
                self.note.value, self.body.layout.display = HOW_TO, "none"
                return
            self.note.value, self.body.layout.display = "", None
            self.chain_info.value = note_html(
                "The run records each round on an in-process chain; this tab follows it on its own."
                if self.runner.folder is not None
                else "No run yet: press Start, and the chain's records appear here as the run sends them."
            )
            self.outbox.value = self.accounts.value = ""
            self.tx_log.value = note_html("no transactions yet")
            return
        if self.recorder is None:
            self.note.value = HOW_TO
            self.body.layout.display = "none"
            return
        self.note.value = ""
        self.body.layout.display = None
        ids = sorted(coord.pool.nodes)[: self.max_accounts]
        with self.node.hold_sync():
            self.node.options = [(f"node {i}", i) for i in ids]
            self.node.value = ids[0] if ids else None
        info = self.recorder.ledger.describe()
        contracts = ", ".join(f"{k} {v}" for k, v in info.contracts.items())
        software = f" ({html.escape(info.software)})" if info.software else ""
        self.chain_info.value = (
            f"chain <b>{html.escape(str(info.endpoint))}</b> (id {info.chain_id}), "
            f"coordinator {html.escape(info.coordinator)}<br>session {self.recorder.session_id}<br>"
            f"contracts: {html.escape(contracts)}{software}"
        )
        self.refresh()

    def update(self, batch: list[RoundReport]) -> None:
        if self.remote:
            return
        if self.recorder is not None:
            self._show_outbox()

    def _on_status(self, runner: RunDriver) -> None:
        active = runner.active
        if self._was_active and not active and self.recorder is not None and not self.remote:
            self.refresh()  # the run ended: show the final balances
        self._was_active = active

    def _show_outbox(self) -> None:
        s = self.recorder.status()
        line = (
            f"pending <b>{s.pending}</b> &middot; sent <b>{s.sent}</b> (already on chain {s.already}) &middot; "
            f"failed <b>{s.failed}</b> &middot; sender {'running' if s.running else 'stopped'}"
            + (f" &middot; last sent round {s.last_sent_round}" if s.last_sent_round is not None else "")
        )
        if s.last_error:
            line += "<br>" + error_html(f"retrying (attempt {s.attempts}): {s.last_error}")
        failures = self.recorder.failures()
        if failures:
            line += "<br>" + error_html(
                "parked: " + "; ".join(f"round {r}: {e}" for r, e in sorted(failures.items())[:5])
            )
        self.outbox.value = line

    def _show_snapshot(self, snap: dict[str, Any]) -> None:
        """Render the run's chain.json: tokens (not base units), short addresses named by node."""
        self.snapshot = snap
        decimals = int(snap.get("decimals", 18))
        contracts = ", ".join(f"{k} {short(v)}" for k, v in (snap.get("contracts") or {}).items())
        reward = snap.get("reward_per_round")
        self.chain_info.value = (
            f"chain <b>{html.escape(str(snap.get('endpoint')))}</b> (id {snap.get('chain_id')}), "
            f"coordinator {short(snap.get('coordinator', ''))}, session {short(snap.get('session', ''))}<br>"
            f"contracts: {html.escape(contracts)}<br>reward per round: "
            + (f"{format_tokens(reward, decimals)} tokens" if reward is not None else "none (scores only)")
        )
        st = snap.get("status") or {}
        line = (
            f"pending <b>{st.get('pending', 0)}</b> rounds &middot; sent <b>{st.get('sent', 0)}</b> &middot; "
            f"failed <b>{st.get('failed', 0)}</b>"
            + (f" &middot; last sent round {st['last_sent_round']}" if st.get("last_sent_round") is not None else "")
        )
        if st.get("last_error"):
            line += "<br>" + error_html(f"retrying (attempt {st.get('attempts')}): {st['last_error']}")
        self.outbox.value = line
        rows = [
            (
                f"node {a['node']}",
                short(a["address"]),
                a["score"],
                format_tokens(a["claimable"], decimals),
                format_tokens(a["claimed"], decimals),
                format_tokens(a["balance"], decimals),
            )
            for a in snap.get("accounts", ())
        ]
        self.accounts.value = table_html(
            ("node", "address", "session score", "claimable (tokens)", "claimed (tokens)", "balance (tokens)"),
            rows,
            css_class="hgl-accounts",
        )
        history = snap.get("history") or []
        self.tx_log.value = (
            table_html(
                ("what", "round", "block", "tx", "detail"),
                [
                    ("record round", h["round"], h["block"], short(h["tx"]), f"{h['nodes']} nodes, score {h['score']}")
                    for h in history[::-1]
                ],
            )
            if history
            else note_html("no transactions yet")
        )

    def refresh(self) -> None:
        """Read balances, scores and the transaction log from the chain."""
        if self.remote:
            snap = getattr(self.runner, "chain_snapshot", None)
            if snap:
                self._show_snapshot(snap)
            return
        rec = self.recorder
        if rec is None:
            return
        self._show_outbox()
        ledger, sid = rec.ledger, rec.session_id
        rows = []
        ids = sorted(self.runner.coord.pool.nodes)
        for n in ids[: self.max_accounts]:
            rows.append(
                (
                    n,
                    ledger.address_of(n),
                    ledger.total_score(sid, n),
                    self._tokens(ledger.claimable(n)),
                    self._tokens(ledger.claimed(n)),
                    self._tokens(ledger.token_balance(n)),
                )
            )
        more = (
            f"<br>{note_html(f'first {self.max_accounts} of {len(ids)} nodes')}" if len(ids) > self.max_accounts else ""
        )
        self.accounts.value = (
            table_html(
                ("node", "address", "session score", "claimable", "claimed", "token balance"),
                rows,
                css_class="hgl-accounts",
            )
            + more
        )
        recorded = [
            ("record round", r.round, r.block, r.tx_hash, f"{len(r.contributions)} nodes, score {r.total_score}")
            for r in ledger.history(sid)[-self.log_rows :]
        ]
        claims = [
            ("claim", "-", "-", "-", f"node {c['node']} claimed {self._tokens(c['amount'])}") for c in self.claims
        ]
        self.tx_log.value = (
            table_html(("what", "round", "block", "tx", "detail"), (recorded + claims)[::-1])
            if recorded or claims
            else note_html("no transactions yet")
        )

    def _on_claim(self, _: Any = None) -> None:
        rec, node = self.recorder, self.node.value
        if rec is None or node is None:
            return
        amount = rec.ledger.claim(node)
        self.claims.append({"node": node, "amount": amount})
        self.message.value = note_html(f"node {node} claimed {self._tokens(amount)} tokens")
        self.refresh()

    def _on_retry(self, _: Any = None) -> None:
        n = self.recorder.retry_failed() if self.recorder is not None else 0
        self.message.value = note_html(f"{n} parked rounds queued again")
