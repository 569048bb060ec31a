#!/usr/bin/env bash
# The test command: sets up the environment on first use, then runs the whole suite.
source "$(dirname "$0")/scripts/env.sh"
bash scripts/setup_chain.sh     # npm side of the chain tests: solc-js, OpenZeppelin, ganache (locked)
bash scripts/setup_browser.sh   # Debian's Chromium for the dashboard's real-browser test
# The unit/integration suite plus every notebook under nbval (cells must run; checked cells assert).
exec python -m pytest tests notebooks --nbval-lax "$@"
