"""Keeping RPC URL credentials out of every message: errors, logs, status, repr.

Hosted JSON-RPC endpoints carry their API key in the URL: as userinfo (``https://user:key@host``), as
a path segment (``/v3/<key>``) or in the query (``?apikey=<key>``). The only safe rendering of such a
URL is ``scheme://host:port`` (:func:`redact_url`). Messages that libraries build from the full URL
(requests' "Max retries exceeded with url: /v3/<key>", "404 Client Error ... for url: ...", web3's
and urllib3's debug logs) go through a :class:`Scrubber`, which knows the fragments to cut.
No web3 here: the scrubber is plain text work.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
# Loggers that format the endpoint URL into their records (web3's provider and session cache, urllib3).
LIBRARY_LOGGERS = (
    "web3.providers.HTTPProvider",
    "web3._utils.http_session_manager.HTTPSessionManager",
    "urllib3.connectionpool",
    "urllib3.util.retry",
)
_MIN_SEGMENT = 4  # shorter path segments ("v3", "rpc") are not keys and are too common to cut


def redact_url(url: str) -> str:
    """``scheme://host:port`` only; userinfo, path and query (where API keys live) dropped."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def secret_fragments(url: str) -> set[str]:
    """Every piece of ``url`` that may be a credential, raw and percent-encoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url}
    found = {url}
    if parts.username:
        found.add(parts.username)
    if parts.password:
        found.add(parts.password)
    if parts.netloc and "@" in parts.netloc:
        found.add(parts.netloc.rsplit("@", 1)[0])
    if parts.path.strip("/"):
        found.add(parts.path)
        found.update(seg for seg in parts.path.split("/") if len(seg) >= _MIN_SEGMENT)
    if parts.query:
        found.add(parts.query)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            found.update(v for v in (value, f"{key}={value}") if len(v) >= _MIN_SEGMENT)
    if parts.fragment:
        found.add(parts.fragment)
    variants = set()
    for f in found:
        variants.update({f, quote(f, safe=""), quote(f, safe="/"), unquote(f)})
    return {v for v in variants if v}


class Scrubber:
    """Replaces known secret fragments with ``***`` in any text; longest first, so no piece survives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fragments: list[str] = []

    def add_url(self, url: str) -> None:
        with self._lock:
            merged = set(self._fragments) | secret_fragments(url)
            self._fragments = sorted(merged, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for fragment in self._fragments:
            if fragment in text:
                text = text.replace(fragment, MASK)
        return text


SCRUBBER = Scrubber()  # one for the process: library loggers are process-wide too


class _ScrubFilter(logging.Filter):
    """Rewrites a record's message with the secrets cut, before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        clean = SCRUBBER.scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = _ScrubFilter()


def protect(url: str) -> None:
    """Register ``url``'s credentials: library log records that mention them are scrubbed from now on."""
    SCRUBBER.add_url(url)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
