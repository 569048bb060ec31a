"""The package's layers, bottom to top: a module may import its own layer or any layer below, never above.

Written once, here, as data (no imports, so it is a base module itself): the
architecture test (``tests/test_layering.py``) reads every module's imports with
``ast`` and checks each edge against this list, and a person adding a module
finds where it belongs next to the code rather than in a test. A module that
matches no pattern fails the test, so every new module gets placed on purpose.

Patterns are :func:`fnmatch.fnmatchcase` patterns over dotted module names; a
package's ``__init__`` is the package's own name. Where the real code demanded a
different order than the first sketch, the reason is next to the layer:

* ``metrics`` and ``runs`` are in ``core``, not with the other sinks: the
  coordinator records into :class:`~hypergpu_lab.metrics.History` and a
  :class:`~hypergpu_lab.runs.RunFolder` while it runs (the engine imports them),
  and they need only ``errors`` and ``events``.
* ``pool_config`` (PoolConfig) is ``core`` because ``NodePool`` builds from it;
  ``config`` (TrainConfig, RunConfig) is in ``registry`` because it validates
  strategy and policy names against the registry and fault plans against
  ``faults``. ``config`` re-exports ``PoolConfig``.
* ``plan`` (RoundPlan, the Planner protocol) is ``core``: the engine and every
  planner share it. Planners themselves (``planning``, ``adaptation``) are plug-ins.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

_P = "hypergpu_lab"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (f"{_P}.errors", f"{_P}.checks", f"{_P}.streams", f"{_P}.threads", f"{_P}.layers", f"{_P}.logs", f"{_P}.lazy"),
    ),
    (
        "core",
        (
            f"{_P}.clock",
            f"{_P}.events",
            f"{_P}.network",
            f"{_P}.bitcode",  # prefix codes (Elias-gamma, Golomb-Rice) for the codecs' positions
            f"{_P}.compression",  # codecs and error-feedback residuals: what an upload carries
            f"{_P}.broadcast",  # the compressed model broadcast: what a download carries
            f"{_P}.availability",  # when each node is online, in virtual time
            f"{_P}.models",
            f"{_P}.layer_stack",
            f"{_P}.buffers",  # scratch tensors the training engine reuses across calls
            f"{_P}.data",
            f"{_P}.partition",
            f"{_P}.pool_config",
            f"{_P}.node_table",  # the pool's per-node columns, viewed by nodes.Node
            f"{_P}.nodes",
            f"{_P}.training",
            f"{_P}.plan",
            f"{_P}.metrics",  # recorded into by the coordinator: see the module docstring
            f"{_P}.runs",  # the run folder the coordinator writes: see the module docstring
        ),
    ),
    (
        "plug-in",
        (
            f"{_P}.strategies",
            f"{_P}.strategies.*",
            f"{_P}.planning",
            f"{_P}.planning.*",
            f"{_P}.adaptation",
            f"{_P}.adaptation.*",
            f"{_P}.backends",
            f"{_P}.backends.*",
            f"{_P}.faults",
            f"{_P}.detection",
            f"{_P}.validate",
            f"{_P}.privacy",  # DP mechanisms, the accountant, SecAgg: hooks the coordinator calls
            f"{_P}.privacy.*",
            f"{_P}.contribution",  # what each update was worth: per-round Shapley on validation data, the robust gate
            f"{_P}.contribution.*",
        ),
    ),
    ("registry", (f"{_P}.registry", f"{_P}.config")),
    (
        "engine",
        (
            f"{_P}.checkpoint",
            f"{_P}.coordinator",
            f"{_P}.round",
            f"{_P}.delivery",
            f"{_P}.run_control",
            f"{_P}.persistence",
        ),
    ),
    (
        "sink",
        (
            f"{_P}.analytics",
            f"{_P}.export",
            f"{_P}.exporters",  # CSV, TensorBoard, MLflow, Prometheus: bus subscribers
            f"{_P}.chain",
            f"{_P}.chain.*",
            f"{_P}.ui",
            f"{_P}.ui.*",
            f"{_P}.cli",
            f"{_P}.service",  # a run in its own process: a front end of the engine, like the CLI
            f"{_P}.magics",  # %hypergpu in IPython: one more page of the runs the service serves
        ),
    ),
    ("package", (_P,)),
)


def layer_of(module: str) -> tuple[int, str] | None:
    """``(index, name)`` of the layer ``module`` belongs to (0 is the bottom), or None if none claims it."""
    for index, (name, patterns) in enumerate(LAYERS):
        if any(fnmatchcase(module, p) for p in patterns):
            return index, name
    return None
