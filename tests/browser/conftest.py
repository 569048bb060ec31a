"""Browser tests drive real headless Chromium against a local Voila server (~60 s each)."""
from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Registered here, beside the tests that use it, so --strict-markers accepts it.
    config.addinivalue_line("markers", "browser: drives headless Chromium against a local server (slow)")
