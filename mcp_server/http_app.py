"""The StreamableHTTP front: ``/mcp`` (stateless, JSON), ``GET /health``, and its guards.

Guards, outermost first: a key or an upstream URL in the request URL is refused with a 400
that says why (and the query is never logged); ``GET /mcp`` answers 405 (stateless JSON mode
has no event stream to open); a token bucket per client address, whatever key is sent, and one
per key stop a runaway agent (or one inventing a key per request) from burning the backend's
60 requests/minute; the SDK then checks Host/Origin (on by default, allowlists for public
hosts) and bounds the body size.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import parse_qsl

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server.api import Upstream
from mcp_server.server import NAME, build_server
from mcp_server.serving import serving
from mcp_server.settings import Settings
from vsms_guard import __version__, keys

log = logging.getLogger(__name__)

KEY_PARAMS = frozenset({"apikey", "key", "xapikey", "token", "accesstoken", "vsmskey"})
URL_PARAMS = frozenset({"baseurl", "upstream", "apiurl", "apibase", "host", "url"})
MCP_PATH = "/mcp"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
MAX_TRACKED = 10_000


def _param_name(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def query_refusal(query: str) -> str | None:
    """Why a request with this query string is refused, or None. Never echoes the value."""
    if not query:
        return None
    names = {_param_name(name) for name, _ in parse_qsl(query, keep_blank_values=True)}
    if names & KEY_PARAMS or keys.PREFIX in query and keys.contains_key(query):
        return (
            "API keys are not accepted in the URL, where logs and proxies keep them: send the "
            "key in the x-api-key header. Revoke a key that was sent this way."
        )
    if names & URL_PARAMS:
        return "The upstream URL is fixed by the server operator and cannot be set per request."
    return None


class RateLimiter:
    """Token bucket per caller: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, caller: str) -> float | None:
        """None when allowed (one token spent), else the seconds until a token is back."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(caller, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[caller] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_TRACKED:
                self._forget_idle(now)
            return None

    def _forget_idle(self, now: float) -> None:
        full_after = self.capacity / self.rate
        self._buckets = {c: b for c, b in self._buckets.items() if now - b[1] < full_after}


def client_address(scope: Scope) -> str:
    """The peer address of the connection (a proxy in front makes every caller look alike)."""
    client = scope.get("client") or ("unknown", 0)
    return f"ip:{client[0]}"


def caller_id(scope: Scope) -> str:
    """Rate-limit identity: the key's fingerprint, or the client address when anonymous."""
    key = Headers(scope=scope).get("x-api-key", "").strip()
    if key:
        return "key:" + keys.fingerprint(key)
    return client_address(scope)


class Guard:
    """ASGI middleware: query refusal, 405 for GET /mcp, per-address and per-key rate limits
    on /mcp, one safe access-log line."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter | None,
        address_limiter: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.address_limiter = address_limiter

    def _wait(self, scope: Scope) -> tuple[float, str] | None:
        """(seconds, whose limit) when this /mcp request is over a limit, else None."""
        if self.address_limiter is not None:
            wait = self.address_limiter.hit(client_address(scope))
            if wait is not None:
                return wait, "this client address"
        if self.limiter is not None:
            wait = self.limiter.hit(caller_id(scope))
            if wait is not None:
                return wait, "this key"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        reason = query_refusal(scope.get("query_string", b"").decode("latin-1"))
        if reason is not None:
            log.warning("refused %s %s: %s", method, path, reason.split(":")[0])
            body = {"error": "bad_request", "message": reason}
            await JSONResponse(body, status_code=400)(scope, receive, send)
            return
        if method == "GET" and path.rstrip("/") == MCP_PATH:
            log.info("refused %s %s: stateless JSON mode has no event stream", method, path)
            body = {
                "error": "method_not_allowed",
                "message": "This server is stateless (JSON responses): POST MCP requests to /mcp",
            }
            await JSONResponse(body, status_code=405, headers={"Allow": "POST"})(
                scope, receive, send
            )
            return
        limited = self._wait(scope) if path.startswith(MCP_PATH) else None
        if limited is not None:
            wait, whose = limited
            seconds = max(1, int(wait + 0.999))
            log.info("rate limited %s %s (%s)", method, path, whose)
            body = {
                "error": "rate_limited",
                "message": f"Too many requests for {whose}; retry after {seconds} s",
                "retry_after_seconds": seconds,
            }
            response = JSONResponse(body, status_code=429, headers={"Retry-After": str(seconds)})
            await response(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            log.info("%s %s %s", method, path, status)  # path only: queries never reach logs


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection always on: loopback names plus the operator's allowlists."""
    hosts = [h for name in LOOPBACK_HOSTS for h in (name, f"{name}:*")]
    origins = [f"http://{name}{port}" for name in LOOPBACK_HOSTS for port in ("", ":*")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts + list(settings.allowed_hosts),
        allowed_origins=origins + list(settings.allowed_origins),
    )


async def health(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "name": NAME, "version": __version__})


def build_http_app(settings: Settings, *, upstream: Upstream | None = None) -> Starlette:
    """The ASGI app of ``vsms-mcp --http``. Keys come only from each request's x-api-key."""
    if not settings.http_mode or settings.env_key is not None:
        raise ValueError("build_http_app needs Settings(http_mode=True) without env_key")
    upstream = upstream or Upstream(settings)
    server = build_server(settings, upstream=upstream)
    mcp_app = server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=transport_security(settings),
        max_request_body_size=settings.max_body_bytes,
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with server.session_manager.run():
            try:
                yield
            finally:
                await upstream.aclose()

    per_key, per_address = settings.rate_limit_per_minute, settings.address_rate_limit_per_minute
    return Starlette(
        routes=[Route("/health", health, methods=["GET"]), *mcp_app.routes],
        middleware=[
            Middleware(
                Guard,
                limiter=RateLimiter(per_key) if per_key > 0 else None,
                address_limiter=RateLimiter(per_address) if per_address > 0 else None,
            )
        ],
        lifespan=lifespan,
    )


@contextmanager
def running_http(settings: Settings, *, upstream: Upstream | None = None) -> Iterator[str]:
    """``vsms-mcp --http`` for tests and benchmarks; yields the ``/mcp`` URL."""
    with serving(build_http_app(settings, upstream=upstream)) as base_url:
        yield base_url + "/mcp"
