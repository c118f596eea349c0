"""Tool flows through an in-memory ``mcp.Client`` against the sandbox on a real socket."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from mcp import Client

from mcp_server.api import Upstream
from mcp_server.sandbox import ManualClock, Sandbox, running_sandbox
from mcp_server.server import build_server
from mcp_server.settings import Settings
from tests.fakes import fake_key

SMS = "Your WhatsApp code is 482913. Do not share it."


def call(server: Any, name: str, args: dict[str, Any] | None = None) -> tuple[bool, Any]:
    """(is_error, parsed JSON) of one tool call over a fresh in-memory client."""

    async def go() -> tuple[bool, Any]:
        async with Client(server) as client:
            result = await client.call_tool(name, args or {})
        text = result.content[0].text
        return bool(result.is_error), json.loads(text) if text.startswith("{") else text

    return anyio.run(go)


def stdio_server(base_url: str, key: str | None, **settings: Any) -> Any:
    return build_server(Settings(base_url=base_url, env_key=key, **settings))


@pytest.fixture
def sandbox() -> Iterator[tuple[Sandbox, str]]:
    with running_sandbox(sms_delay=None, rate_limit_per_minute=None) as pair:
        yield pair


def _stocked(sb: Sandbox, base_url: str, key: str) -> tuple[str, str]:
    """(service, country) of the cheapest stocked offer, found through our own tool."""
    _, body = call(stdio_server(base_url, key), "virtualsms_find_cheapest", {"service": "whatsapp"})
    return body["service"], body["cheapest"][0]["country"]


def test_full_flow_create_wait_code(sandbox: tuple[Sandbox, str]) -> None:
    sb, url = sandbox
    key = sb.create_account(balance_usd=10.0)
    server = stdio_server(url, key)
    service, country = _stocked(sb, url, key)
    err, order = call(server, "virtualsms_create_order", {"service": service, "country": country})
    assert not err and order["success"] and order["phone_number"]
    order_id = order["order_id"]

    async def flow() -> dict[str, Any]:
        async with Client(server) as client:
            async with anyio.create_task_group() as tg:
                box: dict[str, Any] = {}

                async def wait() -> None:
                    args = {"order_id": order_id, "timeout_seconds": 30}
                    box["r"] = await client.call_tool("virtualsms_wait_for_sms", args)

                tg.start_soon(wait)
                await anyio.sleep(0.5)
                sb.deliver_sms(order_id, SMS)
            return box

    result = anyio.run(flow)["r"]
    body = json.loads(result.content[0].text)
    assert not result.is_error
    assert body["success"] is True
    assert body["code"] == body["sms_code"] == "482913"
    assert body["sms_text"] == SMS
    assert body["messages"][0]["content"] == SMS
    # The socket carried the key in a header: no request line anywhere holds it.
    assert all(key not in path for _, path in sb.requests)
    assert any(path.startswith("/ws/orders") for _, path in sb.requests)

    err, sms = call(server, "check_sms", {"order_id": order_id})  # legacy name
    assert not err and sms["code"] == "482913" and sms["messages"][0]["sender"] == "WhatsApp"


def test_wait_for_sms_timeout_does_not_cancel(sandbox: tuple[Sandbox, str]) -> None:
    sb, url = sandbox
    key = sb.create_account()
    server = stdio_server(url, key)
    service, country = _stocked(sb, url, key)
    _, order = call(server, "buy_number", {"service": service, "country": country})
    err, body = call(server, "wait_for_code", {"order_id": order["order_id"], "timeout_seconds": 5})
    assert not err
    assert body == {
        "success": False,
        "error": "timeout",
        "order_id": order["order_id"],
        "phone_number": order["phone_number"],
        "message": body["message"],
    }
    assert not any("/cancel/" in path for _, path in sb.requests)
    assert sb.order(order["order_id"])["status"] in ("created", "waiting")


def _refusing_websocket(sb: Sandbox) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await sb.app(scope, receive, send)

    return app


def _wait_while_delivering(
    server: Any, sb: Sandbox, order_id: str, *, timeout: int, after: float
) -> Any:
    """Call wait_for_sms and, ``after`` seconds into the wait, deliver the SMS to the sandbox."""

    async def flow() -> Any:
        async with Client(server) as client, anyio.create_task_group() as tg:
            box: dict[str, Any] = {}

            async def wait() -> None:
                args = {"order_id": order_id, "timeout_seconds": timeout}
                box["r"] = await client.call_tool("virtualsms_wait_for_sms", args)

            tg.start_soon(wait)
            await anyio.sleep(after)
            sb.deliver_sms(order_id, SMS)
        return box["r"]

    return anyio.run(flow)


def test_wait_for_sms_polls_when_socket_refused(sandbox: tuple[Sandbox, str]) -> None:
    from mcp_server.serving import serving

    sb, _ = sandbox
    key = sb.create_account()
    with serving(_refusing_websocket(sb)) as url:
        server = stdio_server(url, key, poll_interval=1.0)
        service, country = _stocked(sb, url, key)
        _, order = call(server, "virtualsms_create_order", {"service": service, "country": country})
        order_id = order["order_id"]
        before = len(sb.requests)

        result = _wait_while_delivering(server, sb, order_id, timeout=20, after=1.0)
    body = json.loads(result.content[0].text)
    assert not result.is_error and body["code"] == "482913"
    polls = [p for _, p in sb.requests[before:] if p.startswith("/api/v1/customer/order/")]
    assert len(polls) >= 2  # the first read, then at least one poll found the SMS


def test_sms_is_reported_from_the_socket_not_by_polling(sandbox: tuple[Sandbox, str]) -> None:
    """The socket path has no polling delay: with the next poll 10 minutes away, an answer
    within the 30 s timeout can only have come through the socket."""
    sb, url = sandbox
    key = sb.create_account()
    server = stdio_server(url, key, poll_interval=600.0)
    service, country = _stocked(sb, url, key)
    _, order = call(server, "virtualsms_create_order", {"service": service, "country": country})
    order_id = order["order_id"]
    before = len(sb.requests)

    result = _wait_while_delivering(server, sb, order_id, timeout=30, after=0.5)
    body = json.loads(result.content[0].text)
    assert not result.is_error and body["code"] == "482913"
    served = [p for _, p in sb.requests[before:]]
    assert [p.split("?")[0] for p in served if p.startswith("/ws/")] == ["/ws/orders"]
    reads = [p for p in served if p.startswith("/api/v1/customer/order/")]
    assert len(reads) == 2  # the read before listening and the re-read after the push


def test_polling_fallback_keeps_to_the_rate_limit() -> None:
    """Socket refused: at most one read per ``poll_interval`` (never under 1 s, the 60/min
    budget), and a 429 from the backend is waited out instead of polled through."""
    from mcp_server.serving import serving
    from vsms_guard.errors import GuardError

    with pytest.raises(GuardError, match="poll_interval"):
        Settings(poll_interval=0.5)
    assert Settings().poll_interval >= 3.0  # the default: a third of the budget

    with running_sandbox(sms_delay=None, rate_limit_per_minute=2) as (sb, _):
        key = sb.create_account()
        with serving(_refusing_websocket(sb)) as url:
            server = stdio_server(url, key, poll_interval=1.0)
            args = {"service": "whatsapp", "country": _stocked(sb, url, key)[1]}
            _, order = call(server, "virtualsms_create_order", args)  # 1st of 2 per minute
            before = len(sb.requests)
            args = {"order_id": order["order_id"], "timeout_seconds": 8}
            err, body = call(server, "virtualsms_wait_for_sms", args)
    assert not err and body["error"] == "timeout"
    reads = [p for _, p in sb.requests[before:] if p.startswith("/api/v1/customer/order/")]
    # The first read (2nd of 2), one poll answered 429 with Retry-After ~60 s, then silence;
    # polling through the 429 every second would have sent about 8.
    assert len(reads) == 2


def test_cancel_cooldown_then_cancel(sandbox: tuple[Sandbox, str]) -> None:
    sb, url = sandbox
    key = sb.create_account()
    server = stdio_server(url, key)
    service, country = _stocked(sb, url, key)
    _, order = call(server, "virtualsms_create_order", {"service": service, "country": country})
    calls_before = len(sb.requests)
    err, body = call(server, "virtualsms_cancel_order", {"order_id": order["order_id"]})
    assert not err
    assert body["cooldown_active"] is True and body["success"] is False
    assert 100 <= body["wait_seconds"] <= 120 and body["retry_at"].endswith("Z")
    assert not any("/cancel/" in p for _, p in sb.requests[calls_before:])  # answered locally
    err, body = call(server, "virtualsms_swap_number", {"order_id": order["order_id"]})
    assert not err and body["cooldown_active"] is True


def test_cancel_and_swap_after_hold() -> None:
    with running_sandbox(sms_delay=None, rate_limit_per_minute=None, hold_seconds=0) as (sb, url):
        key = sb.create_account()
        server = stdio_server(url, key)
        service, country = _stocked(sb, url, key)
        _, order = call(server, "virtualsms_create_order", {"service": service, "country": country})
        err, swapped = call(server, "virtualsms_swap_number", {"order_id": order["order_id"]})
        assert not err and swapped["success"] and swapped["phone_number"]
        new_id = swapped["order_id"]
        err, cancelled = call(server, "virtualsms_cancel_order", {"order_id": new_id})
        assert not err and cancelled["success"] is True
        assert sb.order(new_id)["status"] == "cancelled"


def test_cancel_all_orders_reports_held_and_cancelled() -> None:
    clock = ManualClock()
    kwargs = {"sms_delay": None, "rate_limit_per_minute": None, "clock": clock}
    with running_sandbox(**kwargs) as (sb, url):
        key = sb.create_account()
        server = stdio_server(url, key)
        service, country = _stocked(sb, url, key)
        _, old = call(server, "virtualsms_create_order", {"service": service, "country": country})
        clock.advance(-300)  # the next order is bought "earlier": its hold is long over
        _, held = call(server, "virtualsms_create_order", {"service": service, "country": country})
        clock.advance(300)
        err, body = call(server, "virtualsms_cancel_all_orders")
    assert not err
    assert [c["order_id"] for c in body["cancelled"]] == [held["order_id"]]
    assert [h["order_id"] for h in body["cooldown_active"]] == [old["order_id"]]


def test_upstream_425_is_an_error_with_the_wait() -> None:
    clock = ManualClock(time.time() - 400)  # backend clock behind ours: our hold check passes
    with running_sandbox(sms_delay=None, rate_limit_per_minute=None, clock=clock) as (sb, url):
        key = sb.create_account()
        server = stdio_server(url, key)
        service, country = _stocked(sb, url, key)
        _, order = call(server, "virtualsms_create_order", {"service": service, "country": country})
        err, body = call(server, "virtualsms_cancel_order", {"order_id": order["order_id"]})
    assert err
    assert body["error"] == "cooldown_active" and body["status"] == 425
    assert "120 s" in body["message"]


def test_discovery_works_without_key_account_tools_answer_key_required(
    sandbox: tuple[Sandbox, str],
) -> None:
    sb, url = sandbox
    server = stdio_server(url, None)
    err, services = call(server, "virtualsms_list_services")
    assert not err and services["count"] > 0
    err, found = call(server, "virtualsms_search_services", {"query": "whats"})
    assert not err and all("whats" in s["service_id"].lower() for s in found["services"])
    err, countries = call(server, "virtualsms_list_countries")
    assert not err and countries["count"] > 0
    for tool, args in [
        ("virtualsms_get_balance", {}),
        ("virtualsms_get_profile", {}),
        ("virtualsms_list_orders", {}),
        ("virtualsms_create_order", {"service": "whatsapp", "country": "US"}),
        ("virtualsms_get_order", {"order_id": "abc"}),
        ("virtualsms_wait_for_sms", {"order_id": "abc"}),
    ]:
        err, body = call(server, tool, args)
        assert err and body["error"] == "api_key_required", tool
    assert not any(p.startswith("/api/v1/customer/balance") for _, p in sb.requests)


def test_error_statuses_are_tool_errors(sandbox: tuple[Sandbox, str]) -> None:
    sb, url = sandbox
    bad = stdio_server(url, fake_key("not-registered"))
    err, body = call(bad, "virtualsms_get_balance")
    assert err and body["status"] == 401 and body["error"] == "unauthorized"
    assert fake_key("not-registered") not in json.dumps(body)

    err, body = call(stdio_server(url, "vsms_ key\twith spaces"), "virtualsms_get_balance")
    assert err and body["error"] == "invalid_api_key" and "spaces" not in json.dumps(body)

    broke = stdio_server(url, sb.create_account(balance_usd=0.0))
    err, body = call(broke, "virtualsms_create_order", {"service": "whatsapp", "country": "US"})
    assert err and body["status"] == 402 and body["error"] == "insufficient_balance"

    key = sb.create_account()
    server = stdio_server(url, key)
    for tool in ("virtualsms_get_order", "virtualsms_wait_for_sms", "virtualsms_cancel_order"):
        err, body = call(server, tool, {"order_id": "0" * 32})
        assert err and body["status"] == 404, tool
    err, body = call(server, "virtualsms_get_price", {"service": "nosuchservice", "country": "US"})
    assert err and body["status"] == 404
    args = {"service": "nosuchservice", "country": "US"}
    err, body = call(server, "virtualsms_create_order", args)
    assert err and body["error"] == "invalid_service"

    before = len(sb.requests)
    for tool in ("virtualsms_get_order", "virtualsms_cancel_order", "virtualsms_get_sms"):
        err, body = call(server, tool, {"order_id": "../balance"})
        assert err and body["error"] == "invalid_order_id"
    assert sb.requests[before:] == []  # refused, never sent


def test_no_numbers_is_a_tool_error(sandbox: tuple[Sandbox, str]) -> None:
    sb, url = sandbox
    key = sb.create_account()
    server = stdio_server(url, key)
    _, catalog = call(server, "virtualsms_list_countries", {"service": "whatsapp"})
    empty = next(c["id"] for c in catalog["countries"] if c["count"] == 0)
    err, body = call(server, "virtualsms_create_order", {"service": "whatsapp", "country": empty})
    assert err and body["error"] == "no_numbers"


def test_rate_limit_429_carries_retry_after() -> None:
    with running_sandbox(sms_delay=None, rate_limit_per_minute=2) as (sb, url):
        server = stdio_server(url, sb.create_account())
        results = [call(server, "virtualsms_get_balance") for _ in range(3)]
    err, body = results[-1]
    assert err and body["status"] == 429 and body["error"] == "rate_limited"
    assert body["retry_after_seconds"] > 0


def test_reads_retry_5xx_purchases_never(sandbox: tuple[Sandbox, str]) -> None:
    sb, url = sandbox
    key = sb.create_account()
    upstream = Upstream(Settings(base_url=url, env_key=key, retry_backoff=0.01))
    server = build_server(upstream.settings, upstream=upstream)
    sb.fail_next("/api/v1/customer/balance", status=503, times=1)
    err, body = call(server, "virtualsms_get_balance")
    assert not err and body["balance_usd"] == 10.0  # one retry got through

    sb.fail_next("/api/v1/customer/balance", status=503, times=10)
    err, body = call(server, "virtualsms_get_balance")
    assert err and body["status"] == 503
    assert upstream.calls == 2 + 3  # bounded: 1 try + 2 retries

    sb.fail_next("/api/v1/customer/purchase", status=502, times=1)
    before = len(sb.requests)
    err, body = call(server, "virtualsms_create_order", {"service": "whatsapp", "country": "US"})
    assert err and body["status"] == 502 and "may still have gone through" in body["message"]
    posts = [r for r in sb.requests[before:] if r[1].startswith("/api/v1/customer/purchase")]
    assert len(posts) == 1


def test_find_cheapest_one_catalog_call_stock_only(sandbox: tuple[Sandbox, str]) -> None:
    sb, url = sandbox
    upstream = Upstream(Settings(base_url=url))
    server = build_server(upstream.settings, upstream=upstream)
    err, body = call(server, "find_cheapest", {"service": "whatsapp", "limit": 50})
    assert not err and body["source"] == "catalog"
    assert upstream.calls == 1
    assert [r[1].split("?")[0] for r in sb.requests] == ["/api/v1/catalog/countries"]
    prices = [c["price"] for c in body["cheapest"]]
    assert prices == sorted(prices) and all(c["available"] > 0 for c in body["cheapest"])
    _, catalog = call(server, "virtualsms_list_countries", {"service": "whatsapp"})
    empty = {c["id"] for c in catalog["countries"] if c["count"] == 0}
    assert empty and not empty & {c["country"] for c in body["cheapest"]}


def test_find_cheapest_falls_back_to_price_calls(sandbox: tuple[Sandbox, str]) -> None:
    sb, url = sandbox
    sb.set_catalog_available(False)
    server = stdio_server(url, None)
    err, body = call(server, "virtualsms_find_cheapest", {"service": "whatsapp", "limit": 3})
    assert not err and body["source"] == "price" and len(body["cheapest"]) == 3
    prices = [c["price"] for c in body["cheapest"]]
    assert prices == sorted(prices)
    assert sum(p.startswith("/api/v1/price") for _, p in sb.requests) > 1


def test_account_tools_read_the_sandbox(sandbox: tuple[Sandbox, str]) -> None:
    sb, url = sandbox
    key = sb.create_account(balance_usd=7.5)
    server = stdio_server(url, key)
    service, country = _stocked(sb, url, key)
    call(server, "virtualsms_create_order", {"service": service, "country": country})
    err, balance = call(server, "get_balance")
    assert not err and balance["balance_usd"] < 7.5 and balance["currency"] == "USD"
    err, profile = call(server, "virtualsms_get_profile")
    assert not err and profile["total_orders"] == 1
    err, tx = call(server, "virtualsms_get_transactions", {"type": "purchase", "limit": 5})
    assert not err and [t["type"] for t in tx["transactions"]] == ["purchase"]
    err, history = call(server, "virtualsms_order_history", {"service": service, "since_days": 1})
    assert not err and history["count"] == 1
    err, stats = call(server, "virtualsms_get_stats")
    assert not err and stats["orders"] == 1
    err, active = call(server, "active_orders")
    assert not err and active["count"] == 1
    err, body = call(server, "virtualsms_get_transactions", {"limit": 500})
    # schema bounds: an isError result with a JSON body, not a protocol error or pydantic text
    assert err and body["error"] == "invalid_arguments"
    assert [d["argument"] for d in body["details"]] == ["limit"]


class Watch:
    """Wraps the sandbox app: records request headers and the peak of concurrent requests."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers: list[tuple[str, str, dict[str, str]]] = []
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            query = scope["query_string"].decode()
            self.headers.append((scope["path"], query, headers))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                await self.app(scope, receive, send)
            finally:
                self.in_flight -= 1
            return
        await self.app(scope, receive, send)


