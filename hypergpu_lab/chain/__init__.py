"""The chain side of the lab: contracts, ChainClient, contribution scoring and the durable recorder.

Only this package imports web3 (the core never does), and only when a name that needs it is used:
``hypergpu_lab.chain.scoring`` works without web3 installed. Typical use::

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
    "Contribution": "client",
    "Deployment": "client",
    "Funding": "client",
    "RecordedRound": "client",
    "Session": "client",
    "TxResult": "client",
    "TOKEN_UNIT": "client",
    "new_session_id": "client",
    "NodeAccounts": "accounts",
    "Signer": "accounts",
    "ChainError": "errors",
    "ContractRevert": "errors",
    "Outbox": "outbox",
    "ChainRecorder": "recorder",
    "RecorderStatus": "recorder",
    "contributions": "recorder",
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
