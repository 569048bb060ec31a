#!/usr/bin/env bash
# The test command: sets up the environment on first use, then runs the whole suite.
source "$(dirname "$0")/scripts/env.sh"
exec python -m pytest "$@"
