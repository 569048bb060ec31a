"""How the dashboard is served: where its notebook is, the Voila command line, and the JupyterLab tile.

``hypergpu-lab dashboard`` runs :func:`voila_command` itself. Inside JupyterLab the same command
runs under jupyter-server-proxy: the package declares :func:`server_proxy` in the
``jupyter_serverproxy_servers`` entry-point group, so installing the package (which brings
jupyter-server-proxy, whose server and lab extensions enable themselves) puts a "HyperGPU Lab" tile
in the Lab launcher, with nothing to enable by hand. The tile opens ``<base_url>hypergpu-lab/`` in
a Lab tab; the proxy starts Voila on a free port the first time and forwards that path, websockets
included, to it.

Why a proxied Voila rather than Voila's own server extension: the extension renders notebooks
under the Jupyter server's root only, and the dashboard notebook ships with the package (under
``<prefix>/share/hypergpu-lab``), outside any root a person picks. Nothing here imports a widget,
plotting or training library: Jupyter imports this module at every server start.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..runs import RUNS_ENV, runs_root

DISTRIBUTION = "hypergpu-lab"
SERVER_NAME = "hypergpu-lab"  # the proxied path, <base_url>hypergpu-lab/, and the entry point's name
TITLE = "HyperGPU Lab"
ICON = Path(__file__).with_name("hypergpu-lab.svg")
PROXY_EXTENSION = "@jupyterhub/jupyter-server-proxy"
START_TIMEOUT_S = 120.0  # Voila's first start on a busy 2-core machine takes well over the proxy's default 5 s


def notebooks_dir() -> Path:
    """The notebooks: in a checkout (editable install), else where the installed distribution put them.

    An installed wheel's data files land under the install scheme's data path (``sys.prefix`` in a
    venv, ``~/.local`` for ``--user``, the ``--prefix`` given): the distribution's file list says
    where, so every scheme is found, then ``sys.prefix`` as a last guess.
    """
    candidates = [Path(__file__).resolve().parents[2] / "notebooks"]
    try:
        dist = metadata.distribution(DISTRIBUTION)
        for file in dist.files or ():
            if file.name == "dashboard.ipynb" and "hypergpu-lab" in file.parts:
                candidates.append(Path(dist.locate_file(file)).resolve().parent)
    except metadata.PackageNotFoundError:
        pass
    candidates.append(Path(sys.prefix) / "share" / "hypergpu-lab" / "notebooks")
    for folder in candidates:
        if (folder / "dashboard.ipynb").is_file():
            return folder
    raise ConfigError("notebook", None, "a path to the dashboard notebook (notebooks/dashboard.ipynb not found)")


def voila_command(notebook: Path, port: int | str, cull_idle_s: int, *, base_url: str | None = None) -> list[str]:
    """Voila on loopback only, sources stripped, and kernels of closed pages culled.

    Voila starts a kernel per page and, here, a closed page's shutdown request is refused,
    so without culling every visit leaves a kernel behind. Kernels with an open page are
    never culled (cull_connected=False), however idle their cells are. ``base_url`` serves the
    page under a path prefix (behind jupyter-server-proxy).
    """
    template = Path(notebook).resolve().parent / "jupyter"
    if not (template / "voila" / "templates" / "hgl").is_dir():
        template = notebooks_dir() / "jupyter"
    # The lab's own template ("hgl": Voila's lab template without its Font Awesome CDN links) is
    # found through JUPYTER_PATH, so nothing on the page loads from outside the machine.
    paths = os.pathsep.join(filter(None, [str(template), os.environ.get("JUPYTER_PATH")]))
    # Behind the proxy Voila sees the Jupyter server's host and port, so its login cookie would get
    # the server's cookie name: it would fail to read the server's cookie and clear it (path /),
    # logging the Lab out. A name of its own keeps the two apart.
    proxied = [f"--Voila.base_url={base_url}", "--IdentityProvider.cookie_name=hypergpu-lab-voila"]
    return [
        "env",
        f"JUPYTER_PATH={paths}",
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        "--template=hgl",
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        *(proxied if base_url else []),
        "--strip_sources=True",
        # jupyter-server-proxy's Lab extension (the tile) is built against a newer JupyterLab than
        # Voila's page and has nothing to do there: loaded, it logs "Unsatisfied version" warnings.
        f"--VoilaConfiguration.extension_denylist={PROXY_EXTENSION}",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle_s}",
        f"--MappingKernelManager.cull_interval={max(10, min(60, cull_idle_s // 2))}",
        "--MappingKernelManager.cull_connected=False",
    ]


def server_proxy() -> dict[str, Any]:
    """jupyter-server-proxy's configuration of the "HyperGPU Lab" launcher tile (the entry point).

    ``{port}`` and ``{base_url}`` are filled in by the proxy. Voila serves under the proxied path
    itself (``absolute_url``), so the page's own links and websockets resolve through the proxy.
    The runs folder is fixed here, in the Jupyter server's folder, unless ``$HYPERGPU_LAB_RUNS``
    says otherwise: Voila runs the page's kernel in the notebook's folder (inside the installed
    package's data), and a notebook started beside the server finds the same ``runs/``.
    """
    notebook = notebooks_dir() / "dashboard.ipynb"
    return {
        "command": voila_command(notebook, "{port}", 300, base_url="{base_url}" + SERVER_NAME + "/"),
        "environment": {RUNS_ENV: str(runs_root().resolve())},
        "absolute_url": True,
        "timeout": START_TIMEOUT_S,
        "new_browser_tab": False,
        "launcher_entry": {"title": TITLE, "icon_path": str(ICON), "category": "Notebook"},
    }
