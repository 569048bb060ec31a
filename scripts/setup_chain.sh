#!/usr/bin/env bash
# Installs the npm side of hypergpu_lab.chain into contracts-build/node_modules, exactly as locked:
# solc-js (compiling the contracts), @openzeppelin/contracts (their imports) and ganache (the real
# JSON-RPC node the integration test starts). Idempotent: does nothing when the installed tree
# already matches package-lock.json. Without node/npm it says so and exits 0 (the chain tests that
# need them skip); pass --require to make that an error instead (CI that must run them).
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../contracts-build" && pwd)"
require=0
[ "${1:-}" = "--require" ] && require=1

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup_chain: node/npm not found; skipping (contract recompilation and the ganache test will skip)" >&2
    exit $(( require ? 1 : 0 ))
fi

stamp="$dir/node_modules/.hypergpu-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1) node-$(node --version)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "setup_chain: contracts-build/node_modules is up to date" >&2
    exit 0
fi

echo "setup_chain: npm ci in contracts-build (solc-js, OpenZeppelin, ganache)" >&2
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$stamp"
