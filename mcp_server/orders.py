"""Result shapes of order tools, as the Node.js server returns them, and the one clock.

Pure functions: the code is the first 4-8 digit run of the first message; ``messages[]`` plus
the legacy ``sms_code``/``sms_text`` aliases; the local ``cooldown_active`` answer while the
120 s hold of cancel/swap is running.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

CODE_RE = re.compile(r"(?<!\d)\d{4,8}(?!\d)")
SMS_STATUSES = frozenset({"sms_received", "completed"})
FINAL_STATUSES = frozenset({"completed", "cancelled", "expired"})


def now() -> datetime:
    """The server's one clock (UTC), so freezegun and production agree."""
    return datetime.now(UTC)


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (``Z`` or offset; naive means UTC) or unix seconds; None when absent/garbled."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def extract_code(text: str | None) -> str | None:
    """First run of 4-8 digits in ``text`` (longer runs are not codes)."""
    match = CODE_RE.search(text or "")
    return match.group() if match else None


def messages_of(order: dict[str, Any]) -> list[dict[str, Any]]:
    """``messages[]`` normalised to ``{content, sender, received_at}``; legacy text as fallback."""
    raw = order.get("messages")
    out = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict):
                out.append(
                    {
                        "content": item.get("content") or item.get("text") or "",
                        "sender": item.get("sender"),
                        "received_at": item.get("received_at"),
                    }
                )
    if not out and order.get("sms_text"):
        out.append({"content": order["sms_text"], "sender": None, "received_at": None})
    return out


def order_view(order: dict[str, Any]) -> dict[str, Any]:
    """The order as ``get_sms``/``get_order`` return it: upstream fields plus messages and code."""
    view = dict(order)
    messages = messages_of(order)
    first = messages[0]["content"] if messages else None
    code = extract_code(first) or order.get("sms_code") or None
    view["messages"] = messages
    view["code"] = code
    view["sms_code"] = code
    view["sms_text"] = first
    return view


def cooldown(
    order: dict[str, Any], field: str, at: datetime | None = None
) -> dict[str, Any] | None:
    """The local ``cooldown_active`` answer while ``order[field]`` is in the future, else None."""
    available = parse_time(order.get(field))
    current = at or now()
    if available is None or available <= current:
        return None
    wait = (available - current).total_seconds()
    action = "cancel" if field.startswith("cancel") else "swap"
    return {
        "success": False,
        "cooldown_active": True,
        "order_id": order.get("order_id"),
        "retry_at": available.isoformat().replace("+00:00", "Z"),
        "wait_seconds": int(wait + 0.999),
        "message": f"This number is held for 120 s after purchase; {action} is possible in "
        f"{int(wait + 0.999)} s. Nothing was changed.",
    }
