"""The VirtualSMS REST client: fixed base URL, key only in ``X-API-Key``, careful retries.

Reads (GET) retry with bounded backoff on connection errors and 5xx. Mutating calls (purchase,
cancel, swap) carry an ``X-Idempotency-Key`` and are never retried: a 5xx or a dropped
connection may still have gone through upstream. Identifiers bound for a URL path are
validated and escaped, so ``../balance`` is refused instead of sent.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from mcp_server.settings import Settings
from vsms_guard import keys
from vsms_guard.redact import default_redactor

log = logging.getLogger(__name__)

ORDER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
RETRY_STATUSES = frozenset({500, 502, 503, 504})
USER_AGENT = "vsms-mcp (vsms-guard)"
ACCOUNT_PREFIX = "/api/v1/customer/"  # the backend counts these against 60 requests/min per key
WINDOW = 60.0
MAX_TRACKED = 10_000


class ApiError(Exception):
    """A failed upstream call, phrased for the agent. Never carries the key."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        """The structured error an agent receives (``isError`` tool result)."""
        out: dict[str, Any] = {"success": False, "error": self.code, "message": self.message}
        if self.status is not None:
            out["status"] = self.status
        if self.retry_after is not None:
            out["retry_after_seconds"] = self.retry_after
        return out


def key_required() -> ApiError:
    """The error account tools answer when the caller sent no key."""
    return ApiError(
        "api_key_required",
        "This tool needs a VirtualSMS API key: set VIRTUALSMS_API_KEY (stdio) or send an "
        "x-api-key header (HTTP). Discovery tools work without one.",
        status=401,
    )


def path_segment(value: str, what: str = "order_id") -> str:
    """``value`` escaped for one URL path segment, after checking it is a plain identifier."""
    if not isinstance(value, str) or not ORDER_ID_RE.fullmatch(value):
        raise ApiError(
            "invalid_" + what,
            f"{what} must be 1-128 letters, digits, '-' or '_' (got {len(str(value))} chars "
            "that are not an identifier); nothing was sent",
        )
    return quote(value, safe="")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _upstream_text(response: httpx.Response) -> tuple[str | None, str | None]:
    """(error code, message) from an error body, redacted, short."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    code = body.get("error") or body.get("code")
    message = body.get("message") or body.get("detail")
    redact = default_redactor().text
    return (
        redact(str(code))[:64] if code else None,
        redact(str(message))[:300] if message else None,
    )


def error_from_response(response: httpx.Response, *, mutating: bool) -> ApiError:
    """Translate an upstream error status into a clear, key-free ApiError."""
    status = response.status_code
    code, detail = _upstream_text(response)
    retry_after = _retry_after(response)
    suffix = f": {detail}" if detail else ""
    if status == 401:
        return ApiError("unauthorized", "VirtualSMS rejected the API key (401)", status=status)
    if status == 402:
        return ApiError(
            "insufficient_balance",
            "Insufficient balance (402): top up at virtualsms.io before buying a number",
            status=status,
        )
    if status == 404:
        return ApiError(code or "not_found", f"Not found (404){suffix}", status=status)
    if status == 425:
        wait = f"; retry in {retry_after:.0f} s" if retry_after is not None else ""
        return ApiError(
            "cooldown_active",
            f"Too early (425): numbers are held for 120 s after purchase{wait}",
            status=status,
            retry_after=retry_after,
        )
    if status == 429:
        wait = f" after {retry_after:.0f} s" if retry_after is not None else " later"
        return ApiError(
            "rate_limited",
            f"Rate limited by VirtualSMS (429, 60 requests/min per key): retry{wait}",
            status=status,
            retry_after=retry_after,
        )
    if status >= 500:
        maybe = (
            "; the request may still have gone through: check virtualsms_list_orders "
            "before trying again"
            if mutating
            else ""
        )
        return ApiError(
            code or "upstream_error", f"VirtualSMS server error ({status}){maybe}", status=status
        )
    if code == "no_numbers":
        return ApiError("no_numbers", f"No numbers in stock for this service/country{suffix}")
    return ApiError(code or "bad_request", f"VirtualSMS refused the request ({status}){suffix}")


