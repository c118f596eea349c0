"""Sentry adapter: ``before_send``-style hooks that scrub whole events with one ``Redactor``.

Sentry's default scrubber misses messages, exception values, URLs and query strings, and
``x-api-key`` spelled with a dash (FACTS §6). These hooks walk the serialised event (message,
exception values, request URL/query/headers/cookies/body, extra, contexts, tags, frame variables,
breadcrumbs, spans), so nothing Sentry ships keeps a key. Only ``hooks()`` imports sentry-sdk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vsms_guard.redact.core import Redactor, default_redactor

Hook = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]


def _scrub(redactor: Redactor | None, item: dict[str, Any]) -> dict[str, Any]:
    clean = (redactor or default_redactor()).value(item)
    entry, clean_entry = item.get("logentry"), clean.get("logentry")
    if isinstance(entry, dict) and isinstance(clean_entry, dict) and clean_entry.get("params"):
        # A log event keeps its ``%`` args apart: "x-api-key: %s" masks the formatted text,
        # but the bare arg has no context left to mask it by. The formatted text says it all.
        if clean_entry.get("formatted") != entry.get("formatted"):
            clean_entry["params"] = []
    return clean


def hooks(redactor: Redactor | None = None) -> dict[str, Hook]:
    """Keyword arguments for ``sentry_sdk.init(**hooks())``: every ``before_*`` hook bound to
    ``redactor`` (default: the process-wide one, which knows ``VIRTUALSMS_API_KEY``)."""

    def scrub(item: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        return _scrub(redactor, item)

    found = {
        "before_send": scrub,
        "before_send_transaction": scrub,
        "before_breadcrumb": scrub,
    }
    from sentry_sdk.consts import DEFAULT_OPTIONS

    if "before_send_log" in DEFAULT_OPTIONS:  # Sentry Logs; older SDKs reject the option
        found["before_send_log"] = scrub
    return found


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Error and message events."""
    return _scrub(None, event)


def before_send_transaction(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Transactions: span descriptions (``GET https://…?api_key=…``), span data, request."""
    return _scrub(None, event)


def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Breadcrumbs: log messages, HTTP crumbs' ``url`` and ``http.query``."""
    return _scrub(None, crumb)