def test_mutating_calls_carry_an_idempotency_key_and_the_key_only_in_a_header(
    sandbox: tuple[Sandbox, str],
) -> None:
    from mcp_server.serving import serving

    sb, _ = sandbox
    key = sb.create_account()
    watch = Watch(sb.app)
    with serving(watch) as url:
        server = stdio_server(url, key)
        call(server, "virtualsms_create_order", {"service": "whatsapp", "country": "US"})
        call(server, "virtualsms_create_order", {"service": "whatsapp", "country": "US"})
        call(server, "virtualsms_get_balance")
    purchases = [h for path, _, h in watch.headers if path == "/api/v1/customer/purchase"]
    assert len(purchases) == 2
    ids = {h["x-idempotency-key"] for h in purchases}
    assert len(ids) == 2  # one per purchase, never reused across different orders
    assert all(h["x-api-key"] == key for _, _, h in watch.headers)
    assert all(key not in path + query for path, query, _ in watch.headers)
    balance = next(h for path, _, h in watch.headers if path.endswith("/balance"))
    assert "x-idempotency-key" not in balance


def test_price_fallback_concurrency_is_bounded(sandbox: tuple[Sandbox, str]) -> None:
    from mcp_server.serving import serving

    sb, _ = sandbox
    sb.set_catalog_available(False)
    watch = Watch(sb.app)
    with serving(watch) as url:
        server = build_server(Settings(base_url=url, price_concurrency=2))
        err, body = call(server, "virtualsms_find_cheapest", {"service": "whatsapp"})
    assert not err and body["source"] == "price"
    price_calls = [p for p, _, _ in watch.headers if p == "/api/v1/price"]
    assert len(price_calls) > 2 and watch.peak <= 2


