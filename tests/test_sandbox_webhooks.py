"""Signed webhooks from the sandbox to a real local receiver, verified with
``vsms_guard.webhooks``: envelope shape, every event type, retries and the pause."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mcp_server.sandbox import ManualClock, Sandbox, running_sandbox
from vsms_guard import webhooks
from vsms_guard.replay import MemoryReplayStore

SECRET = "whsec_sandbox-test-secret"  # not a vsms_ key; a test-only signing secret
ENVELOPE_ID = re.compile(r"evt_[0-9A-HJKMNP-TV-Z]{26}")
WAIT = 10.0  # upper bound for asynchronous deliveries; a missing delivery fails, never hangs


class Receiver:
    """A local HTTP endpoint that records raw bodies and headers, answering scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((body, dict(self.headers.items())))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a webhook"
        time.sleep(0.01)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def start(receiver: Receiver, clock: ManualClock, **kwargs):
    return running_sandbox(
        sms_delay=None, webhook_url=receiver.url, webhook_secret=SECRET, clock=clock, **kwargs
    )


def buy(base_url: str, sb: Sandbox, key: str) -> dict:
    country = next(c for (s, c), o in sb.catalog.offers.items() if s == "whatsapp" and o.count)
    response = httpx.post(
        f"{base_url}/api/v1/customer/purchase",
        json={"service": "whatsapp", "country": country},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 200
    return response.json()


def events_of(receiver: Receiver) -> list[webhooks.Event]:
    """Verify each delivery as of the moment it was sent (the test clock jumps between them)."""
    store = MemoryReplayStore()
    return [
        webhooks.verify(
            body, headers, SECRET, now=float(headers["X-VirtualSMS-Timestamp"]), replay_store=store
        )
        for body, headers in receiver.received
    ]


def test_sms_received_envelope_is_signed_and_complete(receiver, clock):
    with start(receiver, clock) as (sb, base_url):
        key = sb.create_account(10.0)
        order = buy(base_url, sb, key)
        sb.deliver_sms(order["order_id"], "Your WhatsApp code: 123456", sender="WhatsApp")
        wait_until(lambda: len(receiver.received) == 1)

    body, headers = receiver.received[0]
    assert headers["X-VirtualSMS-Signature"].startswith("sha256=")
    assert headers["X-VirtualSMS-Timestamp"] == str(int(clock()))
    assert headers["X-VirtualSMS-Delivery"].startswith("dlv_")
    assert headers["Content-Type"] == "application/json"
    [event] = events_of(receiver)
    assert ENVELOPE_ID.fullmatch(event.id)
    assert event.type == "sms.received"
    assert datetime.fromisoformat(event.created_at).timestamp() == pytest.approx(clock(), abs=0.01)
    assert event.data == {
        "order_id": order["order_id"],
        "phone_number": order["phone_number"],
        "service": "whatsapp",
        "country": order["country"],
        "code": "123456",
        "message": "Your WhatsApp code: 123456",
        "sender": "WhatsApp",
        "received_at": event.created_at,
        "test": False,
    }
    with pytest.raises(webhooks.WebhookError) as wrong:
        webhooks.verify(body, headers, "whsec_some-other-secret", now=clock())
    assert wrong.value.reason == webhooks.WebhookError.MISMATCH
    assert SECRET not in repr(sb.webhook_attempts)


def test_a_replayed_delivery_is_caught_by_the_envelope_id(receiver, clock):
    with start(receiver, clock) as (sb, base_url):
        key = sb.create_account(10.0)
        sb.deliver_sms(buy(base_url, sb, key)["order_id"], "code 5555")
        wait_until(lambda: len(receiver.received) == 1)
    body, headers = receiver.received[0]
    store = MemoryReplayStore()
    webhooks.verify(body, headers, SECRET, now=clock(), replay_store=store)
    with pytest.raises(webhooks.WebhookError) as replay:
        webhooks.verify(body, headers, SECRET, now=clock(), replay_store=store)
    assert replay.value.reason == webhooks.WebhookError.REPLAYED


def test_order_and_balance_events(receiver, clock):
    with start(receiver, clock, hold_seconds=10) as (sb, base_url):
        key = sb.create_account(1.2)
        client = httpx.Client(base_url=base_url, headers={"X-API-Key": key})
        cancelled = buy(base_url, sb, key)  # 1.2 - price < 1.0 USD: balance.low
        swapped = buy(base_url, sb, key)
        expired = buy(base_url, sb, key)
        clock.advance(10)
        assert client.post(f"/api/v1/customer/cancel/{cancelled['order_id']}").status_code == 200
        assert client.post(f"/api/v1/customer/swap/{swapped['order_id']}").status_code == 200
        clock.advance(sb.order_ttl)
        client.get("/api/v1/customer/balance")
        client.close()
        wait_until(lambda: len(receiver.received) >= 5)

    by_type: dict[str, list[webhooks.Event]] = {}
    for event in events_of(receiver):
        by_type.setdefault(event.type, []).append(event)
    assert set(by_type) == {"balance.low", "order.cancelled", "order.swapped", "order.expired"}
    [low] = by_type["balance.low"]
    assert low.data["balance_usd"] < low.data["threshold_usd"] == 1.0
    [cancel] = by_type["order.cancelled"]
    assert cancel.data["order_id"] == cancelled["order_id"] and cancel.data["refunded"] is True
    [swap] = by_type["order.swapped"]
    assert swap.data["previous_phone_number"] == swapped["phone_number"]
    assert swap.data["phone_number"] != swapped["phone_number"]
    assert {e.data["order_id"] for e in by_type["order.expired"]} == {
        swapped["order_id"],
        expired["order_id"],
    }
    assert all(e.data["test"] is False for events in by_type.values() for e in events)


def test_failed_delivery_is_retried_with_the_same_envelope(clock):
    with Receiver(statuses=[500, 503]) as receiver:
        with start(receiver, clock, webhook_retry_delays=(0.05, 0.05, 0.05)) as (sb, base_url):
            key = sb.create_account(10.0)
            sb.deliver_sms(buy(base_url, sb, key)["order_id"], "code 4444")
            wait_until(lambda: len(sb.webhook_attempts) == 3)
            attempts = list(sb.webhook_attempts)
    assert [(a.attempt, a.status) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    bodies = {body for body, _ in receiver.received}
    assert len(bodies) == 1  # the same signed envelope every time
    deliveries = {headers["X-VirtualSMS-Delivery"] for _, headers in receiver.received}
    assert len(deliveries) == 3
    body, headers = receiver.received[-1]
    assert webhooks.verify(body, headers, SECRET, now=clock()).type == "sms.received"


def test_delivery_pauses_after_consecutive_failures(clock):
    with Receiver(statuses=[500] * 100) as receiver:
        kwargs = {"webhook_retry_delays": (0.01,) * 5, "webhook_pause_after": 4}
        with start(receiver, clock, **kwargs) as (sb, base_url):
            key = sb.create_account(10.0)
            sb.deliver_sms(buy(base_url, sb, key)["order_id"], "code 1234")
            wait_until(lambda: sb.hub.paused)
            sb.deliver_sms(buy(base_url, sb, key)["order_id"], "code 5678")
            sent = len(receiver.received)
            time.sleep(0.2)  # give a wrongly unpaused sender the chance to post
            assert len(receiver.received) == sent == 4


def test_unreachable_receiver_is_recorded_as_a_failure(clock):
    dead = Receiver()  # never started, and closed: nothing listens on its port
    dead.server.server_close()
    with running_sandbox(
        sms_delay=None,
        webhook_url=dead.url,
        webhook_secret=SECRET,
        clock=clock,
        webhook_retry_delays=(),
    ) as (sb, base_url):
        key = sb.create_account(10.0)
        sb.deliver_sms(buy(base_url, sb, key)["order_id"], "code 9999")
        wait_until(lambda: len(sb.webhook_attempts) == 1)
    [attempt] = sb.webhook_attempts
    assert attempt.status is None and attempt.error == "ConnectError"


def test_a_webhook_url_needs_a_secret():
    with pytest.raises(ValueError, match="webhook_secret"):
        Sandbox(webhook_url="http://127.0.0.1:9/hooks")
