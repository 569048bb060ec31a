"""Browser tests drive real headless Chromium against a local Voila server (~1-3 min each).

Shared here: the skip when Chromium, playwright or voila is missing, a Voila server in its own
process group (stopped with its kernels afterwards), a headless Chromium, and the artifacts folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"  # gitignored; screenshots of every browser test land here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_configure(config: pytest.Config) -> None:
    # Registered here, beside the tests that use it, so --strict-markers accepts it.
    config.addinivalue_line("markers", "browser: drives headless Chromium against a local server (slow)")


def require_browser_stack() -> None:
    """Skip, saying what is missing, unless Chromium, playwright, voila and anywidget are all there."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing: run scripts/setup_browser.sh (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (the Python package) is not installed")
    pytest.importorskip("voila", reason="voila is not installed")
    pytest.importorskip("anywidget", reason="anywidget is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kernel_env(tmp_path: Path) -> dict[str, str]:
    """The server's environment: its kernels find this checkout and this venv; no user Jupyter config leaks in."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # kernel.json says "python"
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM lets jupyter_server shut its kernels down; SIGKILL the group if it lingers."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(server.pid, signal.SIGKILL)  # whatever of the group is left (a stuck kernel)
    except ProcessLookupError:
        pass
    server.wait(timeout=10)


@pytest.fixture
def voila_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``start(command_for_port, cwd=tmp_path, ready_s=60) -> url``: a Voila server in its own process group.

    ``command_for_port(port)`` gives the command line for a free port, e.g.
    ``lambda port: voila_command(notebook, port, 300)``. Waits until the server answers HTTP
    (without opening "/", which would start a kernel). Every server started is stopped, with its
    kernels, at teardown.
    """
    require_browser_stack()
    started: list[tuple[subprocess.Popen, Any]] = []

    def start(command_for_port: Callable[[int], Sequence[Any]], cwd: Path | None = None, ready_s: float = 60.0) -> str:
        port = free_port()
        command = [str(a) for a in command_for_port(port)]
        log_path = tmp_path / f"voila-{port}.log"
        log = log_path.open("w")
        server = subprocess.Popen(
            command,
            cwd=cwd or tmp_path,
            env=kernel_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append((server, log))
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + ready_s
        while True:
            if server.poll() is not None:
                pytest.fail(f"voila exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            try:  # any HTTP answer means it listens
                with urllib.request.urlopen(url + "favicon.ico", timeout=2):
                    return url
            except urllib.error.HTTPError:
                return url
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"voila did not listen in {ready_s:.0f} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)

    try:
        yield start
    finally:
        for server, log in started:
            stop_server(server)
            log.close()


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright's sync API), closed afterwards."""
    require_browser_stack()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    """test-artifacts/ at the repository root (gitignored), created if missing."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _kill_runs(root: Path) -> None:
    """Run processes a dashboard started under ``root/runs`` (detached, outside any server's group), by pid."""
    from hypergpu_lab import service

    for status in root.glob("runs/*/status.json"):
        pid = (service.read_status(status.parent) or {}).get("pid")
        if service.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``start(ready_s=120) -> url``: ``jupyter lab`` serving tmp_path (free port, token set, no browser).

    Nothing is enabled by hand: what the installed packages declare is what loads. The URL carries
    the token. JupyterLab's own news feed and update check fetch nothing. The server, its kernels and any run
    a dashboard in it started are stopped at teardown.
    """
    require_browser_stack()
    pytest.importorskip("jupyter_server_proxy", reason="jupyter-server-proxy is not installed")
    started: list[tuple[subprocess.Popen, Any]] = []
    token = "hypergpu-test-token"

    def start(ready_s: float = 120.0) -> str:
        port = free_port()
        env = kernel_env(tmp_path)
        env.pop("HYPERGPU_LAB_RUNS", None)  # the launcher's default: runs/ beside the server
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        log_path = tmp_path / f"lab-{port}.log"
        log = log_path.open("w")
        server = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        started.append((server, log))
        base = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + ready_s
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}api/status?token={token}", timeout=5):
                    return f"{base}lab?token={token}"
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer in {ready_s:.0f} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)

    try:
        yield start
    finally:
        _kill_runs(tmp_path)
        for server, log in started:
            stop_server(server)
            log.close()
        _kill_runs(tmp_path)
