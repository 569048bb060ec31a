"""The JupyterLab launcher tile's side of the package: the entry point, its configuration, and package data.

The tile itself is clicked in tests/browser/test_lab_launcher_browser.py. Here: jupyter-server-proxy's
own ``ServerProcess`` accepts what the entry point returns; loading it (at every Jupyter server start)
imports no training or widget library; and a wheel installed elsewhere (not this checkout) finds its
dashboard notebook, Voila template and icon from its own installed files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from hypergpu_lab.runs import RUNS_ENV
from hypergpu_lab.ui import jupyter

REPO = Path(__file__).resolve().parents[1]


def test_the_entry_point_gives_a_server_process_jupyter_server_proxy_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    proxy_config = pytest.importorskip("jupyter_server_proxy.config")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(RUNS_ENV, raising=False)
    (entry,) = [e for e in entry_points(group="jupyter_serverproxy_servers") if e.name == jupyter.SERVER_NAME]

    # Execute
    config = entry.load()()
    process = proxy_config.ServerProcess(name=entry.name, **config)

    # Assert
    assert entry.value == "hypergpu_lab.ui.jupyter:server_proxy"
    assert process.launcher_entry.title == "HyperGPU Lab" and process.launcher_entry.enabled
    assert process.new_browser_tab is False and process.absolute_url is True
    icon = Path(process.launcher_entry.icon_path)
    assert icon.is_file() and icon.read_text().lstrip().startswith("<svg")
    command = process.command
    notebook = Path(command[command.index("-m") + 2])
    assert notebook.name == "dashboard.ipynb" and notebook.is_file()
    assert "--port={port}" in command and "--Voila.base_url={base_url}hypergpu-lab/" in command
    assert "--Voila.ip=127.0.0.1" in command
    assert process.environment == {RUNS_ENV: str(tmp_path.resolve() / "runs")}


def test_loading_the_entry_point_imports_no_training_or_widget_library() -> None:
    code = (
        "import sys\n"
        "from hypergpu_lab.ui.jupyter import server_proxy\n"
        "server_proxy()\n"
        "print(sorted(m for m in ('torch', 'numpy', 'ipywidgets', 'plotly', 'web3') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.slow
def test_an_installed_wheel_finds_its_notebook_template_and_icon_outside_the_checkout(tmp_path: Path) -> None:
    # Prepare: a wheel built from a copy of the sources, installed under a prefix of its own
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "runs", "*.egg-info")
    for name in ("hypergpu_lab", "notebooks", "widgets"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("hypergpu_lab-*.whl")
    prefix = tmp_path / "prefix"
    subprocess.run(
        [*pip, "install", "--no-deps", "--ignore-installed", "--prefix", str(prefix), str(wheel)],
        check=True,
        timeout=300,
    )
    (site,) = prefix.glob("lib/python*/site-packages")
    code = (
        "import json\n"
        "from importlib.metadata import entry_points\n"
        "import hypergpu_lab\n"
        "(ep,) = [e for e in entry_points(group='jupyter_serverproxy_servers') if e.name == 'hypergpu-lab']\n"
        "config = ep.load()()\n"
        "from hypergpu_lab.ui.jupyter import notebooks_dir\n"
        "print(json.dumps({'package': hypergpu_lab.__file__, 'notebooks': str(notebooks_dir()),\n"
        "                  'command': config['command'], 'icon': config['launcher_entry']['icon_path']}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)

    # Execute: in a folder that is not the checkout, with only the installed copy on the path
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(out.stdout)

    # Assert: everything comes from the installed files
    assert Path(found["package"]).is_relative_to(site)
    notebooks = Path(found["notebooks"])
    assert notebooks == (prefix / "share" / "hypergpu-lab" / "notebooks").resolve()
    assert (notebooks / "dashboard.ipynb").is_file()
    assert (notebooks / "jupyter" / "voila" / "templates" / "hgl" / "index.html.j2").is_file()
    assert str(notebooks / "dashboard.ipynb") in found["command"]
    jupyter_path = next(a for a in found["command"] if a.startswith("JUPYTER_PATH="))
    assert jupyter_path.split("=", 1)[1].split(os.pathsep)[0] == str(notebooks / "jupyter")
    assert Path(found["icon"]).is_relative_to(site) and Path(found["icon"]).is_file()
