"""Checks for strategy options: a bad value raises ConfigError naming ``strategy_options.<name>``."""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError


def number(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """``value`` as a float if it is a finite real in the interval, else ConfigError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ConfigError(f"strategy_options.{name}", value, f"a finite number in {interval}")
    return float(value)


def integer(name: str, value: Any, low: int) -> int:
    """``value`` if it is an int >= ``low``, else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"strategy_options.{name}", value, f"an integer >= {low}")
    return value


def boolean(name: str, value: Any) -> bool:
    """``value`` if it is True or False, else ConfigError (so "false" is not taken as true)."""
    if not isinstance(value, bool):
        raise ConfigError(f"strategy_options.{name}", value, "true or false")
    return value


def state_keys(owner: str, state: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Check that a saved strategy state holds exactly ``keys`` (or nothing: not started yet)."""
    if state and sorted(state) != sorted(keys):
        raise ValueError(f"{owner} state: got keys {sorted(state)}; accepted: {', '.join(keys)} or none")
    return state
