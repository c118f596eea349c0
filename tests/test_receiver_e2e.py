"""End to end: the MCP server's sandbox backend sends real signed webhooks to our receiver.

Both run under uvicorn on 127.0.0.1 (port 0); the purchase goes through the sandbox's REST API,
the SMS arrives after ``sms_delay`` and the sandbox POSTs a signed ``sms.received``.
"""

from __future__ import annotations

import time

import httpx
import pytest

from mcp_server.sandbox.server import running_sandbox
from tests.test_receiver import serving
from vsms_guard.receiver import DEFAULT_PATH, EventStore, create_app
from vsms_guard.replay import SQLiteReplayStore
from vsms_guard.webhooks import Event, Verifier

SECRET = "whsec_" + "Sb9" * 10


def wait_for(condition, what: str, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.slow
def test_sandbox_sms_webhook_is_verified_and_stored(tmp_path):
    db = tmp_path / "events.sqlite"
    store, replay = EventStore(db), SQLiteReplayStore(db)
    received: list[Event] = []
    app = create_app(
        Verifier(SECRET, replay_store=replay), store, on_event=received.append, purge_interval=0
    )
    with serving(app) as receiver_url:
        with running_sandbox(
            webhook_url=receiver_url + DEFAULT_PATH, webhook_secret=SECRET, sms_delay=0.2
        ) as (sandbox, api_url):
            key = sandbox.create_account(balance_usd=20.0)
            with httpx.Client(base_url=api_url, headers={"X-API-Key": key}) as api:
                catalog = api.get("/api/v1/catalog/countries", params={"service": "whatsapp"})
                country = next(c["id"] for c in catalog.json()["countries"] if c["count"] > 0)
                order = api.post(
                    "/api/v1/customer/purchase", json={"service": "whatsapp", "country": country}
                )
                assert order.status_code == 200, order.text
                order_id = order.json()["order_id"]
                wait_for(lambda: any(e.type == "sms.received" for e in received), "the webhook")
                sms = api.get(f"/api/v1/customer/order/{order_id}").json()
            attempts = sandbox.webhook_attempts
    event = next(e for e in received if e.type == "sms.received")
    assert event.id.startswith("evt_") and len(event.id) == 30
    assert event.delivery_id and event.delivery_id.startswith("dlv_")
    assert event.data["order_id"] == order_id and event.data["country"] == country
    assert event.data["message"] == sms["messages"][0]["content"]
    stored = store.get(event.id)
    assert stored["data"]["message"] == event.data["message"]
    assert stored["data"]["code"] == event.data["code"]
    assert [a.status for a in attempts if a.event_id == event.id] == [200]
    assert all(row["status"] == 200 for row in store.access_log())
    replay.close()
    store.close()


@pytest.mark.slow
def test_sandbox_webhooks_signed_with_an_unknown_secret_are_refused(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    received: list[Event] = []
    app = create_app(Verifier(SECRET), store, on_event=received.append, purge_interval=0)
    with serving(app) as receiver_url:
        with running_sandbox(
            webhook_url=receiver_url + DEFAULT_PATH,
            webhook_secret="whsec_" + "Xx1" * 10,
            sms_delay=0.05,
            webhook_retry_delays=(),
        ) as (sandbox, api_url):
            key = sandbox.create_account(balance_usd=20.0)
            with httpx.Client(base_url=api_url, headers={"X-API-Key": key}) as api:
                catalog = api.get("/api/v1/catalog/countries", params={"service": "telegram"})
                country = next(c["id"] for c in catalog.json()["countries"] if c["count"] > 0)
                api.post(
                    "/api/v1/customer/purchase", json={"service": "telegram", "country": country}
                )
            wait_for(lambda: sandbox.webhook_attempts, "a delivery attempt")
            attempts = sandbox.webhook_attempts
    assert attempts and all(a.status == 400 for a in attempts)
    assert received == [] and store.event_ids() == []
    assert {row["reason"] for row in store.access_log()} == {"mismatch"}
    store.close()
