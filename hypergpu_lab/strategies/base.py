"""The interface every aggregation strategy implements: one method, plus optional server state."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch


class Strategy(ABC):
    """Turns the global weights and the accepted updates into the next global weights."""

    name: str = "strategy"

    @abstractmethod
    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        """Return new global weights ``[P]`` from ``deltas`` ``[K, P]`` (K >= 1) and sample counts ``[K]``."""

    def state_dict(self) -> dict[str, Any]:
        """Server-side state (momentum, moments) that a checkpoint must carry; none by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{self.name} keeps no state, got keys {sorted(state)}")


def state_keys(owner: str, state: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Check that a saved strategy state holds exactly ``keys`` (or nothing: not started yet).

    A checkpoint written by another strategy, or by an older version of this
    one, must fail here by name rather than as a KeyError deep in ``aggregate``.
    """
    if state and sorted(state) != sorted(keys):
        raise ValueError(f"{owner} state: got keys {sorted(state)}; accepted: {', '.join(keys)} or none")
    return state
