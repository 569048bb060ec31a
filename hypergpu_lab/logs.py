"""Structured (JSON lines) logging on request: one object per record, for log shippers and ``jq``.

Plain text stays the default, since a person reads a terminal; ``hypergpu-lab --log-format json``
(or :func:`json_handler` in a notebook) switches to one JSON object per line with the time, level,
logger, message and any ``extra=`` fields a call attached. A base module: the standard library only.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import IO, Any

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: ``ts`` (epoch seconds), ``level``, ``logger``, ``message``, extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=repr, ensure_ascii=False)


TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


def formatter(kind: str) -> logging.Formatter:
    """The formatter for ``kind``: ``"text"`` (the default) or ``"json"``."""
    from .checks import choice

    return JsonFormatter() if choice("log format", kind, ("text", "json")) == "json" else logging.Formatter(TEXT_FORMAT)


def json_handler(stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Handler:
    """A handler writing JSON lines to ``stream`` (stderr by default); add it to ``logging.getLogger("hypergpu_lab")``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(JsonFormatter())
    return handler
