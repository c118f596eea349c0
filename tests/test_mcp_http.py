"""StreamableHTTP (`vsms-mcp --http`) on a real uvicorn socket: surface, flow, every guard."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_server.api import Upstream
from mcp_server.http_app import running_http
from mcp_server.sandbox import Sandbox, running_sandbox
from mcp_server.serving import serving
from mcp_server.settings import Settings, from_env
from tests.fakes import fake_key

JSON_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
SMS = "Telegram code: 61524. Never share it."


def rpc(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments or {}}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


def mcp_client(url: str, key: str | None) -> Client:
    headers = {"x-api-key": key} if key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0))
    return Client(streamable_http_client(url, http_client=http))


@pytest.fixture
def sandbox() -> Iterator[tuple[Sandbox, str]]:
    with running_sandbox(sms_delay=None, rate_limit_per_minute=None) as pair:
        yield pair


@pytest.fixture
def http_settings(sandbox: tuple[Sandbox, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """As the CLI builds them, with an operator key in the environment that must stay unused."""
    sb, url = sandbox
    operator_key = fake_key("operator")
    sb.create_account(balance_usd=50.0, key=operator_key)
    monkeypatch.setenv("VIRTUALSMS_API_KEY", operator_key)
    monkeypatch.setenv("VIRTUALSMS_BASE_URL", url)
    return from_env(http_mode=True, rate_limit_per_minute=1000)


def test_surface_and_full_flow_over_http(
    sandbox: tuple[Sandbox, str], http_settings: Settings
) -> None:
    sb, _ = sandbox
    key = sb.create_account(balance_usd=10.0)

    async def go(url: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with mcp_client(url, key) as client:
            out["tools"] = {t.name for t in (await client.list_tools()).tools}
            out["prompts"] = len((await client.list_prompts()).prompts)
            out["resources"] = len((await client.list_resources()).resources)
            cheapest = await client.call_tool("virtualsms_find_cheapest", {"service": "telegram"})
            country = json.loads(cheapest.content[0].text)["cheapest"][0]["country"]
            args = {"service": "telegram", "country": country}
            order = json.loads((await client.call_tool("buy_number", args)).content[0].text)
            async with anyio.create_task_group() as tg:

                async def deliver() -> None:
                    await anyio.sleep(0.5)
                    sb.deliver_sms(order["order_id"], SMS, sender="Telegram")

                tg.start_soon(deliver)
                waited = await client.call_tool(
                    "virtualsms_wait_for_sms", {"order_id": order["order_id"]}
                )
            out["wait"] = (waited.is_error, json.loads(waited.content[0].text))
            cancel = await client.call_tool(
                "virtualsms_cancel_order", {"order_id": order["order_id"]}
            )
            out["cancel"] = json.loads(cancel.content[0].text)
        return out

    with running_http(http_settings) as url:
        out = anyio.run(go, url)
        health = httpx.get(url.removesuffix("/mcp") + "/health").json()
    assert len(out["tools"]) == 18 and out["prompts"] == 7 and out["resources"] == 3
    is_error, body = out["wait"]
    assert not is_error and body["code"] == "61524" and body["sms_text"] == SMS
    assert out["cancel"]["cooldown_active"] is True and out["cancel"]["wait_seconds"] > 0
    assert health["status"] == "ok"
    assert all(key not in path for _, path in sb.requests)


def test_anonymous_caller_never_gets_the_operator_key(
    sandbox: tuple[Sandbox, str], http_settings: Settings
) -> None:
    sb, _ = sandbox
    with running_http(http_settings) as url:
        balance = httpx.post(url, json=rpc("virtualsms_get_balance"), headers=JSON_HEADERS)
        services = httpx.post(url, json=rpc("virtualsms_list_services"), headers=JSON_HEADERS)
    result = balance.json()["result"]
    assert balance.status_code == 200 and result["isError"] is True
    assert json.loads(result["content"][0]["text"])["error"] == "api_key_required"
    assert not services.json()["result"].get("isError")
    assert not any(p.startswith("/api/v1/customer/balance") for _, p in sb.requests)


class Recorder:
    """An 'attacker' listener: records every request it receives."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.seen.append((scope["path"], headers))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def test_node_exploit_base_url_in_query_never_reached(http_settings: Settings) -> None:
    attacker = Recorder()
    with serving(attacker) as evil, running_http(http_settings) as url:
        for tool in ("virtualsms_get_balance", "virtualsms_list_services"):
            for query in (f"baseUrl={evil}", f"base_url={evil}"):
                response = httpx.post(f"{url}?{query}", json=rpc(tool), headers=JSON_HEADERS)
                assert response.status_code == 400
                assert "fixed by the server operator" in response.json()["message"]
            # Smuggled as a tool argument instead: ignored, the base URL is not a parameter.
            args = {"baseUrl": evil, "base_url": evil}
            response = httpx.post(url, json=rpc(tool, args), headers=JSON_HEADERS)
            assert response.status_code == 200
    assert attacker.seen == []


