#!/usr/bin/env bash
# The run command: sets up the environment on first use, then serves the monitoring dashboard
# (Voila on http://127.0.0.1:8866/, embedded defaults: digits, simulated nodes, in-process chain).
# For a headless training run with a result table instead: ./run.sh --headless
source "$(dirname "$0")/scripts/env.sh"
if [ "${1:-}" = "--headless" ]; then
    shift
    exec hypergpu-lab demo "$@"
fi
exec hypergpu-lab dashboard "$@"
