"""structlog adapter: a processor that masks secrets in the event dict.

Place it after the exception renderer (``dict_tracebacks`` / ``format_exc_info``) and before the
final renderer, so tracebacks and their local variables are already data it can clean. Placed
earlier, it renders a pending ``exc_info`` itself (as ``format_exc_info`` would) rather than let
the renderer print an unmasked traceback later. structlog is imported only in that case.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from vsms_guard.redact.core import Redactor, default_redactor


class RedactProcessor:
    """``structlog`` processor: ``processors=[…, dict_tracebacks, RedactProcessor(), renderer]``.

    Top-level keys count as field names (``log.info("call", api_key=…)`` is masked) and SMS
    fields follow the redactor's ``mask_sms``.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> dict[str, Any]:
        if event_dict.get("exc_info"):
            from structlog.processors import format_exc_info

            event_dict = format_exc_info(logger, method_name, event_dict)
        return (self.redactor or default_redactor()).value(event_dict)
