"""The sandbox's web face: the REST API of FACTS §1, the order WebSocket and ``/health``.

A thin mapping from HTTP to ``backend.Sandbox``; every rule lives there. The API key is read only
from the ``X-API-Key`` header: a key in a URL query is refused on every route, and
``Sandbox.requests`` records paths with such values masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from mcp_server.sandbox import events
from mcp_server.sandbox.model import ACTIVE, Account, ApiError

if TYPE_CHECKING:
    from mcp_server.sandbox.backend import Sandbox

TICK_SECONDS = 0.02  # how often due SMS and expiries are checked
MAX_BODY = 64 * 1024
KEY_PARAMS = {"apikey", "xapikey"}  # query names (lower case, no - or _) that carry a key
HEALTH = {
    "status": "ok",
    "service": "vsms-sandbox",
    "sandbox": True,
    "note": "local test double of the VirtualSMS API; not the VirtualSMS service",
}

Public = Callable[[Request], Any]
Private = Callable[[Request, Account, bytes], Any]  # request, account, raw body


def _is_key_param(name: str) -> bool:
    return name.lower().replace("-", "").replace("_", "") in KEY_PARAMS


def _refuse_key_in_url(query: str) -> None:
    if any(_is_key_param(name) for name, _ in parse_qsl(query, keep_blank_values=True)):
        raise ApiError(
            400,
            "key_in_url",
            "an API key in the URL is refused: send it in the X-API-Key header",
        )


def _arg(request: Request, name: str) -> str | None:
    return request.query_params.get(name) or None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise ApiError(400, "missing_params", "body must be JSON {service, country}") from None


def build_app(sb: Sandbox) -> ASGIApp:
    """The ASGI app for ``sb``; its lifespan runs the ticker and the webhook sender."""

    def endpoint(op: Private, *, auth: bool) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                _refuse_key_in_url(request.url.query)
                failure = sb.failure_for(request.url.path)
                if failure is not None and not failure.applied:
                    raise ApiError(failure.status, "internal_error", "injected sandbox failure")
                account = sb.authenticate(request.headers.get("x-api-key")) if auth else None
                raw = await request.body()
                if len(raw) > MAX_BODY:
                    raise ApiError(413, "payload_too_large", f"body over {MAX_BODY} bytes")
                result = op(request, account, raw)  # type: ignore[arg-type]
                if failure is not None:  # applied, then the answer is "lost"
                    raise ApiError(failure.status, "internal_error", "injected sandbox failure")
            except ApiError as err:
                return JSONResponse(err.body(), err.status, headers=err.headers)
            code, body = result if isinstance(result, tuple) else (200, result)
            return JSONResponse(body, code)

        return handle

    def public(op: Public) -> Callable[[Request], Awaitable[Response]]:
        return endpoint(lambda request, _account, _raw: op(request), auth=False)

    def private(op: Private) -> Callable[[Request], Awaitable[Response]]:
        return endpoint(op, auth=True)

    async def health(request: Request) -> Response:
        return JSONResponse(HEALTH)

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        name = "method_not_allowed" if code == 405 else "not_found"
        body = {"success": False, "error": name, "message": name.replace("_", " ")}
        return JSONResponse(body, code)

    async def ws_orders(websocket: WebSocket) -> None:
        await _serve_order_socket(sb, websocket)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sb.hub.start()
        ticker = asyncio.get_running_loop().create_task(_tick_forever(sb))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await sb.hub.stop()

    def order_id(request: Request) -> str:
        return request.path_params["order_id"]

    c = "/api/v1/customer"
    post = ["POST"]
    routes = [
        Route("/health", health),
        Route(f"{c}/services", public(lambda r: sb.services())),
        Route(f"{c}/countries", public(lambda r: sb.countries(_arg(r, "service")))),
        Route("/api/v1/price", public(lambda r: sb.price(_arg(r, "service"), _arg(r, "country")))),
        Route(
            "/api/v1/catalog/countries",
            public(lambda r: sb.catalog_countries(_arg(r, "service"))),
        ),
        Route(f"{c}/balance", private(lambda r, a, _: sb.balance_view(a))),
        Route(f"{c}/profile", private(lambda r, a, _: sb.profile(a))),
        Route(f"{c}/transactions", private(lambda r, a, _: sb.transactions(a, r.query_params))),
        Route(f"{c}/orders", private(lambda r, a, _: sb.orders(a, _arg(r, "status")))),
        Route(f"{c}/order/{{order_id}}", private(lambda r, a, _: sb.get_order(a, order_id(r)))),
        Route(
            f"{c}/purchase",
            private(
                lambda r, a, raw: sb.purchase(a, _json(raw), r.headers.get("x-idempotency-key"))
            ),
            methods=post,
        ),
        Route(
            f"{c}/cancel/{{order_id}}",
            private(lambda r, a, _: sb.cancel(a, order_id(r))),
            methods=post,
        ),
        Route(
            f"{c}/swap/{{order_id}}", private(lambda r, a, _: sb.swap(a, order_id(r))), methods=post
        ),
        WebSocketRoute("/ws/orders", ws_orders),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
    return _RecordRequests(app, sb)


class _RecordRequests:
    """ASGI wrapper that appends ``(method, path?query)`` to ``sb.requests``, keys masked."""

    def __init__(self, app: ASGIApp, sb: Sandbox) -> None:
        self.app = app
        self.sb = sb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            method = scope.get("method", "WS") if scope["type"] == "http" else "WS"
            query = scope.get("query_string", b"").decode("latin-1")
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(_is_key_param(name) for name, _ in pairs):
                query = urlencode([(n, "[redacted]" if _is_key_param(n) else v) for n, v in pairs])
            path = scope["path"] + (f"?{query}" if query else "")
            self.sb.record(method, path)
        await self.app(scope, receive, send)


async def _tick_forever(sb: Sandbox) -> None:
    while True:
        sb.tick()
        await asyncio.sleep(TICK_SECONDS)


async def _deny(websocket: WebSocket, status: int, code: str, message: str) -> None:
    """Refuse the handshake with an HTTP answer that says why (close 1008 if unsupported)."""
    body = {"success": False, "error": code, "message": message}
    try:
        await websocket.send_denial_response(JSONResponse(body, status))
    except RuntimeError:
        await websocket.close(code=1008, reason=code)


async def _serve_order_socket(sb: Sandbox, websocket: WebSocket) -> None:
    """Push ``{"type":"sms",…}`` for each SMS of the order, ``{"type":"expired"}`` at the end.

    Messages the order already had are sent first, so a client that connects late misses none.
    """
    try:
        _refuse_key_in_url(websocket.url.query)
    except ApiError as err:
        await _deny(websocket, err.status, err.code, err.message)
        return
    order_id = websocket.query_params.get("order_id")
    if not order_id:
        await _deny(websocket, 400, "missing_params", "order_id is required")
        return
    try:
        order, snapshot = sb.ws_snapshot(websocket.headers.get("x-api-key"), order_id)
    except ApiError as err:
        await _deny(websocket, err.status, err.code, err.message)
        return
    subscriber = sb.hub.subscribe(order_id, seen=len(snapshot))
    tasks: set[asyncio.Task[Any]] = set()
    try:
        await websocket.accept()
        for message in snapshot:
            await websocket.send_json(message)
        if order.status == "expired":
            await websocket.send_json({"type": "expired"})
        if order.status not in ACTIVE:
            await websocket.close()
            return
        receiving = asyncio.ensure_future(websocket.receive())
        tasks.add(receiving)
        while True:
            getting = asyncio.ensure_future(subscriber.queue.get())
            tasks.add(getting)
            done, _ = await asyncio.wait({getting, receiving}, return_when=asyncio.FIRST_COMPLETED)
            if receiving in done:
                if receiving.result()["type"] == "websocket.disconnect":
                    return
                tasks.discard(receiving)
                receiving = asyncio.ensure_future(websocket.receive())  # ignore client chatter
                tasks.add(receiving)
            if getting not in done:
                getting.cancel()
                tasks.discard(getting)
                continue
            tasks.discard(getting)
            message = getting.result()
            if message is events.CLOSE:
                await websocket.close()
                return
            await websocket.send_json(message)
            if message.get("type") == "expired":
                await websocket.close()
                return
    except WebSocketDisconnect:
        return
    finally:
        sb.hub.unsubscribe(order_id, subscriber)
        for task in tasks:
            task.cancel()
