"""Two checkouts sharing one venv each run their own code (issue 17, "install hygiene").

``scripts/env.sh`` used to re-install the package in editable mode from whichever checkout sourced
it last, so one clone's tests could run another clone's code. It now puts the sourcing checkout
first on PYTHONPATH and re-installs nothing. The oracle: in two clones side by side, sourced in
interleaved order, ``hypergpu_lab`` resolves to each clone's own files, and the venv's install is
left as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _clone(root: Path, name: str) -> Path:
    """The files env.sh reads (its venv key) and the package: enough to be a checkout."""
    clone = root / name
    (clone / "scripts").mkdir(parents=True)
    for rel in ("pyproject.toml", "environment.yml", "scripts/env.sh"):
        shutil.copy2(REPO / rel, clone / rel)
    shutil.copytree(REPO / "hypergpu_lab", clone / "hypergpu_lab", ignore=shutil.ignore_patterns("__pycache__"))
    return clone


def _resolve(clone: Path) -> str:
    """Source the clone's env.sh in a clean shell and ask Python where hypergpu_lab comes from."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    script = (
        ". scripts/env.sh >/dev/null 2>&1; "
        "python -c \"import importlib.util as u; print(u.find_spec('hypergpu_lab').origin)\""
    )
    out = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_two_clones_side_by_side_each_import_their_own_code(tmp_path: Path) -> None:
    # Prepare: same dependency files, so both share this checkout's venv (nothing is installed)
    a, b = _clone(tmp_path, "a"), _clone(tmp_path, "b")

    # Execute: interleaved, as two engineers' shells would be
    first_a = _resolve(a)
    first_b = _resolve(b)
    again_a = _resolve(a)

    # Assert
    assert first_a == again_a == str(a / "hypergpu_lab" / "__init__.py")
    assert first_b == str(b / "hypergpu_lab" / "__init__.py")
