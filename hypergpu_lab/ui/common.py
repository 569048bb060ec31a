"""Small pieces the panels share: a log handler that writes to an Output widget, guarded callbacks, tables."""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

log = logging.getLogger(__name__)


class OutputHandler(logging.Handler):
    """Log records as lines of an ``Output`` widget (``print`` in a callback would vanish)."""

    def __init__(self, output: widgets.Output, level: int = logging.INFO, max_lines: int = 200) -> None:
        super().__init__(level)
        self.output, self.max_lines = output, max_lines
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            outputs = list(self.output.outputs)[-(self.max_lines - 1) :]
            self.output.outputs = (
                *outputs,
                {"output_type": "stream", "name": "stdout", "text": self.format(record) + "\n"},
            )
        except Exception:
            self.handleError(record)


def attach_log(
    output: widgets.Output, logger: str = "hypergpu_lab", level: int = logging.WARNING
) -> Callable[[], None]:
    """Send ``logger``'s records of ``level`` and up to ``output``; returns a function that detaches it."""
    handler = OutputHandler(output, level)
    target = logging.getLogger(logger)
    target.addHandler(handler)
    return lambda: target.removeHandler(handler)


def guarded(message: widgets.HTML, what: str) -> Callable[[Callable[..., Any]], Callable[..., None]]:
    """Decorate a widget callback: an exception becomes a log record and a red line in ``message``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., None]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            try:
                fn(*args, **kwargs)
            except Exception as exc:
                log.warning("%s: %s", what, exc)
                message.value = error_html(f"{what}: {exc}")

        return run

    return wrap


def error_html(text: str) -> str:
    return f"<span style='color:#b00020'>{html.escape(text)}</span>"


def note_html(text: str) -> str:
    return f"<span style='color:#555'>{html.escape(text)}</span>"


def table_html(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, css_class: str = "hgl-table", highlight: int | None = None
) -> str:
    """A plain HTML table; every cell is escaped. ``highlight`` is the index of a row to mark."""

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))

    head = "".join(f"<th style='text-align:left;padding:0 8px'>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        style = " style='background:#fff3c4'" if i == highlight else ""
        body.append(f"<tr{style}>" + "".join(f"<td style='padding:0 8px'>{fmt(v)}</td>" for v in row) + "</tr>")
    return f"<table class='{css_class}'><tr>{head}</tr>{''.join(body)}</table>"
