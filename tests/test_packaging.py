"""Tests that the packaging files agree: pyproject, environment.yml, README commands, entry points."""

from __future__ import annotations

import importlib
import os
import re
import shlex
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _normalise(requirement: str) -> str:
    """One spelling per requirement: canonical name, sorted extras and specifiers, marker."""
    req = Requirement(requirement)
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    specs = ",".join(sorted(str(s) for s in req.specifier))
    marker = f"; {req.marker}" if req.marker else ""
    return f"{canonicalize_name(req.name)}{extras}{specs}{marker}"


def _pip_list() -> list[str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    return [str(item) for item in pip_sections[0]]


def _fenced_commands(markdown: str) -> list[str]:
    """Every command line in shell fences (```bash, ```sh, ```console or bare ```), as the shell reads it:
    a leading ``$`` prompt and a trailing ``# comment`` removed, words re-joined by single spaces."""
    commands, language = [], None
    for line in markdown.splitlines():
        fence = re.match(r"^\s*```\s*(\S*)", line)
        if fence:
            language = None if language is not None else fence.group(1).lower()
            continue
        if language in ("", "bash", "sh", "shell", "console") and line.strip():
            words = shlex.split(re.sub(r"^\s*\$\s+", "", line), comments=True)
            if words:
                commands.append(" ".join(words))
    return commands


def _ci_command() -> str:
    """The command `.ci/run` finally executes (its `exec` line)."""
    execs = [
        line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip().startswith("exec ")
    ]
    assert len(execs) == 1, "expected one exec line in .ci/run"
    return " ".join(shlex.split(execs[0])[1:])


def test_environment_pip_list_equals_pyproject_dependencies_and_dev_extra() -> None:
    # Prepare
    project = _pyproject()["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    pip = _pip_list()

    # Execute
    editable = [item for item in pip if item.startswith("-e")]
    requirements = [item for item in pip if not item.startswith("-e")]

    # Assert
    assert editable == ["-e ."]
    assert len(requirements) == len(set(requirements)), "duplicate pip entries"
    assert {_normalise(r) for r in requirements} == {_normalise(r) for r in declared}


def test_environment_python_satisfies_requires_python() -> None:
    # Prepare
    from packaging.specifiers import SpecifierSet

    env = yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]

    # Assert
    assert len(pythons) == 1
    version = pythons[0].split("=", 1)[1].lstrip("=")
    assert version in SpecifierSet(_pyproject()["project"]["requires-python"])


def test_ci_runs_the_test_script() -> None:
    # Execute
    command = _ci_command()

    # Assert
    assert command == "./test.sh"
    for script in (".ci/run", "test.sh", "run.sh"):
        assert os.access(REPO / script, os.X_OK), f"{script} is not executable"


def test_readme_shows_the_ci_command_and_the_run_command() -> None:
    # Prepare
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing"

    # Execute
    commands = _fenced_commands(readme.read_text(encoding="utf-8"))

    # Assert: the README's test command is exactly what CI executes, and the run command is shown
    assert _ci_command() in commands, f"README has no fenced line {_ci_command()!r}"
    assert "./run.sh" in commands, "README has no fenced ./run.sh command"


def test_console_script_points_to_an_existing_function() -> None:
    # Prepare
    scripts = _pyproject()["project"]["scripts"]

    # Execute
    module_name, _, attr = scripts["hypergpu-lab"].partition(":")
    target = getattr(importlib.import_module(module_name), attr)

    # Assert
    assert callable(target)
    assert target(["presets"]) == 0


def test_package_metadata_is_consistent() -> None:
    # Prepare
    project = _pyproject()["project"]
    import hypergpu_lab

    # Assert
    assert project["name"] == "hypergpu-lab"
    assert (REPO / project["readme"]).name == "README.md"
    if hasattr(hypergpu_lab, "__version__"):
        assert hypergpu_lab.__version__ == project["version"]