def test_key_in_url_is_refused_and_not_logged(
    http_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    key = fake_key("in-the-url")
    caplog.set_level(logging.DEBUG)
    with running_http(http_settings) as url:
        for name in ("apiKey", "api_key", "x-api-key"):
            response = httpx.post(
                f"{url}?{name}={key}", json=rpc("virtualsms_get_balance"), headers=JSON_HEADERS
            )
            assert response.status_code == 400
            assert "x-api-key header" in response.json()["message"]
            assert key not in response.text
    # The test's own httpx client logs its URL; everything on the server side must not.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(r.getMessage() for r in server_side)
    assert "refused POST /mcp" in text
    assert key not in text


def test_host_and_origin_checks(http_settings: Settings) -> None:
    body = rpc("virtualsms_list_services")
    with running_http(http_settings) as url:
        evil_host = httpx.post(url, json=body, headers={**JSON_HEADERS, "Host": "evil.example"})
        evil_origin = httpx.post(
            url, json=body, headers={**JSON_HEADERS, "Origin": "http://evil.example"}
        )
        local_origin = httpx.post(
            url, json=body, headers={**JSON_HEADERS, "Origin": "http://localhost:3000"}
        )
    assert evil_host.status_code == 421
    assert evil_origin.status_code == 403
    assert local_origin.status_code == 200

    public = Settings(
        base_url=http_settings.base_url,
        http_mode=True,
        allowed_hosts=("mcp.example.com",),
        allowed_origins=("https://app.example.com",),
    )
    headers = {**JSON_HEADERS, "Host": "mcp.example.com", "Origin": "https://app.example.com"}
    with running_http(public) as url:
        assert httpx.post(url, json=body, headers=headers).status_code == 200


def test_request_body_is_bounded(http_settings: Settings) -> None:
    padding = "x" * (http_settings.max_body_bytes + 1)
    body = rpc("virtualsms_search_services", {"query": padding})
    with running_http(http_settings) as url:
        response = httpx.post(url, json=body, headers=JSON_HEADERS)
    assert response.status_code == 413


def test_per_key_rate_limit(sandbox: tuple[Sandbox, str]) -> None:
    _, base_url = sandbox
    settings = Settings(base_url=base_url, http_mode=True, rate_limit_per_minute=3)
    a, b = fake_key("rate-a"), fake_key("rate-b")
    body = rpc("virtualsms_list_services")
    with running_http(settings) as url:
        first = [
            httpx.post(url, json=body, headers={**JSON_HEADERS, "x-api-key": a}).status_code
            for _ in range(4)
        ]
        limited = httpx.post(url, json=body, headers={**JSON_HEADERS, "x-api-key": a})
        other = httpx.post(url, json=body, headers={**JSON_HEADERS, "x-api-key": b})
    assert first == [200, 200, 200, 429]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"] == "rate_limited"
    assert other.status_code == 200


def test_random_keys_do_not_escape_the_per_address_limit(sandbox: tuple[Sandbox, str]) -> None:
    """A fresh x-api-key per request used to get a fresh bucket each time: the client address
    has its own limit, whatever key (or none) each request sends."""
    _, base_url = sandbox
    settings = Settings(
        base_url=base_url, http_mode=True, rate_limit_per_minute=60, address_rate_limit_per_minute=5
    )
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    with running_http(settings) as url:
        codes = [
            httpx.post(
                url, json=body, headers={**JSON_HEADERS, "x-api-key": fake_key(f"rnd-{i}")}
            ).status_code
            for i in range(6)
        ]
        anonymous = httpx.post(url, json=body, headers=JSON_HEADERS)
        health = httpx.get(url.removesuffix("/mcp") + "/health")
    assert codes == [200] * 5 + [429]
    assert anonymous.status_code == 429 and int(anonymous.headers["Retry-After"]) >= 1
    assert anonymous.json()["error"] == "rate_limited"
    assert "client address" in anonymous.json()["message"]
    assert health.status_code == 200  # only /mcp is limited


def test_upstream_budget_per_address_whatever_key(sandbox: tuple[Sandbox, str]) -> None:
    """Discovery calls reach VirtualSMS too: their budget is per client address, so neither
    random keys nor no key at all send more than the address's share upstream."""
    sb, base_url = sandbox
    settings = Settings(
        base_url=base_url,
        http_mode=True,
        rate_limit_per_minute=1000,
        address_rate_limit_per_minute=1000,
        upstream_per_address_per_minute=3,
        read_retries=0,
    )
    body = rpc("virtualsms_list_services")
    upstream = Upstream(settings)
    with running_http(settings, upstream=upstream) as url:
        results = []
        for i in range(5):
            headers = {**JSON_HEADERS, "x-api-key": fake_key(f"up-{i}")} if i % 2 else JSON_HEADERS
            response = httpx.post(url, json=body, headers=headers)
            assert response.status_code == 200
            results.append(response.json()["result"])
    assert [bool(r.get("isError")) for r in results] == [False, False, False, True, True]
    held = json.loads(results[3]["content"][0]["text"])
    assert held["error"] == "rate_limited" and "client address" in held["message"]
    assert upstream.calls == 3
    assert sum(p.startswith("/api/v1/customer/services") for _, p in sb.requests) == 3


def test_get_mcp_is_405_in_stateless_json_mode(http_settings: Settings) -> None:
    """There is no server-to-client stream to open: say so instead of an idle event stream."""
    with running_http(http_settings) as url:
        response = httpx.get(url, headers={"Accept": "text/event-stream"}, timeout=10.0)
        posted = httpx.post(url, json=rpc("virtualsms_list_services"), headers=JSON_HEADERS)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"
    assert posted.status_code == 200


def test_path_traversal_over_http_is_never_sent(
    sandbox: tuple[Sandbox, str], http_settings: Settings
) -> None:
    sb, _ = sandbox
    key = sb.create_account()
    with running_http(http_settings) as url:
        before = len(sb.requests)
        response = httpx.post(
            url,
            json=rpc("virtualsms_get_order", {"order_id": "../balance"}),
            headers={**JSON_HEADERS, "x-api-key": key},
        )
    result = response.json()["result"]
    assert result["isError"] and "invalid_order_id" in result["content"][0]["text"]
    assert sb.requests[before:] == []


def test_served_sockets_get_tcp_nodelay() -> None:
    """``serving.bind`` (used by the HTTP front and the sandbox) makes asyncio set TCP_NODELAY on
    every accepted connection; a socket created without IPPROTO_TCP does not get it."""
    import asyncio
    import socket

    from mcp_server.serving import bind

    async def nodelay_of_accepted(sock: socket.socket) -> list[int]:
        seen: list[int] = []

        def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted = writer.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sock)
        reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        await reader.read()  # EOF: the server callback has run
        writer.close()
        server.close()
        await server.wait_closed()
        return seen

    assert asyncio.run(nodelay_of_accepted(bind())) == [1]
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    assert asyncio.run(nodelay_of_accepted(plain)) == [0]  # the trap bind() avoids


def test_callers_keys_do_not_grow_the_redactor(
    sandbox: tuple[Sandbox, str], http_settings: Settings
) -> None:
    """Every odd x-api-key an anonymous caller invents used to be stored in the process-wide
    redactor (and its pattern recompiled): unbounded memory and CPU from outside. Only the
    operator's key is registered; callers' keys are masked by pattern and by header name."""
    from mcp_server.api import Upstream
    from vsms_guard.redact import default_redactor

    invented = [f"not-a-vsms-key-{i:04d}-padding" for i in range(20)]
    with running_http(http_settings) as url:
        for value in invented:
            headers = {**JSON_HEADERS, "x-api-key": value}
            response = httpx.post(url, json=rpc("virtualsms_get_balance"), headers=headers)
            assert "unauthorized" in response.json()["result"]["content"][0]["text"]
    assert not any(default_redactor().knows(value) for value in invented)

    operator = "operator-chosen-secret-value"
    Upstream(Settings(base_url=http_settings.base_url, env_key=operator))
    assert default_redactor().knows(operator)
