"""The order WebSocket with a real ``websockets`` client: key only in the ``x-api-key`` header,
SMS pushed as ``{"type":"sms", code, full_text}``, ``{"type":"expired"}`` at the end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mcp_server.sandbox import ManualClock, Sandbox, running_sandbox
from tests.fakes import fake_key

RECEIVE_TIMEOUT = 10.0  # generous bound so a broken push fails instead of hanging


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture
def served(clock: ManualClock) -> Iterator[tuple[Sandbox, str, str, str]]:
    """Sandbox, ws:// base URL, a key, and an order of that key with no automatic SMS."""
    with running_sandbox(sms_delay=None, clock=clock) as (sb, base_url):
        key = sb.create_account(10.0)
        country = next(c for (s, c), o in sb.catalog.offers.items() if s == "telegram" and o.count)
        order = httpx.post(
            f"{base_url}/api/v1/customer/purchase",
            json={"service": "telegram", "country": country},
            headers={"X-API-Key": key},
        ).json()
        yield sb, base_url.replace("http://", "ws://"), key, order["order_id"]


async def receive(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))


def refused_status(url: str, headers: dict[str, str] | None = None) -> int:
    async def attempt() -> int:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers=headers or {}):
                pass
        return refused.value.response.status_code

    return asyncio.run(attempt())


def test_sms_is_pushed_to_a_socket_with_the_key_in_the_header(served):
    sb, ws_url, key, order_id = served

    async def scenario() -> dict:
        url = f"{ws_url}/ws/orders?order_id={order_id}"
        async with connect(url, additional_headers={"x-api-key": key}) as ws:
            sb.deliver_sms(order_id, "Telegram code 73419, do not give it to anyone", "Telegram")
            return await receive(ws)

    assert asyncio.run(scenario()) == {
        "type": "sms",
        "code": "73419",
        "full_text": "Telegram code 73419, do not give it to anyone",
    }


def test_automatic_sms_arrives_on_the_socket():
    with running_sandbox(sms_delay=0.2) as (sb, base_url):
        key = sb.create_account(10.0)
        country = next(c for (s, c), o in sb.catalog.offers.items() if s == "whatsapp" and o.count)
        order = httpx.post(
            f"{base_url}/api/v1/customer/purchase",
            json={"service": "whatsapp", "country": country},
            headers={"X-API-Key": key},
        ).json()

        async def scenario() -> dict:
            url = f"{base_url.replace('http', 'ws')}/ws/orders?order_id={order['order_id']}"
            async with connect(url, additional_headers={"x-api-key": key}) as ws:
                return await receive(ws)

        pushed = asyncio.run(scenario())
        assert pushed["type"] == "sms" and pushed["code"] and pushed["code"] in pushed["full_text"]
        assert pushed["code"] == sb.order(order["order_id"])["sms_code"]


@pytest.mark.parametrize("name", ["api_key", "apiKey", "x-api-key"])
def test_a_key_in_the_url_is_refused_even_with_a_good_header(served, name):
    sb, ws_url, key, order_id = served
    url = f"{ws_url}/ws/orders?order_id={order_id}&{name}={key}"
    assert refused_status(url, {"x-api-key": key}) == 400
    assert all(key not in path for _, path in sb.requests)


def test_missing_or_wrong_key_and_foreign_order(served):
    sb, ws_url, key, order_id = served
    url = f"{ws_url}/ws/orders?order_id={order_id}"
    assert refused_status(url) == 401
    assert refused_status(url, {"x-api-key": fake_key("ws-stranger")}) == 401
    assert refused_status(url, {"x-api-key": sb.create_account()}) == 404
    assert refused_status(f"{ws_url}/ws/orders", {"x-api-key": key}) == 400


def test_late_socket_gets_earlier_sms_once(served):
    sb, ws_url, key, order_id = served
    sb.deliver_sms(order_id, "first 1111", "Telegram")

    async def scenario() -> list[dict]:
        url = f"{ws_url}/ws/orders?order_id={order_id}"
        async with connect(url, additional_headers={"x-api-key": key}) as ws:
            first = await receive(ws)
            sb.deliver_sms(order_id, "second 2222", "Telegram")
            return [first, await receive(ws)]

    assert [m["code"] for m in asyncio.run(scenario())] == ["1111", "2222"]


def test_expiry_is_pushed_then_the_socket_closes(served, clock):
    sb, ws_url, key, order_id = served

    async def scenario() -> tuple[dict, bool]:
        url = f"{ws_url}/ws/orders?order_id={order_id}"
        async with connect(url, additional_headers={"x-api-key": key}) as ws:
            clock.advance(sb.order_ttl + 1)
            message = await receive(ws)
            try:
                await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
            except ConnectionClosed:
                return message, True
            return message, False

    assert asyncio.run(scenario()) == ({"type": "expired"}, True)
    assert sb.order(order_id)["status"] == "expired"


def test_cancel_closes_the_socket(served, clock):
    sb, ws_url, key, order_id = served
    base = ws_url.replace("ws://", "http://")

    async def scenario() -> bool:
        url = f"{ws_url}/ws/orders?order_id={order_id}"
        async with connect(url, additional_headers={"x-api-key": key}) as ws:
            clock.advance(sb.hold_seconds)
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}) as client:
                cancelled = await client.post(f"/api/v1/customer/cancel/{order_id}")
                assert cancelled.status_code == 200
            try:
                await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
            except ConnectionClosed:
                return True
            return False

    assert asyncio.run(scenario()) is True
