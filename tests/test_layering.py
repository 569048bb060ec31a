"""Dependencies point one way: down the layers of ``hypergpu_lab.layers``, with no import cycles.

The checker reads the package's own source with ``ast`` (it imports nothing it checks), so lazy
imports inside functions and ``importlib.import_module("hypergpu_lab...")`` calls count as edges
just like top-level ones; imports under ``if TYPE_CHECKING:`` never run and are skipped. And the
core never imports a UI or chain library at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import hypergpu_lab
from hypergpu_lab.layers import LAYERS, layer_of

FORBIDDEN = (
    "web3",
    "eth_tester",
    "ipywidgets",
    "plotly",
    "anywidget",
    "voila",
    "ray",
    "flwr",
    "dp_accounting",
    "cryptography",
)
PACKAGE = "hypergpu_lab"

# Edges left out of the cycle check: none. (The chain client <-> recorder cycle is gone: the
# recorder talks to a Ledger protocol and never imports the client.)
CYCLE_ALLOW: frozenset[tuple[str, str]] = frozenset()


def package_sources(root: Path) -> tuple[dict[str, str], set[str]]:
    """Every module of the package under ``root`` as {dotted name: source}, and which names are packages."""
    sources: dict[str, str] = {}
    packages: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            packages.add(".".join(parts))
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources, packages


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except what sits under ``if TYPE_CHECKING:`` (its ``else`` still runs)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield child
        yield from _runtime_nodes(child)


def _import_module_target(call: ast.Call, module: str, package: str) -> str | None:
    """The absolute name an ``importlib.import_module("...")`` call with a literal name loads, if any."""
    func = call.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )
    if not named or not call.args or not isinstance(call.args[0], ast.Constant):
        return None
    name = call.args[0].value
    if not isinstance(name, str):
        return None
    if not name.startswith("."):
        return name
    anchor = call.args[1] if len(call.args) > 1 else None
    if isinstance(anchor, ast.Constant) and isinstance(anchor.value, str):
        base = anchor.value
    elif isinstance(anchor, ast.Name) and anchor.id in ("__name__", "__package__"):
        base = module if anchor.id == "__name__" else package
    else:
        return None
    level = len(name) - len(name.lstrip("."))
    base_parts = base.split(".")[: len(base.split(".")) - (level - 1)]
    return ".".join(base_parts + ([name.lstrip(".")] if name.lstrip(".") else []))


def import_edges(sources: Mapping[str, str], packages: set[str]) -> dict[tuple[str, str], int]:
    """Run-time imports between the package's modules: {(importer, imported): first line}."""
    known = set(sources)

    def resolve(name: str) -> str | None:
        """The module ``name`` loads: itself, or the longest enclosing module that exists (a name in it)."""
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[tuple[str, str], int] = {}
    for module, source in sources.items():
        package = module if module in packages else module.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(source, filename=module)):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            elif isinstance(node, ast.Call):
                target = _import_module_target(node, module, package)
                targets = [target] if target else []
            for target in targets:
                resolved = resolve(target) if target.split(".")[0] == PACKAGE else None
                if resolved and resolved != module:
                    edges.setdefault((module, resolved), getattr(node, "lineno", 0))
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a -> ... -> a) per strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:  # the shortest way from the group's first module back to itself, inside the group
        start, members = group[0], set(group)
        paths = {w: [start, w] for w in sorted(graph[start] & members)}
        queue = list(paths)
        while start not in paths:
            v = queue.pop(0)
            for w in sorted(graph[v] & members):
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    queue.append(w)
        cycles.append(paths[start])
    return cycles


