"""Argument and option checks: the one place that says what a valid int, number, choice or flag is.

Every check returns the value in its normal form (an ``int``, a ``float``, a
``tuple`` of node ids) or raises :class:`~hypergpu_lab.errors.ConfigError`
naming the field, the value and what is accepted, so a person reading a
traceback in a notebook knows what to change. The rules are the same
everywhere, which is why they live here and nowhere else:

* a bool is never a number: ``True`` is an ``int`` subclass in Python, but a
  flag passed where a count is expected is a mistake, not the count 1;
* numpy scalars are accepted (``np.int64`` counts, ``np.float32`` rates), since
  values often come out of arrays; strings are not, however numeric they look;
* NaN and the infinities are refused: NaN breaks every comparison after it and
  an infinite bound or time is never reached.

Callers pass ``accepted=`` when a unit or a domain phrase says more than the
generated bound (``"a probability in [0, 1)"``), and ``hint=`` for advice.
This module is a base layer: it imports only :mod:`hypergpu_lab.errors` and
the standard library, so any module, core or not, can use it.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from hypergpu_lab.errors import ConfigError

__all__ = [
    "MAX_SEED",
    "boolean",
    "choice",
    "integer",
    "mapping_of_str",
    "node_ids",
    "number",
    "optional",
    "seed",
    "writable_folder",
]

T = TypeVar("T")

# torch.manual_seed and numpy's seed sequences take a signed 64-bit seed at most; a larger one
# failed deep inside model construction ("Overflow when unpacking long long").
MAX_SEED = 2**63 - 1


def _fmt(x: float) -> str:
    """A bound as people write it: ``0`` and ``3600`` rather than ``0.0`` and ``3600.0``."""
    return str(int(x)) if isinstance(x, float) and x.is_integer() and abs(x) < 1e15 else str(x)


def integer(
    field: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
    accepted: str = "",
    hint: str = "",
) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound may be left out).

    Anything with ``__index__`` counts (numpy integers included); floats do
    not, even ``2.0``, because a count that arrives as a float usually means a
    division happened where it should not have.
    """
    if not accepted:
        if low is not None and high is not None:
            accepted = f"an integer in [{low}, {high}]"
        elif low is not None:
            accepted = f"an integer >= {low}"
        elif high is not None:
            accepted = f"an integer <= {high}"
        else:
            accepted = "an integer"
    if isinstance(value, bool):
        raise ConfigError(field, value, accepted, hint)
    try:
        n = operator.index(value)
    except TypeError:
        raise ConfigError(field, value, accepted, hint) from None
    if (low is not None and n < low) or (high is not None and n > high):
        raise ConfigError(field, value, accepted, hint)
    return n


def number(
    field: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    accepted: str = "",
    hint: str = "",
) -> float:
    """``value`` as a finite ``float`` between ``low`` and ``high``.

    Bounds are inclusive unless ``open_low`` / ``open_high`` say otherwise
    (a learning rate must be ``> 0``, a momentum ``< 1``).
    """
    if not accepted:
        parts = [] if low is None else [f"{'>' if open_low else '>='} {_fmt(low)}"]
        parts += [] if high is None else [f"{'<' if open_high else '<='} {_fmt(high)}"]
        accepted = "a finite number" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(field, value, accepted, hint)
    x = float(value)
    if (
        not math.isfinite(x)
        or (low is not None and (x <= low if open_low else x < low))
        or (high is not None and (x >= high if open_high else x > high))
    ):
        raise ConfigError(field, value, accepted, hint)
    return x


def choice(field: str, value: Any, accepted: Iterable[T], *, hint: str = "") -> T:
    """``value`` if it equals one of ``accepted``; the error lists them all, in order."""
    options = tuple(accepted)
    if value not in options:
        raise ConfigError(field, value, "one of " + ", ".join(map(str, options)), hint)
    return value


def boolean(field: str, value: Any, *, accepted: str = "true or false", hint: str = "") -> bool:
    """``value`` if it is ``True`` or ``False``: the string ``"false"`` is truthy, so it is refused."""
    if not isinstance(value, bool):
        raise ConfigError(field, value, accepted, hint)
    return value


def optional(check: Callable[..., T], field: str, value: Any, *args: Any, **kwargs: Any) -> T | None:
    """``None`` passes through; anything else goes to ``check(field, value, *args, **kwargs)``.

    The error then says that None would also have done, so a person knows
    they may leave the field out.
    """
    if value is None:
        return None
    try:
        return check(field, value, *args, **kwargs)
    except ConfigError as exc:
        raise ConfigError(exc.field, exc.value, f"{exc.accepted}, or None", exc.hint) from None


def mapping_of_str(field: str, value: Any, *, accepted: str = "a mapping of option name to value") -> dict[str, Any]:
    """``value`` as a ``dict`` whose keys are all strings (option names from JSON, YAML or kwargs)."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(field, value, accepted)
    return dict(value)


def node_ids(field: str, value: Any, *, single: bool = False, empty: bool = True) -> tuple[int, ...]:
    """Node ids (ints >= 0) from an iterable, in the order given.

    ``single`` also accepts one bare id (``nodes=3``); ``empty=False`` refuses
    an empty collection, for things that must act on some node. A string is
    refused rather than read character by character.
    """
    if single and not isinstance(value, bool) and isinstance(value, numbers.Integral):
        value = (value,)
    shape = "a node id or an iterable of node ids" if single else "an iterable of node ids (ints >= 0)"
    if isinstance(value, (str, bytes)):
        raise ConfigError(field, value, shape)
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(field, value, shape) from None
    ids = tuple(integer(field, n, low=0, accepted="node ids (ints >= 0)") for n in items)
    if not ids and not empty:
        raise ConfigError(field, value, "at least one node id")
    return ids


def seed(field: str, value: Any) -> int:
    """A random seed: an integer in ``[0, 2**63 - 1]``, the range every generator the lab seeds accepts."""
    return integer(field, value, low=0, high=MAX_SEED, accepted="an integer in [0, 2**63 - 1]")


def writable_folder(field: str, value: Any) -> Path:
    """``value`` as a folder that exists and is writable, or can be created under one that is.

    Checked before a run writes anything, so ``--out`` naming a file or an unwritable place
    (``/proc/x``) is a field-named error instead of a traceback after a half-built run folder.
    """
    accepted = "a writable folder, or a new folder under a writable one"
    if not isinstance(value, (str, os.PathLike)) or not str(value) or "\x00" in str(value):
        raise ConfigError(field, value, accepted)
    path = Path(value).expanduser().absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        hint = "it is a file" if probe == path else f"{probe} is a file"
        raise ConfigError(field, str(value), accepted, hint)
    if not os.access(probe, os.W_OK | os.X_OK) or _pseudo_fs(probe):
        raise ConfigError(field, str(value), accepted, f"{probe} is not writable")
    return path


def _pseudo_fs(folder: Path) -> bool:
    """True under /proc and /sys: root may pass os.access there, yet nothing can be created."""
    parts = folder.resolve().parts
    return len(parts) > 1 and parts[1] in ("proc", "sys")
