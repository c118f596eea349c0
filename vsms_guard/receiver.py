"""A reference webhook receiver: an ASGI (Starlette) app and the SQLite store it writes to.

The app reads the raw body before anything parses it, verifies it, deduplicates on the envelope
id, stores the event (SMS text apart from metadata, so retention can delete it alone) and hands
it to a callback. Answers: 200 stored, 200 ``duplicate`` for a replay (not reprocessed), 400 for
a bad signature or envelope, 413 for an oversized body, 503/500 only for our own failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from vsms_guard import retention
from vsms_guard.errors import GuardError
from vsms_guard.webhooks import RAW_BODY_HINT, Event, Verifier, WebhookError, clock

DEFAULT_PATH = "/webhooks/virtualsms"
MAX_BODY = 256 * 1024  # VirtualSMS events are a few hundred bytes

log = logging.getLogger("vsms_guard.receiver")

Callback = Callable[[Event], Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    stored_at REAL NOT NULL,
    delivery_id TEXT,
    order_id TEXT,
    test INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL,
    body_purged_at REAL
);
CREATE INDEX IF NOT EXISTS events_stored_at ON events(stored_at);
CREATE TABLE IF NOT EXISTS sms_bodies (
    event_id TEXT PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    stored_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sms_bodies_stored_at ON sms_bodies(stored_at);
CREATE TABLE IF NOT EXISTS access_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT,
    delivery_id TEXT,
    event_id TEXT,
    client TEXT
);
CREATE INDEX IF NOT EXISTS access_log_at ON access_log(at);
"""


class EventStore:
    """Verified events in SQLite. SMS text (the policy's ``sms_body_fields`` of ``data``) lives
    in ``sms_bodies``; everything else in ``events``. Deleted rows are overwritten
    (``secure_delete``) so a purged SMS body does not linger in free pages or the WAL."""

    def __init__(self, path: str | Path, *, sms_body_fields: Iterable[str] | None = None) -> None:
        self.path = Path(path)
        fields = sms_body_fields or retention.load_policy().sms_body_fields
        self.sms_body_fields = tuple(fields)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise GuardError(f"{self.path}: cannot open event store: {exc}") from None
        self._lock = threading.Lock()

    def save(self, event: Event, *, now: float | None = None) -> bool:
        """Store ``event``; False when its id is already stored (nothing is overwritten)."""
        current = clock() if now is None else now
        data = dict(event.data)
        body = {name: data.pop(name) for name in self.sms_body_fields if name in data}
        metadata = dict(event.payload, data=data)
        order_id = data.get("order_id")
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO events (id, type, created_at, stored_at, delivery_id,"
                " order_id, test, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.id,
                    event.type,
                    event.created_at,
                    current,
                    event.delivery_id,
                    order_id if isinstance(order_id, str) else None,
                    int(event.test),
                    json.dumps(metadata, separators=(",", ":")),
                ),
            )
            if cursor.rowcount != 1:
                return False
            if body:
                self._db.execute(
                    "INSERT INTO sms_bodies (event_id, stored_at, body) VALUES (?, ?, ?)",
                    (event.id, current, json.dumps(body, separators=(",", ":"))),
                )
            return True

    def delete(self, event_id: str) -> None:
        """Remove one event and its body (used when the callback failed, so a retry reprocesses)."""
        with self._lock:
            self._db.execute("DELETE FROM events WHERE id = ?", (event_id,))

    def get(self, event_id: str) -> dict[str, Any] | None:
        """The stored envelope, with the SMS text merged back while it is still retained."""
        with self._lock:
            row = self._db.execute(
                "SELECT e.metadata, b.body FROM events e LEFT JOIN sms_bodies b"
                " ON b.event_id = e.id WHERE e.id = ?",
                (event_id,),
            ).fetchone()
        if row is None:
            return None
        envelope = json.loads(row[0])
        if row[1] is not None:
            envelope["data"].update(json.loads(row[1]))
        return envelope

    def event_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM events ORDER BY stored_at")]

    def log_access(
        self,
        *,
        method: str,
        path: str,
        status: int,
        reason: str | None = None,
        delivery_id: str | None = None,
        event_id: str | None = None,
        client: str | None = None,
        now: float | None = None,
    ) -> None:
        """One access-log row: no headers, no body, nothing secret."""
        with self._lock:
            self._db.execute(
                "INSERT INTO access_log (at, method, path, status, reason, delivery_id, event_id,"
                " client) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    clock() if now is None else now,
                    method[:16],
                    path[:512],
                    status,
                    reason,
                    delivery_id,
                    event_id,
                    client,
                ),
            )

    def access_log(self) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM access_log ORDER BY id")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]

    def purge_sms_bodies(self, *, before: float, now: float | None = None) -> int:
        """Delete SMS text stored before ``before``; the events' metadata stays (and records
        when its text was purged)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE events SET body_purged_at = ? WHERE id IN"
                " (SELECT event_id FROM sms_bodies WHERE stored_at < ?)",
                (clock() if now is None else now, before),
            )
            return self._db.execute(
                "DELETE FROM sms_bodies WHERE stored_at < ?", (before,)
            ).rowcount

    def purge_access_log(self, *, before: float) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM access_log WHERE at < ?", (before,)).rowcount

    def purge_events(self, *, before: float) -> int:
        """Delete whole events (only when the policy bounds order metadata)."""
        with self._lock:
            return self._db.execute("DELETE FROM events WHERE stored_at < ?", (before,)).rowcount

    def compact(self) -> None:
        """Fold the WAL back into the file so deleted rows leave no copy behind."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def verify_raw_body(
    verifier: Verifier, body: Any, headers: Any, *, now: float | None = None
) -> Event:
    """Verify inside Flask, Django, DRF or FastAPI handlers.

    The raw-body pitfall: the signature covers the exact bytes sent. ``request.json()``,
    Flask ``request.json``/``request.form``, DRF ``request.data`` and pydantic models hand over
    a parsed and re-serialised body whose bytes differ, so every delivery fails as a mismatch.
    Read the raw bytes first: Flask ``request.get_data()``, Django/DRF ``request.body``,
    FastAPI/Starlette ``await request.body()``. This helper refuses parsed objects outright
    and adds that hint to a mismatch.
    """
    if not isinstance(body, bytes | bytearray | memoryview | str):
        raise WebhookError(WebhookError.NOT_RAW_BODY, RAW_BODY_HINT)
    try:
        return verifier.verify(body, headers, now=now)
    except WebhookError as exc:
        if exc.reason == WebhookError.MISMATCH:
            raise WebhookError(
                WebhookError.MISMATCH, "if the secret is right: " + RAW_BODY_HINT
            ) from None
        raise


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it exceeds ``limit`` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _call(callback: Callback, event: Event) -> None:
    if inspect.iscoroutinefunction(callback):
        await callback(event)
    else:
        result = await run_in_threadpool(callback, event)
        if inspect.isawaitable(result):
            await result