def test_unreachable_backend_is_a_tool_error() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = stdio_server(f"http://127.0.0.1:{port}", fake_key("offline"), retry_backoff=0.01)
    err, body = call(server, "virtualsms_get_balance")
    assert err and body["error"] == "network_error" and "could not be reached" in body["message"]


def test_upstream_budget_is_a_sliding_minute_per_key() -> None:
    """Never more than ``per_minute`` in any 60 s window (a token bucket would let through
    twice that in the first minute); keys counted apart."""
    from mcp_server.api import KeyBudget

    now = [0.0]
    budget = KeyBudget(3, clock=lambda: now[0])
    a, b = fake_key("budget-a"), fake_key("budget-b")
    for t in (0.0, 10.0, 20.0):
        now[0] = t
        assert budget.spend(a) is None
    now[0] = 30.0
    assert budget.spend(a) == 30.0  # the hit at t=0 leaves the window at t=60
    assert budget.spend(b) is None
    now[0] = 59.9
    assert budget.spend(a) is not None
    now[0] = 60.0
    assert budget.spend(a) is None and budget.spend(a) is not None


def test_runaway_agent_is_held_back_before_the_backend(sandbox: tuple[Sandbox, str]) -> None:
    """Account calls past the per-key budget answer a local 429 and are never sent; discovery
    calls (no key needed) are not counted."""
    sb, url = sandbox
    key = sb.create_account()
    server = stdio_server(url, key, upstream_per_minute=3)
    service, country = _stocked(sb, url, key)
    price_args = {"service": service, "country": country}

    async def go() -> list[Any]:
        async with Client(server) as client:
            calls = [await client.call_tool("virtualsms_get_balance", {}) for _ in range(4)]
            calls.append(await client.call_tool("virtualsms_get_price", price_args))
            return calls

    *balances, price = anyio.run(go)
    assert [r.is_error for r in balances] == [False, False, False, True]
    body = json.loads(balances[-1].content[0].text)
    assert body["error"] == "rate_limited" and body["status"] == 429
    assert body["retry_after_seconds"] >= 1 and "Nothing was sent" in body["message"]
    assert sum(p.endswith("/balance") for _, p in sb.requests) == 3
    assert not price.is_error  # /api/v1/price is not an account call