def layering_problems(
    sources: Mapping[str, str], packages: set[str], allow_cycles: frozenset[tuple[str, str]] = frozenset()
) -> list[str]:
    """Every module outside the layers, every edge to a higher layer and every import cycle, one line each."""
    problems = [f"{m}: in no layer of hypergpu_lab.layers.LAYERS" for m in sorted(sources) if layer_of(m) is None]
    edges = import_edges(sources, packages)
    for (a, b), line in sorted(edges.items()):
        la, lb = layer_of(a), layer_of(b)
        if la is not None and lb is not None and lb[0] > la[0]:
            problems.append(f"{a} -> {b}: layer {la[1]} imports layer {lb[1]} (line {line})")
    graph: dict[str, set[str]] = {m: set() for m in sources}
    for a, b in edges:
        if (a, b) not in allow_cycles:
            graph[a].add(b)
    problems += ["import cycle: " + " -> ".join(c) for c in _cycles(graph)]
    return problems


def _real_package() -> tuple[dict[str, str], set[str]]:
    return package_sources(Path(hypergpu_lab.__file__).parent)


def test_every_import_points_down_the_layers_and_none_closes_a_cycle() -> None:
    sources, packages = _real_package()
    problems = layering_problems(sources, packages, CYCLE_ALLOW)
    assert not problems, "\n".join(problems)


def test_the_layers_name_each_layer_once() -> None:
    names = [name for name, _ in LAYERS]
    assert len(names) == len(set(names))
    assert names[-1] == "package" and LAYERS[-1][1] == (PACKAGE,)


def test_checker_catches_a_lazy_back_edge_from_the_core_to_the_ui() -> None:
    sources, packages = _real_package()
    sources["hypergpu_lab.nodes"] += "\n\ndef _panel(pool):\n    import hypergpu_lab.ui\n\n    return hypergpu_lab.ui\n"
    problems = layering_problems(sources, packages, CYCLE_ALLOW)
    assert any(p.startswith("hypergpu_lab.nodes -> hypergpu_lab.ui: layer core imports layer sink") for p in problems)


def test_checker_reads_relative_importlib_and_type_checking_imports() -> None:
    sources = {
        "hypergpu_lab": "",
        "hypergpu_lab.errors": "",
        "hypergpu_lab.clock": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .ui import panel\n"
            "def f():\n    from . import errors\n"
            "    import importlib\n    return importlib.import_module('hypergpu_lab.coordinator')\n"
        ),
        "hypergpu_lab.coordinator": "import importlib\nimportlib.import_module('.events', __package__)\n",
        "hypergpu_lab.events": "from .clock import f\n",
        "hypergpu_lab.ui": "",
    }
    edges = import_edges(sources, {"hypergpu_lab"})
    assert set(edges) == {
        ("hypergpu_lab.clock", "hypergpu_lab.errors"),
        ("hypergpu_lab.clock", "hypergpu_lab.coordinator"),
        ("hypergpu_lab.coordinator", "hypergpu_lab.events"),
        ("hypergpu_lab.events", "hypergpu_lab.clock"),
    }
    problems = layering_problems(sources, {"hypergpu_lab"})
    assert "hypergpu_lab.clock -> hypergpu_lab.coordinator: layer core imports layer engine (line 7)" in problems
    assert (
        "import cycle: hypergpu_lab.clock -> hypergpu_lab.coordinator -> hypergpu_lab.events -> hypergpu_lab.clock"
        in problems
    )


def test_headless_run_imports_no_ui_or_chain_library() -> None:
    code = (
        "import sys\n"
        "from hypergpu_lab import Coordinator, NodePool\n"
        "from hypergpu_lab import cli, analytics, export, faults, detection\n"
        "pool = NodePool.simulated(4, dataset='digits', network='lan', seed=0)\n"
        "Coordinator(pool=pool, model='mlp').run(rounds=1, progress=False)\n"
        f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"


def test_chain_client_is_exported_lazily_and_attaches_through_the_bus() -> None:
    pytest.importorskip("web3")
    from hypergpu_lab import ChainClient, Coordinator, NodePool

    chain = ChainClient.embedded()
    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)
    coord = Coordinator(pool=pool, model="mlp", chain=chain, chain_options={"background": False})
    coord.run(rounds=2, progress=False)
    coord.recorder.flush()
    assert coord.recorder.status().sent == 2 and coord.recorder.status().pending == 0
