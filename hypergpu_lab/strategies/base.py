"""The interface every aggregation strategy implements: one method, plus optional server state.

The whole contract with the engine:

- :meth:`Strategy.aggregate` gets the global weights, the accepted updates stacked in canonical
  (round, node) order, and one aggregation weight per update: the node's sample count times its
  staleness discount (1 for this round's updates, ``1/sqrt(1 + staleness)`` for a buffered late
  one). It returns the next global weights and must not modify its inputs.
- :meth:`Strategy.aggregate_updates` is what the engine calls: it adds an :class:`UpdateContext`
  (which node sent each row, how many local steps it took, the local SGD settings) for the
  strategies that need it (FedNova, SCAFFOLD); by default it is :meth:`aggregate`.
- :meth:`Strategy.client_objective` says what local training must add to the node's loss
  (FedProx's proximal term) or gradient (SCAFFOLD's control-variate correction); plain SGD by default.
- :meth:`Strategy.state_dict` / :meth:`Strategy.load_state_dict` carry server state across checkpoints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class ClientObjective:
    """What a strategy asks of every node's local training beyond SGD on its own loss."""

    proximal_mu: float = 0.0  # FedProx: adds mu/2 * ||w - w_global||^2 to the local loss
    # SCAFFOLD: node -> a vector [P] added to every local gradient (c - c_i), None for none; asked each round
    correction: Callable[[int], torch.Tensor | None] | None = None
    download_copies: int = 1  # model-sized vectors each node downloads (SCAFFOLD also sends c)


@dataclass(frozen=True)
class UpdateContext:
    """Per accepted update (the rows of ``deltas``): who sent it and how much local work it holds."""

    nodes: tuple[int, ...]
    steps: torch.Tensor  # local SGD steps each node took (int64 [K]); fewer under partial work
    lr: float  # local learning rate
    momentum: float  # local SGD momentum (torch.optim.SGD convention)
    population: int  # nodes in the federation (SCAFFOLD's N)


def effective_steps(steps: torch.Tensor, momentum: float) -> torch.Tensor:
    """||a_i||_1 of FedNova (Wang et al. 2020, eq. 7): how many gradients tau steps of SGD with momentum add up to.

    tau steps of ``buf = rho buf + g; w -= lr buf`` move w by lr Sum_j g_j (1 - rho^(tau-j)) / (1 - rho);
    the weights sum to (tau - rho (1 - rho^tau) / (1 - rho)) / (1 - rho), which is tau at rho = 0.
    """
    tau = steps.to(torch.float64)
    if momentum == 0:
        return tau
    rho = momentum
    return (tau - rho * (1 - rho**tau) / (1 - rho)) / (1 - rho)


class Strategy(ABC):
    """Turns the global weights and the accepted updates into the next global weights."""

    name: str = "strategy"
    # True for robust rules that look at each update (median, Krum): they cannot run on a SecAgg sum
    # or on DP-FedAvg's one noisy mean, so privacy refuses them (privacy/pipeline.py: check_strategy).
    needs_individual_updates: bool = False

    @abstractmethod
    def aggregate(self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        """Return new global weights ``[P]`` from ``deltas`` ``[K, P]`` (K >= 1) and weights ``[K]``.

        ``num_samples`` are the aggregation weights: sample counts times staleness discounts.
        """

    def check_pool(self, num_nodes: int) -> None:
        """Raise ConfigError if no round on ``num_nodes`` nodes could ever satisfy this strategy.

        Called when a run is built, so an impossible setting (Krum's ``f=100`` on 5 nodes) is
        refused at construction rather than at round 1. Nothing is impossible by default.
        """
        return None

    def take_notes(self) -> tuple[str, ...]:
        """What the last :meth:`aggregate` did beyond its rule (a fallback), for the round's events.

        Emptied by the call, so each note lands in one round's report. None by default.
        """
        notes, self._notes = tuple(getattr(self, "_notes", ())), []
        return notes

    def note(self, text: str) -> None:
        """Record ``text`` for the current round's report (see :meth:`take_notes`)."""
        if not hasattr(self, "_notes"):
            self._notes: list[str] = []
        self._notes.append(text)

    def aggregate_updates(
        self, global_weights: torch.Tensor, deltas: torch.Tensor, num_samples: torch.Tensor, context: UpdateContext
    ) -> torch.Tensor:
        """What the engine calls; strategies that need to know who sent what, or how many steps, override it."""
        return self.aggregate(global_weights, deltas, num_samples)

    def client_objective(self) -> ClientObjective:
        """What local training adds to each node's loss; nothing by default."""
        return ClientObjective()

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