def create_app(
    verifier: Verifier,
    store: EventStore | None = None,
    *,
    on_event: Callback | None = None,
    path: str = DEFAULT_PATH,
    max_body: int = MAX_BODY,
    policy: retention.RetentionPolicy | None = None,
    purge_interval: float | None = None,
) -> Starlette:
    """The receiver as a Starlette app: ``POST path`` for webhooks, ``GET /health``.

    With a ``store``, the retention purge runs at start-up and then every ``purge_interval``
    seconds (default: the policy's ``[purge] interval``; 0 turns the schedule off).
    """
    if not isinstance(path, str) or not path.startswith("/") or path == "/health":
        raise GuardError(f"webhook path must start with '/' and not be /health, got {path!r:.60}")
    policy = policy or retention.load_policy()
    interval = policy.purge_interval if purge_interval is None else purge_interval

    async def receive(request: Request) -> JSONResponse:
        delivery = request.headers.get("x-virtualsms-delivery", "")[:128] or None
        status, reason, event_id = 200, None, None
        try:
            body = await _read_body(request, max_body)
        except ClientDisconnect:
            return JSONResponse({"error": "client_disconnected"}, status_code=400)
        if body is None:
            status, reason = 413, "body_too_large"
        else:
            status, reason, event_id = await _handle(body, request)
        if store is not None:
            client = request.client.host if request.client else None
            try:
                await run_in_threadpool(
                    store.log_access,
                    method=request.method,
                    path=request.url.path,
                    status=status,
                    reason=reason,
                    delivery_id=delivery,
                    event_id=event_id,
                    client=client,
                )
            except Exception as exc:  # noqa: BLE001 - the answer matters more than its log row
                log.error("access log not written: %s", type(exc).__name__)
        payload = {"status": "ok", "id": event_id} if status == 200 else {"error": reason}
        if reason == WebhookError.REPLAYED:
            payload = {"status": "duplicate", "id": event_id}
        return JSONResponse(payload, status_code=status)

    async def _handle(body: bytes, request: Request) -> tuple[int, str | None, str | None]:
        try:
            event = await run_in_threadpool(verifier.verify, body, request.headers)
        except WebhookError as exc:
            if exc.reason == WebhookError.REPLAYED:
                return 200, exc.reason, exc.event_id
            return 400, exc.reason, None
        except Exception as exc:  # noqa: BLE001 - replay store down: our failure, retry later
            log.error("replay store unavailable: %s", type(exc).__name__)
            return 503, "replay_store_unavailable", None
        try:
            if store is not None and not await run_in_threadpool(store.save, event):
                return 200, WebhookError.REPLAYED, event.id
            if on_event is not None:
                await _call(on_event, event)
        except Exception as exc:  # noqa: BLE001 - undo, so the vendor's retry reprocesses it
            log.error("webhook %s not processed: %s", event.id, type(exc).__name__)
            await _undo(event.id)
            return 500, "handler_failed", event.id
        return 200, None, event.id

    async def _undo(event_id: str) -> None:
        """Forget a delivery we failed to process. Each step runs even if the one before failed:
        a replay id left behind would answer the vendor's retry "duplicate" and lose the event."""
        steps = [store.delete] if store is not None else []
        if verifier.replay_store is not None:
            steps.append(verifier.replay_store.discard)
        for step in steps:
            try:
                await run_in_threadpool(step, event_id)
            except Exception as exc:  # noqa: BLE001 - keep undoing; the answer is 500 anyway
                log.error("undo of webhook %s failed: %s", event_id, type(exc).__name__)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def purge_forever() -> None:
        assert store is not None
        while True:
            try:
                result = await run_in_threadpool(
                    retention.purge, store, policy, replay_store=verifier.replay_store
                )
                log.info("retention purge removed %d rows", result.total)
            except Exception as exc:  # noqa: BLE001 - keep serving; try again next round
                log.error("retention purge failed: %s", type(exc).__name__)
            await asyncio.sleep(interval)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(purge_forever()) if store is not None and interval else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    routes = [Route(path, receive, methods=["POST"]), Route("/health", health, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)
