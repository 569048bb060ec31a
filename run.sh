#!/usr/bin/env bash
# The run command: sets up the environment on first use, then runs the main job
# (a headless demo training on embedded defaults; no server to start by hand).
source "$(dirname "$0")/scripts/env.sh"
exec hypergpu-lab demo "$@"
