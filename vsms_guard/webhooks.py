"""Verify VirtualSMS webhooks: HMAC-SHA256 of the raw body, several secrets, a two-sided
timestamp window, and replay defence on the signed envelope ``id``.

The timestamp header is not known to be covered by the signature (FACTS §4), so the window alone
cannot stop a replay: the verifier also checks the signed ``created_at`` and remembers each
envelope ``id`` in a replay store (``vsms_guard.replay``). ``X-VirtualSMS-Delivery`` is recorded,
never trusted. Every failure is one :class:`WebhookError` whose ``reason`` says what failed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson  # ~5x faster than json on 1 KiB envelopes: verification is dominated by parsing

from vsms_guard.errors import GuardError

if TYPE_CHECKING:
    from vsms_guard.replay import ReplayStore

SIGNATURE_HEADER = "X-VirtualSMS-Signature"
TIMESTAMP_HEADER = "X-VirtualSMS-Timestamp"
DELIVERY_HEADER = "X-VirtualSMS-Delivery"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE = 300  # seconds, both directions (FACTS §4: ±5 min)

RAW_BODY_HINT = (
    "pass the request's raw bytes, read before anything parses them: Flask request.get_data(), "
    "Django/DRF request.body, FastAPI/Starlette await request.body()"
)

_HEX_LEN = hashlib.sha256().digest_size * 2
_PREFIXED_LEN = len(SIGNATURE_PREFIX) + _HEX_LEN
_MAX_HEADER_LEN = 256  # longer signature/timestamp/delivery values are refused before any work
_MAX_TIMESTAMP_DIGITS = 12


def clock() -> float:
    """The one clock of the webhook stack (verifier, replay stores, receiver, retention)."""
    return time.time()


class WebhookError(GuardError):
    """Why a webhook was refused. ``reason`` is one of the ``REASONS`` below; ``str()`` never
    contains a secret, a signature or the body."""

    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_SIGNATURE = "malformed_signature"
    MISMATCH = "mismatch"
    MISSING_TIMESTAMP = "missing_timestamp"
    MALFORMED_TIMESTAMP = "malformed_timestamp"
    STALE = "stale"
    FUTURE = "future"
    REPLAYED = "replayed"
    NOT_JSON = "not_json"
    BAD_ENVELOPE = "bad_envelope"
    NOT_RAW_BODY = "not_raw_body"  # a parsed object instead of the request's bytes
    BAD_CONFIG = "bad_config"  # empty secret, bad tolerance: raised when a Verifier is built

    REASONS = (
        MISSING_SIGNATURE,
        MALFORMED_SIGNATURE,
        MISMATCH,
        MISSING_TIMESTAMP,
        MALFORMED_TIMESTAMP,
        STALE,
        FUTURE,
        REPLAYED,
        NOT_JSON,
        BAD_ENVELOPE,
        NOT_RAW_BODY,
        BAD_CONFIG,
    )

    def __init__(self, reason: str, detail: str = "", *, event_id: str | None = None) -> None:
        self.reason = reason
        self.event_id = event_id  # set once the envelope was authenticated (e.g. on a replay)
        super().__init__(f"webhook refused: {reason}" + (f" ({detail})" if detail else ""))


@dataclass(slots=True)
class Event:
    """A verified webhook: the signed envelope plus the unsigned delivery headers."""

    id: str
    type: str
    created_at: str
    data: dict[str, Any]
    payload: dict[str, Any] = field(repr=False)
    delivery_id: str | None = None
    timestamp: int | None = None

    @property
    def test(self) -> bool:
        """True for the dashboard's test deliveries (``data.test``)."""
        return self.data.get("test") is True


def sign(
    body: bytes,
    secret: str,
    *,
    timestamp: int | None = None,
    delivery_id: str | None = None,
) -> dict[str, str]:
    """Headers VirtualSMS would send with ``body``: for tests and for users' own test suites."""
    if not isinstance(secret, str) or not secret:
        raise WebhookError(WebhookError.BAD_CONFIG, "the secret must be a non-empty string")
    try:
        stamp = int(clock() if timestamp is None else timestamp)
    except (TypeError, ValueError, OverflowError):
        raise WebhookError(WebhookError.BAD_CONFIG, "timestamp must be unix seconds") from None
    from vsms_guard.redact import default_redactor

    default_redactor().add_secret(secret)
    digest = hmac.new(secret.encode(), _body_bytes(body), hashlib.sha256).hexdigest()
    return {
        SIGNATURE_HEADER: SIGNATURE_PREFIX + digest,
        TIMESTAMP_HEADER: str(stamp),
        DELIVERY_HEADER: delivery_id if delivery_id is not None else f"dlv_{uuid.uuid4().hex}",
    }


