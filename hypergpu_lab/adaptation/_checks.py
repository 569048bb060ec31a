"""Option checks shared by the adaptation components: each bad value raises a ConfigError naming it."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from typing import Any

from hypergpu_lab.errors import ConfigError


def number(
    field: str, value: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False
) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    parts = [f"> {low}" if low_open else f">= {low}"] if low is not None else []
    parts += [f"<= {high}"] if high is not None else []
    accepted = "a finite number" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(field, value, accepted)
    x = float(value)
    if (
        not math.isfinite(x)
        or (low is not None and (x <= low if low_open else x < low))
        or (high is not None and x > high)
    ):
        raise ConfigError(field, value, accepted)
    return x


def integer(field: str, value: Any, *, low: int = 0) -> int:
    """``value`` as an int ``>= low`` (numpy ints accepted; bools and floats refused)."""
    if isinstance(value, bool):
        raise ConfigError(field, value, f"an integer >= {low}")
    try:
        n = operator.index(value)
    except TypeError:
        raise ConfigError(field, value, f"an integer >= {low}") from None
    if n < low:
        raise ConfigError(field, value, f"an integer >= {low}")
    return n


def choice(field: str, value: Any, accepted: Iterable[str]) -> str:
    options = tuple(accepted)
    if value not in options:
        raise ConfigError(field, value, "one of " + ", ".join(options))
    return value


def node_ids(field: str, value: Any) -> frozenset[int]:
    """A set of node ids from any iterable of ints."""
    if isinstance(value, (str, bytes)):
        raise ConfigError(field, value, "an iterable of node ids (ints >= 0)")
    try:
        return frozenset(integer(field, n) for n in value)
    except TypeError:
        raise ConfigError(field, value, "an iterable of node ids (ints >= 0)") from None
