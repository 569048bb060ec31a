#!/usr/bin/env bash
# Recompiles hypergpu_lab/chain/contracts (and the test-only contracts in tests/chain/contracts) with
# the pinned solc-js and rewrites the committed artifacts. `--check` only compares (exit 1 on a
# difference). Offline: the compiler is the npm package installed by scripts/setup_chain.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup_chain.sh" --require
exec node "$root/contracts-build/compile.js" "$@"
