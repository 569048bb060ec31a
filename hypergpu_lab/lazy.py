"""Names a package loads on first use (PEP 562), so importing the package stays cheap.

``import hypergpu_lab`` must not pay for torch: Jupyter imports the package at server start (the
launcher tile) and ``%load_ext hypergpu_lab`` in every kernel that asks. ``hypergpu_lab.ui`` must not
pay for the widget library when only its plain modules are used. Both packages name their exports
in one table and get ``__getattr__`` and ``__dir__`` from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps an exported name to the submodule that
    defines it ("" when the name is the submodule itself); a loaded name is cached in ``namespace``."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f".{names[name] or name}", package)
        value = module if not names[name] else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