def _header(headers: Any, name: str) -> str | None:
    """Case-insensitive lookup in a mapping (str or bytes) or in ASGI-style pairs."""
    if isinstance(headers, dict) or isinstance(headers, Mapping):  # dict first: no ABC check
        value = headers.get(name)
        if value is None:
            value = headers.get(name.lower())
        if value is not None:
            return _text(value)
        items: Iterable[Any] = headers.items()
    else:
        items = headers
    wanted = name.lower()
    for key, value in items:
        key_text = _text(key)
        if key_text is not None and key_text.lower() == wanted:
            return _text(value)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return value.decode("latin-1")
    return None


def _parse_signature(value: str | None) -> bytes:
    text = value.strip() if value is not None and len(value) <= _MAX_HEADER_LEN else value
    if not text:
        raise WebhookError(WebhookError.MISSING_SIGNATURE)
    if len(text) == _PREFIXED_LEN and text[:7].lower() == SIGNATURE_PREFIX:
        text = text[7:]
    elif len(text) != _HEX_LEN:
        raise WebhookError(WebhookError.MALFORMED_SIGNATURE, f"expected {_HEX_LEN} hex digits")
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        raise WebhookError(WebhookError.MALFORMED_SIGNATURE, "not hex") from None
    if len(digest) * 2 != _HEX_LEN:  # fromhex skips spaces between pairs
        raise WebhookError(WebhookError.MALFORMED_SIGNATURE, "not hex")
    return digest


def _parse_timestamp(value: str | None, required: bool) -> int | None:
    text = value.strip() if value is not None else ""
    if not text:
        if required:
            raise WebhookError(WebhookError.MISSING_TIMESTAMP)
        return None
    if len(text) > _MAX_TIMESTAMP_DIGITS or not text.isdigit() or not text.isascii():
        raise WebhookError(WebhookError.MALFORMED_TIMESTAMP, "expected unix seconds")
    return int(text)


def _parse_created_at(value: Any) -> float:
    if not isinstance(value, str) or len(value) > 64:
        raise WebhookError(WebhookError.BAD_ENVELOPE, "created_at must be an ISO-8601 string")
    try:
        moment = datetime.fromisoformat(value)  # 3.11+: accepts a trailing "Z"
    except ValueError:
        raise WebhookError(WebhookError.BAD_ENVELOPE, "created_at is not ISO-8601") from None
    if moment.tzinfo is None:
        raise WebhookError(WebhookError.BAD_ENVELOPE, "created_at has no time zone")
    return moment.timestamp()


