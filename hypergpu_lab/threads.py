"""How many intra-op threads a training or evaluation call uses: one, unless the work pays for more.

Why: the lab runs beside a browser, a Voila server and a Jupyter kernel. An intra-op thread that
waits for a core it cannot get stalls every tensor operation at its barrier: with two CPU-bound
processes beside it on a 2-core machine, 3 rounds of a 10-node CNN run took a median 5.0 s (worst
19.7 s) with torch's default 2 threads against 1.0 s with 1 (``python -m bench contention``).
On an uncontended machine the second thread saved about a fifth of that run's time; the policy
gives that up for small work rather than risk the collapse. So the policy is:

- one thread when a step's work is below :data:`MIN_FLOPS_PER_THREAD`; one more thread per
  multiple of it, up to the cores this process may use;
- ``HYPERGPU_LAB_THREADS=N`` (or :func:`set_threads`) fixes the count and overrides the policy.

The count depends on the work and the machine, never on the machine's current load: float sums
in a parallel kernel are ordered by thread, so a different thread count gives different weights
(measured: the adaptive golden run's weights differ between 1 and 2 threads), and the lab promises
the same weights for the same config and seed. The count applies for one call
(:func:`intra_op_threads`) and is then restored, so a notebook's own torch code keeps its settings.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import torch

log = logging.getLogger(__name__)

MIN_FLOPS_PER_THREAD = 2e9  # per optimiser step: below this a second thread costs more than it saves
ENV = "HYPERGPU_LAB_THREADS"
_fixed: int | None = None


def set_threads(n: int | None) -> None:
    """Fix the intra-op thread count for every training call (None: back to the policy)."""
    global _fixed
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"threads must be an integer >= 1 or None, got {n!r}")
    _fixed = n


def _from_env() -> int | None:
    raw = os.environ.get(ENV)
    if raw is None or raw.strip() in ("", "auto"):
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        log.warning("%s=%r is not an integer >= 1 or 'auto'; using the automatic policy", ENV, raw)
        return None
    return n


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def threads_for(step_flops: float, *, cores: int | None = None) -> int:
    """The thread count for work of ``step_flops`` per optimiser step, under the policy above."""
    fixed = _fixed if _fixed is not None else _from_env()
    if fixed is not None:
        return fixed
    wanted = 1 + int(step_flops // MIN_FLOPS_PER_THREAD)
    return max(1, min(wanted, usable_cores() if cores is None else cores))


@contextlib.contextmanager
def intra_op_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` torch intra-op threads, then restore the previous count."""
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
