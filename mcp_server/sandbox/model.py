"""The sandbox's records and their JSON views: orders, messages, accounts, API errors.

Plain data plus the few pure helpers the API shapes need (code extraction, query parsing), kept
apart from the rules in ``backend.py``.
"""

from __future__ import annotations

import re
import secrets
import string
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from mcp_server.sandbox import events
from vsms_guard import keys

ACTIVE = ("created", "waiting", "sms_received")
STATUSES = ("created", "waiting", "sms_received", "completed", "cancelled", "expired")
TRANSACTION_TYPES = ("deposit", "purchase", "refund", "admin_credit")
CODE_RE = re.compile(r"(?<!\d)\d{4,8}(?!\d)")
KEY_ALPHABET = string.ascii_letters + string.digits


class ApiError(Exception):
    """An HTTP error answer: status, error code, message, extra body fields and headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"success": False, "error": self.code, "message": self.message, **self.extra}


def extract_code(text: str) -> str | None:
    """The first run of 4–8 digits, as the Node.js server extracts it (FACTS §2)."""
    match = CODE_RE.search(text)
    return match.group() if match else None


def parse_when(value: str, name: str) -> float:
    """``from``/``to`` filters: an ISO date or date-time (UTC when no zone is given)."""
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "invalid_params", f"{name} must be an ISO date or date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass
class Message:
    content: str
    sender: str
    received_at: float


@dataclass
class Order:
    order_id: str
    account_id: str
    service: str
    country: str
    phone_number: str
    price: float
    created_at: float
    expires_at: float
    available_at: float  # cancel and swap allowed from here (the hold)
    sms_due: float | None  # when the automatic SMS arrives; None once sent or disabled
    status: str = "waiting"
    messages: list[Message] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The JSON shape of ``/customer/order/{id}`` (FACTS §1), legacy fields included."""
        first = self.messages[0] if self.messages else None
        return {
            "order_id": self.order_id,
            "phone_number": self.phone_number,
            "service": self.service,
            "country": self.country,
            "price": self.price,
            "status": self.status,
            "created_at": events.iso(self.created_at),
            "expires_at": events.iso(self.expires_at),
            "cancel_available_at": events.iso(self.available_at),
            "swap_available_at": events.iso(self.available_at),
            "messages": [
                {"content": m.content, "sender": m.sender, "received_at": events.iso(m.received_at)}
                for m in self.messages
            ],
            "sms_code": extract_code(first.content) if first else None,
            "sms_text": first.content if first else None,
        }


@dataclass
class Account:
    account_id: str
    email: str
    balance: float
    created_at: float
    hits: deque[float] = field(default_factory=deque)  # request times in the rate window
    transactions: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[str, tuple[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)


def ws_sms(message: Message) -> dict[str, Any]:
    return {"type": "sms", "code": extract_code(message.content), "full_text": message.content}


def int_param(
    params: Mapping[str, str], name: str, default: int, low: int, high: int | None
) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_params", f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ApiError(400, "invalid_params", f"{name} must be {bound}")
    return value


def new_key() -> str:
    """A fresh random, key-shaped API key (``keys.is_key`` accepts it); never seeded."""
    while True:
        key = keys.PREFIX + "".join(secrets.choice(KEY_ALPHABET) for _ in range(40))
        if keys.is_key(key):
            return key
