# Source me: creates (once) and activates the project's virtual environment.
#
# The venv lives OUTSIDE the checkout, keyed by a hash of the dependency files, so a
# fresh clone (CI) reuses the 6 GB torch install instead of reinstalling it. Override
# the location with HYPERGPU_LAB_VENV_ROOT. torch/torchvision are pinned to the builds
# this project is tested with; pip takes them from the local wheel cache when present.
set -euo pipefail
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_py="${PYTHON:-python3}"
_key="$(cat "$_repo/pyproject.toml" "$_repo/environment.yml" "$_repo/scripts/env.sh" | sha256sum | cut -c1-16)"
_root="${HYPERGPU_LAB_VENV_ROOT:-$HOME/.cache/hypergpu-lab}"
VENV="$_root/venv-$_key"
if [ ! -f "$VENV/.complete" ]; then
    echo "setting up $VENV (first run: installs torch, a few minutes)" >&2
    rm -rf "$VENV"
    mkdir -p "$_root"
    "$_py" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
    "$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
    "$VENV/bin/python" -m pip install -q -e "$_repo[dev]"
    touch "$VENV/.complete"
fi
# Point the editable install at THIS checkout (a fresh clone may live elsewhere); no deps, seconds.
if ! _out="$("$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$_repo" 2>&1)"; then
    echo "$_out" >&2
    echo "env.sh: the editable install of $_repo failed (output above)" >&2
    exit 1
fi
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
cd "$_repo"
