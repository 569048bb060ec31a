"""Names to objects: which planner, backend or strategy a name (in a config, a form, the CLI) means.

This module sits above the plug-ins (strategies, planners, backends) and below
the engine, so that no core module has to import a plug-in to resolve a name:
the core takes objects, and the name handling lives here (see
:data:`hypergpu_lab.layers.LAYERS`). :mod:`hypergpu_lab.config` validates names
against the tuples here. Strategy names come from the strategies package's own
table (:data:`hypergpu_lab.strategies.STRATEGIES`), the single source of truth;
the coordinator resolves them with :func:`hypergpu_lab.strategies.get_strategy`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import strategies
from .errors import ConfigError
from .plan import Planner
from .planning import UniformPolicy

if TYPE_CHECKING:
    from .config import TrainConfig

log = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = tuple(strategies.STRATEGIES)
POLICIES: tuple[str, ...] = ("uniform", "adaptive")
BACKENDS: tuple[str, ...] = ("inprocess", "ray")


def make_policy(cfg: TrainConfig, seed: int) -> Planner:
    """The planner a TrainConfig names. The adaptive one is imported only when asked for."""
    if cfg.policy == "adaptive":
        import inspect

        from .adaptation import AdaptivePolicy

        accepted = [p for p in inspect.signature(AdaptivePolicy).parameters if p not in ("seed",)]
        if unknown := sorted(set(cfg.policy_options) - set(accepted)):
            raise ConfigError(
                f"train.policy_options.{unknown[0]}",
                cfg.policy_options[unknown[0]],
                "options of the adaptive policy: " + ", ".join(accepted),
            )
        return AdaptivePolicy.from_train_config(cfg, seed=seed, **cfg.policy_options)
    if cfg.policy_options:
        raise ConfigError("train.policy_options", cfg.policy_options, "none for the uniform policy")
    return UniformPolicy(
        seed=seed,
        batch_size=cfg.batch_size,
        clients_per_round=cfg.clients_per_round,
        fraction=cfg.fraction,
        deadline_s=cfg.deadline_s,
        min_completion=cfg.min_completion,
    )


def make_backend(backend: str | Any | None) -> Any:
    """The backend a name means, for ``NodePool.with_backend`` / ``NodePool.simulated(backend=...)``.

    ``"ray"`` is a fresh :class:`~hypergpu_lab.backends.ray.RayBackend` (Ray is imported only then);
    ``"inprocess"`` and ``None`` are ``None``, i.e. the coordinator trains in this process; an object
    with ``attach(pool)`` is returned as it is.
    """
    if backend is None or backend == "inprocess":
        return None
    if backend == "ray":
        from .backends.ray import RayBackend

        return RayBackend()
    if isinstance(backend, str) or not hasattr(backend, "attach"):
        raise ConfigError("backend", backend, "one of " + ", ".join(BACKENDS) + ", None or an object with attach(pool)")
    return backend
