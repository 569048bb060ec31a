"""Errors a user can act on: each names the field, the value and what is accepted."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A configuration value or argument is invalid.

    The message always has the form ``<field>: got <value>; accepted: <what>``
    so that a person reading a traceback in a notebook knows what to change.
    """

    def __init__(self, field: str, value: Any, accepted: str, hint: str = "") -> None:
        self.field = field
        self.value = value
        self.accepted = accepted
        self.hint = hint  # kept so a wrapper (checks.optional) can re-raise with a wider ``accepted``
        message = f"{field}: got {value!r}; accepted: {accepted}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are not in the local folder; the message says where to put them."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or fails its checksum."""
