"""The chain side of the lab: contracts, ChainClient, contribution scoring and the durable recorder.

Only this package imports web3 (the core never does), and only when a name that needs it is used:
``scoring``, ``rewards``, ``ledger``, ``outbox`` and ``recorder`` work without web3 installed.

Layers, each importing only those below it: ``ledger`` (the :class:`Ledger` Protocol and its
values; nothing from this package) <- ``rewards``, ``scoring``, ``outbox`` <- ``recorder`` <-
``client`` (web3; implements Ledger) <- this module. A different chain is one new module
implementing :class:`Ledger`. Typical use::

    from hypergpu_lab.chain import ChainClient
    chain = ChainClient.embedded()                  # in-process py-evm, contracts deployed
    recorder = chain.attach(coord, reward_per_round=10**18)
    coord.run(rounds=3)
    recorder.flush()
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ChainClient": "client",
    "Deployment": "client",
    "TOKEN_UNIT": "client",
    "Ledger": "ledger",
    "LedgerInfo": "ledger",
    "Contribution": "ledger",
    "Funding": "ledger",
    "RecordedRound": "ledger",
    "Session": "ledger",
    "TxResult": "ledger",
    "new_session_id": "ledger",
    "ChainError": "ledger",
    "ContractRevert": "ledger",
    "NodeAccounts": "accounts",
    "Signer": "accounts",
    "Outbox": "outbox",
    "ChainRecorder": "recorder",
    "RecorderStatus": "recorder",
    "RecordsRounds": "recorder",
    "attach_recorder": "recorder",
    "contributions": "recorder",
    "split_pool": "rewards",
    "SCORE_SCALE": "scoring",
    "round_scores": "scoring",
    "score": "scoring",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