class Verifier:
    """Verifies deliveries against one or more secrets (several during a rotation).

    ``tolerance`` bounds the timestamp header in both directions; ``max_age`` bounds the signed
    ``created_at`` (default: the ``replay_ids`` window of the retention policy, which is as long
    as the replay store remembers ids, so an expired id cannot be replayed); ``replay_store``
    deduplicates on the envelope ``id`` (None: the caller deduplicates).
    """

    def __init__(
        self,
        secrets: str | Iterable[str],
        *,
        tolerance: int = DEFAULT_TOLERANCE,
        max_age: int | None = None,
        require_timestamp: bool = True,
        replay_store: ReplayStore | None = None,
    ) -> None:
        try:
            values = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
        except TypeError:
            values = [secrets]  # refused below: not a string
        if not values:
            raise WebhookError(WebhookError.BAD_CONFIG, "no webhook secret configured")
        keys: list[bytes] = []
        for value in values:
            if not isinstance(value, str) or not value.strip():
                raise WebhookError(
                    WebhookError.BAD_CONFIG, "each webhook secret must be a non-empty string"
                )
            keys.append(value.encode())
        if max_age is None:
            from vsms_guard.retention import load_policy  # the replay window is policy data

            max_age = load_policy().replay_ids
        if not (_finite(tolerance) and _finite(max_age) and tolerance >= 0 and max_age > 0):
            raise WebhookError(WebhookError.BAD_CONFIG, "tolerance and max_age must be positive")
        # Keyed once: each delivery then costs a copy and one pass over the body.
        self._macs = tuple(hmac.new(key, digestmod="sha256") for key in keys)
        self.tolerance = tolerance
        self.max_age = max_age
        self.require_timestamp = require_timestamp
        self.replay_store = replay_store
        from vsms_guard.redact import default_redactor

        redactor = default_redactor()
        for value in values:
            redactor.add_secret(value)

    def __repr__(self) -> str:
        return f"Verifier(secrets=<{len(self._macs)} hidden>, tolerance={self.tolerance})"

    def check_signature(self, body: bytes, headers: Any, *, now: float | None = None) -> int | None:
        """Signature and timestamp window only (no parsing, no replay store): returns the
        timestamp header's value. Every secret is tried, so timing shows neither which secret
        matched nor where the signatures differ."""
        current = clock() if now is None else now
        try:  # NaN would pass every window comparison below; x - x is NaN for NaN and ±inf
            broken = current - current != 0  # (inline: this is the hot path of the bench)
        except TypeError:
            broken = True
        if broken:
            raise WebhookError(WebhookError.BAD_CONFIG, "now must be a finite number")
        try:
            signature = _parse_signature(_header(headers, SIGNATURE_HEADER))
            timestamp = _parse_timestamp(_header(headers, TIMESTAMP_HEADER), self.require_timestamp)
            message = _body_bytes(body)
        except WebhookError:
            raise
        except Exception:  # noqa: BLE001 - odd header containers or bodies are bad input
            raise WebhookError(
                WebhookError.MALFORMED_SIGNATURE, "unreadable headers or body"
            ) from None
        matched = False
        for base in self._macs:
            mac = base.copy()
            mac.update(message)
            matched |= hmac.compare_digest(mac.digest(), signature)
        if not matched:
            raise WebhookError(WebhookError.MISMATCH)
        if timestamp is not None:
            if current - timestamp > self.tolerance:
                raise WebhookError(WebhookError.STALE, f"older than {self.tolerance}s")
            if timestamp - current > self.tolerance:
                raise WebhookError(WebhookError.FUTURE, f"more than {self.tolerance}s ahead")
        return timestamp

    def verify(self, body: bytes, headers: Any, *, now: float | None = None) -> Event:
        """The verified event, or :class:`WebhookError`; records the envelope id as seen."""
        current = clock() if now is None else now
        timestamp = self.check_signature(body, headers, now=current)
        event = parse_event(body, timestamp=timestamp, delivery_id=_delivery(headers))
        age = current - _parse_created_at(event.created_at)
        # ">=": an id first seen ``tolerance`` early is remembered until exactly ``max_age``
        # after created_at (ttl below), so at that instant the event must already be stale.
        if age >= self.max_age:
            raise WebhookError(WebhookError.STALE, "event created_at is past the replay window")
        if -age > self.tolerance:
            raise WebhookError(WebhookError.FUTURE, "event created_at is in the future")
        if self.replay_store is not None and not self.replay_store.add(
            event.id, ttl=self.max_age + self.tolerance, now=current
        ):
            raise WebhookError(WebhookError.REPLAYED, event_id=event.id)
        return event


def _finite(value: Any) -> bool:
    """A real, finite number (bools and NaN are configuration mistakes)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _body_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    raise WebhookError(WebhookError.NOT_RAW_BODY, RAW_BODY_HINT)


def _delivery(headers: Any) -> str | None:
    try:
        value = _header(headers, DELIVERY_HEADER)
    except Exception:  # noqa: BLE001 - the delivery id is informational only
        return None
    if value is None or len(value) > _MAX_HEADER_LEN:
        return None
    return value


def parse_event(
    body: bytes, *, timestamp: int | None = None, delivery_id: str | None = None
) -> Event:
    """The envelope of an (already verified) body, or ``WebhookError`` not_json/bad_envelope."""
    try:
        payload = orjson.loads(body)
    except (ValueError, TypeError, RecursionError):  # orjson.JSONDecodeError is a ValueError
        raise WebhookError(WebhookError.NOT_JSON) from None
    if not isinstance(payload, dict):
        raise WebhookError(WebhookError.BAD_ENVELOPE, "valid JSON, but not an object")
    event_id, event_type = payload.get("id"), payload.get("type")
    data = payload.get("data", {})
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        raise WebhookError(WebhookError.BAD_ENVELOPE, "missing id")
    if not isinstance(event_type, str) or not event_type:
        raise WebhookError(WebhookError.BAD_ENVELOPE, "missing type")
    if not isinstance(data, dict):
        raise WebhookError(WebhookError.BAD_ENVELOPE, "data must be an object")
    created_at = payload.get("created_at")
    return Event(
        id=event_id,
        type=event_type,
        created_at=created_at if isinstance(created_at, str) else "",
        data=data,
        payload=payload,
        delivery_id=delivery_id,
        timestamp=timestamp,
    )


def verify(
    body: bytes,
    headers: Any,
    secrets: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    max_age: int | None = None,
    now: float | None = None,
    replay_store: ReplayStore | None = None,
    require_timestamp: bool = True,
) -> Event:
    """One-call form of :meth:`Verifier.verify`; build a ``Verifier`` once in a hot path."""
    verifier = Verifier(
        secrets,
        tolerance=tolerance,
        max_age=max_age,
        require_timestamp=require_timestamp,
        replay_store=replay_store,
    )
    return verifier.verify(body, headers, now=now)
