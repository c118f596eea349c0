"""The receiver on a real socket (uvicorn on 127.0.0.1, port 0) driven by a real HTTP client."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn

from vsms_guard.errors import GuardError
from vsms_guard.receiver import EventStore, create_app, verify_raw_body
from vsms_guard.replay import SQLiteReplayStore
from vsms_guard.retention import load_policy
from vsms_guard.webhooks import SIGNATURE_HEADER, Event, Verifier, WebhookError, clock, sign

SECRET = "whsec_" + "Rc5" * 10
URL_PATH = "/webhooks/virtualsms"


def envelope(n: int = 0, *, created: float | None = None, code: str = "731904") -> bytes:
    stamp = datetime.fromtimestamp(clock() if created is None else created, UTC).isoformat()
    return json.dumps(
        {
            "id": f"evt_01JRECEIVERTEST{n:011d}",
            "type": "sms.received",
            "created_at": stamp,
            "data": {
                "order_id": f"order-{n}",
                "phone_number": "+447700900555",
                "service": "whatsapp",
                "country": "GB",
                "code": code,
                "message": f"Your WhatsApp code: {code}",
                "sender": "WhatsApp",
                "received_at": stamp,
                "test": False,
            },
        }
    ).encode()


@contextmanager
def serving(app) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free 127.0.0.1 port; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def parts(tmp_path):
    db = tmp_path / "events.sqlite"
    store = EventStore(db)
    replay = SQLiteReplayStore(db)
    verifier = Verifier(SECRET, replay_store=replay)
    yield verifier, store
    replay.close()
    store.close()


def post(client: httpx.Client, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return client.post(URL_PATH, content=body, headers=headers)


def test_verifies_stores_calls_back_and_dedupes(parts):
    verifier, store = parts
    seen: list[Event] = []
    app = create_app(verifier, store, on_event=seen.append, purge_interval=0)
    body = envelope(1)
    with serving(app) as url, httpx.Client(base_url=url) as client:
        first = post(client, body, sign(body, SECRET, delivery_id="dlv_1"))
        again = post(client, body, sign(body, SECRET, delivery_id="dlv_2"))
        health = client.get("/health")
    assert first.status_code == 200 and first.json() == {"status": "ok", "id": seen[0].id}
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "id": seen[0].id}
    assert health.json() == {"status": "ok"}
    assert len(seen) == 1 and seen[0].data["code"] == "731904"
    stored = store.get(seen[0].id)
    assert stored["data"]["message"] == "Your WhatsApp code: 731904"
    assert stored["data"]["order_id"] == "order-1"
    log = store.access_log()
    assert [(r["status"], r["reason"], r["delivery_id"]) for r in log] == [
        (200, None, "dlv_1"),
        (200, "replayed", "dlv_2"),
    ]


def test_async_callback(parts):
    verifier, store = parts
    seen: list[str] = []

    async def handler(event: Event) -> None:
        seen.append(event.id)

    body = envelope(2)
    with serving(create_app(verifier, store, on_event=handler, purge_interval=0)) as url:
        response = httpx.post(url + URL_PATH, content=body, headers=sign(body, SECRET))
    assert response.status_code == 200 and seen == [json.loads(body)["id"]]


def test_bad_input_is_400_or_413_never_500(parts):
    verifier, store = parts
    seen: list[Event] = []
    app = create_app(verifier, store, on_event=seen.append, purge_interval=0, max_body=4096)
    body = envelope(3)
    good = sign(body, SECRET)
    cases = [
        (body, {**good, SIGNATURE_HEADER: "sha256=" + "0" * 64}, 400, "mismatch"),
        (body, {}, 400, "missing_signature"),
        (body, {**good, SIGNATURE_HEADER: "zz"}, 400, "malformed_signature"),
        (body, {**good, SIGNATURE_HEADER: "é".encode() * 32}, 400, "malformed_signature"),
        (body, sign(body, "whsec_wrong_secret_value"), 400, "mismatch"),
        (body + b" ", good, 400, "mismatch"),
        (b"\xff\xfe", sign(b"\xff\xfe", SECRET), 400, "not_json"),
        (b"", sign(b"", SECRET), 400, "not_json"),
        (b"{}", sign(b"{}", SECRET), 400, "bad_envelope"),
        (b"[1, 2]", sign(b"[1, 2]", SECRET), 400, "bad_envelope"),  # JSON, wrong shape
        (body, sign(body, SECRET, timestamp=int(clock()) - 3600), 400, "stale"),
        (body, sign(body, SECRET, timestamp=int(clock()) + 3600), 400, "future"),
        (b"x" * 5000, sign(b"x" * 5000, SECRET), 413, "body_too_large"),
    ]
    with serving(app) as url, httpx.Client(base_url=url) as client:
        for content, headers, status, reason in cases:
            response = post(client, content, headers)
            assert (response.status_code, response.json()) == (status, {"error": reason})
        huge = client.post(URL_PATH, content=body, headers={**good, "X-Padding": "a" * 60_000})
        assert huge.status_code < 500
        assert client.get(URL_PATH).status_code == 405
        chunked = client.post(URL_PATH, content=iter([b"x" * 3000, b"x" * 3000]), headers=good)
        assert chunked.status_code == 413
        # after all that, the real delivery still goes through (nothing consumed its id)
        assert post(client, body, good).status_code == 200
    assert len(seen) == 1
    assert all(row["status"] != 500 for row in store.access_log())


def test_failed_callback_is_500_and_the_retry_reprocesses(parts):
    verifier, store = parts
    calls: list[str] = []

    def flaky(event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("database down")

    body = envelope(4)
    with serving(create_app(verifier, store, on_event=flaky, purge_interval=0)) as url:
        with httpx.Client(base_url=url) as client:
            first = post(client, body, sign(body, SECRET))
            assert store.get(json.loads(body)["id"]) is None  # undone: nothing half-stored
            retry = post(client, body, sign(body, SECRET))
    assert (first.status_code, first.json()["error"]) == (500, "handler_failed")
    assert retry.status_code == 200 and retry.json()["status"] == "ok"
    assert len(calls) == 2
    assert store.get(calls[0]) is not None


def test_store_alone_dedupes_when_replay_ids_were_lost(tmp_path):
    """Second line of defence: the events table refuses an id it already holds."""
    store = EventStore(tmp_path / "e.sqlite")
    seen: list[Event] = []
    body = envelope(5)
    with serving(create_app(Verifier(SECRET), store, on_event=seen.append, purge_interval=0)) as u:
        responses = [httpx.post(u + URL_PATH, content=body, headers=sign(body, SECRET))]
        responses.append(httpx.post(u + URL_PATH, content=body, headers=sign(body, SECRET)))
    assert [r.json()["status"] for r in responses] == ["ok", "duplicate"]
    assert len(seen) == 1
    store.close()


def test_receiver_runs_the_retention_purge_on_its_schedule(parts):
    verifier, store = parts
    policy = load_policy()
    old = Event(
        id="evt_old",
        type="sms.received",
        created_at="2020-01-01T00:00:00Z",
        data={"order_id": "o-old", "message": "Your code 111222", "code": "111222"},
        payload={"id": "evt_old", "type": "sms.received", "created_at": "2020-01-01T00:00:00Z"},
    )
    store.save(old, now=clock() - policy.sms_body - 1)
    with serving(create_app(verifier, store, purge_interval=3600)):
        deadline = time.monotonic() + 10
        while "message" in store.get("evt_old")["data"]:
            assert time.monotonic() < deadline, "the scheduled purge did not run"
            time.sleep(0.02)
    kept = store.get("evt_old")
    assert kept["data"] == {"order_id": "o-old"} and kept["id"] == "evt_old"


def test_raw_body_helper_refuses_parsed_bodies_and_explains_mismatch():
    verifier = Verifier(SECRET)
    body = envelope(6)
    headers = sign(body, SECRET)
    assert verify_raw_body(verifier, body, headers).id.startswith("evt_")
    with pytest.raises(WebhookError) as parsed:
        verify_raw_body(verifier, json.loads(body), headers)
    assert parsed.value.reason == "not_raw_body" and "request.get_data()" in str(parsed.value)
    reserialised = json.dumps(json.loads(body), indent=2).encode()
    with pytest.raises(WebhookError) as mismatch:
        verify_raw_body(verifier, reserialised, headers)
    assert mismatch.value.reason == "mismatch" and "raw bytes" in str(mismatch.value)


def test_unreachable_replay_store_is_503_so_the_vendor_retries(tmp_path):
    from vsms_guard.replay import RedisReplayStore

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = EventStore(tmp_path / "e.sqlite")
    replay = RedisReplayStore(f"redis://127.0.0.1:{port}/0", timeout=2)
    seen: list[Event] = []
    app = create_app(
        Verifier(SECRET, replay_store=replay), store, on_event=seen.append, purge_interval=0
    )
    body = envelope(7)
    with serving(app) as url:
        response = httpx.post(url + URL_PATH, content=body, headers=sign(body, SECRET))
    assert (response.status_code, response.json()) == (503, {"error": "replay_store_unavailable"})
    assert seen == [] and store.event_ids() == []
    store.close()


class BrokenStore(EventStore):
    """The real store, with writes failing as on a full disk (fault injection, not a mock)."""

    def save(self, event: Event, *, now: float | None = None) -> bool:
        raise sqlite3.OperationalError("database or disk is full")

    def delete(self, event_id: str) -> None:
        raise sqlite3.OperationalError("database or disk is full")


def test_a_failed_store_still_releases_the_replay_id_so_the_retry_is_not_lost(tmp_path):
    replay = SQLiteReplayStore(tmp_path / "replay.sqlite")
    verifier = Verifier(SECRET, replay_store=replay)
    body = envelope(8)
    broken = BrokenStore(tmp_path / "broken.sqlite")
    with serving(create_app(verifier, broken, purge_interval=0)) as url:
        failed = httpx.post(url + URL_PATH, content=body, headers=sign(body, SECRET))
    assert (failed.status_code, failed.json()) == (500, {"error": "handler_failed"})
    store, seen = EventStore(tmp_path / "events.sqlite"), []
    with serving(create_app(verifier, store, on_event=seen.append, purge_interval=0)) as url:
        retry = httpx.post(url + URL_PATH, content=body, headers=sign(body, SECRET))
    assert retry.json()["status"] == "ok" and [e.id for e in seen] == [json.loads(body)["id"]]
    for made in (broken, store, replay):
        made.close()


@pytest.mark.parametrize("path", ["nopath", "", "/health"])
def test_a_webhook_path_starlette_cannot_route_is_a_clear_error(parts, path):
    """Was Starlette's AssertionError ("Routed paths must start with '/'"): an internal error."""
    verifier, store = parts
    with pytest.raises(GuardError, match="must start with '/'"):
        create_app(verifier, store, path=path, purge_interval=0)