class KeyBudget:
    """At most ``per_minute`` requests per key in any 60 s window, the backend's own rule, so a
    runaway agent is stopped here (retries, polls and multi-call tools included) instead of
    burning the key's quota upstream. Keys are held only as fingerprints."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def spend(self, key: str) -> float | None:
        """None when the request may go (and counts), else seconds until one may."""
        return self.spend_as("key:" + keys.fingerprint(key))

    def spend_as(self, caller: str) -> float | None:
        """``spend`` for any caller identity (a key's fingerprint, a client address)."""
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(caller, deque())
            while hits and hits[0] <= now - WINDOW:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return hits[0] + WINDOW - now
            hits.append(now)
            if len(self._hits) > MAX_TRACKED:
                self._hits = {f: h for f, h in self._hits.items() if h and h[-1] > now - WINDOW}
            return None


class Upstream:
    """One pooled HTTP client per event loop, shared by every caller; keys travel per request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.calls = 0  # upstream HTTP requests sent, for tests and benchmarks
        limit = settings.upstream_per_minute
        self.budget = KeyBudget(limit) if limit > 0 else None
        # HTTP mode: every upstream call (discovery too) also counts against the caller's
        # address, so fresh random keys per request do not buy fresh budgets.
        per_address = settings.upstream_per_address_per_minute
        self.address_budget = KeyBudget(per_address) if per_address > 0 else None
        # The operator's key, whatever its shape, is masked in every log line. Callers' keys
        # (HTTP) are not registered one by one: key-shaped ones are masked by pattern anyway, and
        # storing every value an anonymous caller sends would grow the redactor without bound.
        default_redactor().add_secret(settings.env_key)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            s = self.settings
            self._client = httpx.AsyncClient(
                base_url=s.base_url,
                timeout=httpx.Timeout(s.request_timeout, connect=s.connect_timeout),
                follow_redirects=False,  # a redirect must never carry the key elsewhere
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the pooled connections (the HTTP app's shutdown, the end of a stdio run)."""
        if self._client is not None and not self._client.is_closed:
            await self._client.aclose()
        self._client = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        address: str | None = None,
    ) -> Any:
        """JSON body of a successful call, or ApiError. GETs retry; others never do.
        ``address`` is the HTTP caller's client address, for its per-address budget."""
        mutating = method != "GET"
        headers = {}
        if key:
            if not (key.isascii() and key.isprintable()) or " " in key:
                raise ApiError("invalid_api_key", "The API key holds characters no key has")
            headers["X-API-Key"] = key
        if mutating:
            headers["X-Idempotency-Key"] = str(uuid.uuid4())
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = 1 if mutating else 1 + max(0, self.settings.read_retries)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            if key and self.budget is not None and path.startswith(ACCOUNT_PREFIX):
                wait = self.budget.spend(key)
                if wait is not None:
                    raise self._held_back(wait)
            if address and self.address_budget is not None:
                wait = self.address_budget.spend_as("ip:" + address)
                if wait is not None:
                    raise self._held_back(wait, per_address=True)
            try:
                self.calls += 1
                response = await self._http().request(
                    method, path, params=query, json=json, headers=headers
                )
            except httpx.TimeoutException as exc:
                if last:
                    raise self._transport_error(exc, mutating, "timed out") from None
            except httpx.TransportError as exc:
                if last:
                    raise self._transport_error(exc, mutating, "could not be reached") from None
            else:
                if response.is_success:
                    return self._json(response)
                if response.status_code not in RETRY_STATUSES or last:
                    raise error_from_response(response, mutating=mutating)
            await asyncio.sleep(self.settings.retry_backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _held_back(self, wait: float, *, per_address: bool = False) -> ApiError:
        seconds = max(1, int(wait + 0.999))
        if per_address:
            limit = self.settings.upstream_per_address_per_minute
            why = f"more than {limit} upstream requests/min from this client address"
        else:
            limit = self.settings.upstream_per_minute
            why = f"more than {limit} requests/min for this key would hit VirtualSMS's 60/min limit"
        return ApiError(
            "rate_limited",
            f"Held back by vsms-mcp: {why}; retry after {seconds} s. Nothing was sent.",
            status=429,
            retry_after=float(seconds),
        )

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                "bad_upstream_response", "VirtualSMS answered with something that is not JSON"
            ) from None

    @staticmethod
    def _transport_error(exc: Exception, mutating: bool, what: str) -> ApiError:
        log.warning("upstream %s: %s", what, type(exc).__name__)
        maybe = (
            "; the request may still have gone through: check virtualsms_list_orders"
            if mutating
            else ""
        )
        return ApiError("network_error", f"VirtualSMS {what} ({type(exc).__name__}){maybe}")


class VirtualSMS:
    """The REST API of FACTS §1 for one caller (``key`` may be None for public calls)."""

    def __init__(self, upstream: Upstream, key: str | None, address: str | None = None) -> None:
        self.upstream = upstream
        self.key = key
        self.address = address  # HTTP caller's client address (per-address budget)

    async def _get(self, path: str, **params: Any) -> Any:
        return await self.upstream.request(
            "GET", path, key=self.key, params=params, address=self.address
        )

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.upstream.request(
            "POST", path, key=self.key, json=body, address=self.address
        )

    def _need_key(self) -> None:
        if not self.key:
            raise key_required()

    # public (no key needed)
    async def services(self) -> Any:
        return await self._get("/api/v1/customer/services")

    async def countries(self) -> Any:
        return await self._get("/api/v1/customer/countries")

    async def price(self, service: str, country: str) -> Any:
        return await self._get("/api/v1/price", service=service, country=country)

    async def catalog(self, service: str) -> Any:
        return await self._get("/api/v1/catalog/countries", service=service)

    # account
    async def balance(self) -> Any:
        self._need_key()
        return await self._get("/api/v1/customer/balance")

    async def profile(self) -> Any:
        self._need_key()
        return await self._get("/api/v1/customer/profile")

    async def transactions(self, **filters: Any) -> Any:
        self._need_key()
        return await self._get("/api/v1/customer/transactions", **filters)

    async def orders(self, status: str | None = None) -> list[dict[str, Any]]:
        self._need_key()
        body = await self._get("/api/v1/customer/orders", status=status)
        items = body.get("orders", []) if isinstance(body, dict) else body
        return [o for o in items if isinstance(o, dict)] if isinstance(items, list) else []

    async def order(self, order_id: str) -> Any:
        segment = path_segment(order_id)
        self._need_key()
        return await self._get(f"/api/v1/customer/order/{segment}")

    async def purchase(self, service: str, country: str) -> Any:
        self._need_key()
        return await self._post(
            "/api/v1/customer/purchase", {"service": service, "country": country}
        )

    async def cancel(self, order_id: str) -> Any:
        segment = path_segment(order_id)
        self._need_key()
        return await self._post(f"/api/v1/customer/cancel/{segment}")

    async def swap(self, order_id: str) -> Any:
        segment = path_segment(order_id)
        self._need_key()
        return await self._post(f"/api/v1/customer/swap/{segment}")
