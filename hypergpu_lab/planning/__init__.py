"""Round planners that need no network model: the uniform baseline.

A plug-in like :mod:`hypergpu_lab.adaptation` (which holds the adaptive
planner): it implements :class:`hypergpu_lab.plan.Planner`, and the core never
imports it; :func:`hypergpu_lab.registry.make_policy` builds planners by name.
"""

from __future__ import annotations

from .uniform import UniformPolicy

__all__ = ["UniformPolicy"]
