"""Network-aware adaptation: a link-quality monitor, batch-size controller, node selector,
quarantine, and the adaptive policy that plans rounds with them; plus named network scenarios.

The package depends on the core (it implements the :class:`~hypergpu_lab.plan.Planner`
protocol); the core never imports it::

    from hypergpu_lab import Coordinator
    from hypergpu_lab.adaptation import AdaptivePolicy, build_scenario

    scenario = build_scenario("demo", seed=0)
    coord = Coordinator(pool=scenario.pool, model="mlp",
                        policy=AdaptivePolicy(seed=0, clients_per_round=3, mode="proactive"))
    scenario.attach(coord)
    coord.run(rounds=scenario.rounds)
"""

from __future__ import annotations

from .adaptive import MODES, PHASES, AdaptivePolicy, Mode
from .batch_size import BATCH_STRATEGIES, BatchSizeController
from .monitor import BANDS, CLASSES, NetworkMonitor, NodeQuality, hysteresis_class, raw_class
from .quarantine import Quarantine
from .scenarios import SCENARIOS, RoundEvent, Scenario, build_scenario
from .selection import SELECTION_STRATEGIES, NodeSelector, Selection, jain_index

__all__ = [
    "BANDS",
    "BATCH_STRATEGIES",
    "CLASSES",
    "MODES",
    "PHASES",
    "SCENARIOS",
    "SELECTION_STRATEGIES",
    "AdaptivePolicy",
    "BatchSizeController",
    "Mode",
    "NetworkMonitor",
    "NodeQuality",
    "NodeSelector",
    "Quarantine",
    "RoundEvent",
    "Scenario",
    "Selection",
    "build_scenario",
    "hysteresis_class",
    "jain_index",
    "raw_class",
]
