"""Constants and helpers shared by the chain tests (fixtures live in conftest.py).

A module with its own name, so ``from chain_support import ...`` cannot pick up another conftest.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEST_ARTIFACTS = Path(__file__).with_name("artifacts")
CONTRACTS_BUILD = REPO / "contracts-build"
GANACHE = CONTRACTS_BUILD / "node_modules" / ".bin" / "ganache"
REWARD = 10**18  # one token per round


def flaky_provider() -> Any:
    """An EthereumTesterProvider that raises ConnectionError while ``down`` and sleeps ``delay`` s per request."""
    from web3 import EthereumTesterProvider

    class FlakyProvider(EthereumTesterProvider):
        down = False
        delay = 0.0
        failures = 0

        def make_request(self, method: Any, params: Any) -> Any:
            if self.delay:
                time.sleep(self.delay)
            if self.down:
                self.failures += 1
                raise ConnectionError(f"chain unreachable ({method})")
            return super().make_request(method, params)

    return FlakyProvider()
