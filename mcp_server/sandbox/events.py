"""Where sandbox events go: WebSocket subscribers of an order, and signed webhooks.

State changes happen under the backend's lock on any thread (a request, the ticker, a test
calling ``deliver_sms``); the resulting events are handed to the server's event loop with
``call_soon_threadsafe`` and fanned out there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from vsms_guard.webhooks import sign

log = logging.getLogger("mcp_server.sandbox")

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# FACTS §4: retries after 1 min, 5 min, 30 min, 2 h, 12 h; paused after 20 consecutive failures.
RETRY_DELAYS: tuple[float, ...] = (60.0, 300.0, 1800.0, 7200.0, 43200.0)
PAUSE_AFTER_FAILURES = 20
WEBHOOK_TIMEOUT = 10.0
CLOSE = {"type": "_close"}  # internal: tells a subscriber to end its socket


def iso(ts: float) -> str:
    """Unix seconds as ISO-8601 UTC with milliseconds and a ``Z``."""
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def ulid(ts: float, rng: random.Random) -> str:
    """A 26-character ULID: 48-bit millisecond time + 80 random bits, Crockford base32."""
    value = (int(ts * 1000) & (2**48 - 1)) << 80 | rng.getrandbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


@dataclass
class Event:
    """One thing that happened: a WebSocket message for an order and/or a webhook envelope."""

    order_id: str | None = None
    ws_message: dict[str, Any] | None = None
    ws_index: int = -1  # message index, so a socket that saw a snapshot skips the repeat
    envelope: dict[str, Any] | None = None


@dataclass(eq=False)  # hashed by identity: one per socket
class Subscriber:
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    seen: int = 0  # messages already sent from the snapshot at connect time


@dataclass
class WebhookAttempt:
    """One delivery attempt, kept for tests and the operator (never the secret)."""

    event_id: str
    event_type: str
    attempt: int
    status: int | None  # HTTP status, None when the connection failed
    error: str | None = None


class EventHub:
    """Fans events out on the server's loop: to sockets of the order and to the webhook URL."""

    def __init__(
        self,
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
        retry_delays: Sequence[float],
        pause_after: int,
        clock: Callable[[], float],
        new_delivery_id: Callable[[], str],
    ) -> None:
        if webhook_url and not webhook_secret:
            raise ValueError("a webhook_url needs a webhook_secret to sign with")
        self.webhook_url = webhook_url
        self._secret = webhook_secret
        self._retry_delays = tuple(retry_delays)
        self._pause_after = pause_after
        self._clock = clock
        self._new_delivery_id = new_delivery_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[Event] = []
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.consecutive_failures = 0
        self.paused = False
        self.attempts: list[WebhookAttempt] = []

    # --- lifecycle (called on the server's loop by the app lifespan) ---

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, follow_redirects=False)
        pending, self._pending = self._pending, []
        for event in pending:
            self._dispatch(event)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        self._loop = None

    # --- any thread ---

    def publish(self, events: list[Event]) -> None:
        """Hand events to the loop; kept until the loop starts if it has not yet."""
        loop = self._loop
        for event in events:
            if loop is None or loop.is_closed():
                self._pending.append(event)
            else:
                loop.call_soon_threadsafe(self._dispatch, event)

    # --- on the loop ---

    def subscribe(self, order_id: str, seen: int) -> Subscriber:
        subscriber = Subscriber(seen=seen)
        self._subscribers[order_id].add(subscriber)
        return subscriber

    def unsubscribe(self, order_id: str, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(order_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[order_id]

    def _dispatch(self, event: Event) -> None:
        if event.ws_message is not None and event.order_id is not None:
            for subscriber in list(self._subscribers.get(event.order_id, ())):
                if event.ws_index < 0 or event.ws_index >= subscriber.seen:
                    subscriber.queue.put_nowait(event.ws_message)
        if event.envelope is not None and self.webhook_url:
            task = asyncio.get_running_loop().create_task(self._deliver(event.envelope))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, envelope: dict[str, Any]) -> None:
        """POST one envelope; on failure retry after each delay, then give up on it."""
        body = json.dumps(envelope, separators=(",", ":")).encode()
        for attempt, delay in enumerate((0.0, *self._retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            if self.paused:
                return
            if await self._attempt(envelope, body, attempt):
                return

    async def _attempt(self, envelope: dict[str, Any], body: bytes, attempt: int) -> bool:
        assert self._client is not None and self.webhook_url and self._secret
        headers = sign(
            body,
            self._secret,
            timestamp=int(self._clock()),
            delivery_id=self._new_delivery_id(),
        )
        headers["Content-Type"] = "application/json"
        headers["User-Agent"] = "vsms-sandbox-webhooks"
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(self.webhook_url, content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        ok = status is not None and 200 <= status < 300
        kind = envelope["type"]
        self.attempts.append(WebhookAttempt(envelope["id"], kind, attempt, status, error))
        if ok:
            self.consecutive_failures = 0
            return True
        self.consecutive_failures += 1
        log.warning("webhook %s attempt %d failed: %s", envelope["type"], attempt, error or status)
        if self.consecutive_failures >= self._pause_after:
            self.paused = True
            log.warning("webhooks paused after %d consecutive failures", self.consecutive_failures)
        return False
