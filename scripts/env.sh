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
# Import the package from THIS checkout. PYTHONPATH is searched before the venv's editable-install
# hook, so two checkouts sharing one venv (a fresh CI clone, a second worktree) each import their
# own code; nothing is re-installed per checkout.
export PYTHONPATH="$_repo${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
cd "$_repo"
