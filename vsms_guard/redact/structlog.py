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

_SCALARS = (str, bytes, int, float, bool)  # what ``Redactor.value`` has already cleaned whole


def _safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:  # noqa: BLE001 - a user's __repr__ must not break logging
        return f"<unprintable {type(obj).__name__}: {type(exc).__name__}>"


class RedactProcessor:
    """``structlog`` processor: ``processors=[…, dict_tracebacks, RedactProcessor(), renderer]``.

    Top-level keys count as field names (``log.info("call", api_key=…)`` is masked) and SMS
    fields follow the redactor's ``mask_sms``. A value that is or holds some other object (an
    ``httpx.Request``) becomes its masked ``repr`` when that holds a secret, as renderers print
    objects by ``repr``.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> dict[str, Any]:
        if event_dict.get("exc_info"):
            from structlog.processors import format_exc_info

            event_dict = format_exc_info(logger, method_name, event_dict)
        redactor = self.redactor or default_redactor()
        clean = redactor.value(event_dict)
        for name, value in clean.items():
            if value is None or isinstance(value, _SCALARS) or str(name).startswith("_"):
                continue  # "_record" and the like are structlog's own
            shown = _safe_repr(value)  # an object, or objects inside a container
            masked = redactor.text(shown)
            if masked != shown:
                clean[name] = masked
        return clean
