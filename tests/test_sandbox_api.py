"""The sandbox REST API over real HTTP (httpx against uvicorn on 127.0.0.1): shapes of FACTS §1,
every status code, the hold, the rate limit and idempotency."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from mcp_server.sandbox import ManualClock, Sandbox, running_sandbox
from tests.fakes import fake_key
from vsms_guard import keys

CUSTOMER = "/api/v1/customer"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture
def served(clock: ManualClock) -> Iterator[tuple[Sandbox, httpx.Client, str]]:
    """A sandbox on a real port, a funded key, and a client that sends it in the header."""
    with running_sandbox(seed=7, sms_delay=2.0, clock=clock) as (sb, base_url):
        key = sb.create_account(balance_usd=10.0)
        with httpx.Client(base_url=base_url, headers={"X-API-Key": key}) as client:
            yield sb, client, key


def anonymous(client: httpx.Client) -> httpx.Client:
    return httpx.Client(base_url=client.base_url)


def in_stock(sb: Sandbox, service: str = "whatsapp") -> str:
    """A country with stock for ``service`` (the cheapest one has none on purpose)."""
    offers = sorted(
        (o.price, c) for (s, c), o in sb.catalog.offers.items() if s == service and o.count > 0
    )
    return offers[0][1]


def buy(client: httpx.Client, sb: Sandbox, **headers: str) -> dict:
    response = client.post(
        f"{CUSTOMER}/purchase",
        json={"service": "whatsapp", "country": in_stock(sb)},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_health_says_it_is_a_test_double(served):
    _, client, _ = served
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["sandbox"] is True
    assert "not the VirtualSMS service" in body["note"]


def test_discovery_is_public(served):
    _, client, _ = served
    with anonymous(client) as anon:
        services = anon.get(f"{CUSTOMER}/services").json()
        countries = anon.get(f"{CUSTOMER}/countries").json()
    assert services["success"] is True
    assert {"service_id": "whatsapp", "service_name": "WhatsApp"} in services["services"]
    assert countries["success"] is True
    assert {"country_id", "country_name"} <= set(countries["countries"][0])


def test_countries_filtered_by_service(served):
    sb, client, _ = served
    rows = client.get(f"{CUSTOMER}/countries", params={"service": "telegram"}).json()["countries"]
    offered = {c for (s, c) in sb.catalog.offers if s == "telegram"}
    assert {r["country_id"] for r in rows} == offered
    assert len(offered) < len(sb.catalog.countries)  # not every pair is on sale


def test_price_shape_and_errors(served):
    sb, client, _ = served
    country = in_stock(sb)
    body = client.get("/api/v1/price", params={"service": "WhatsApp", "country": country}).json()
    assert body == {
        "price": sb.catalog.offers[("whatsapp", country)].price,
        "country": country,
        "service": "whatsapp",
        "success": True,
    }
    unknown = client.get("/api/v1/price", params={"service": "whatsapp", "country": "ZZ"})
    assert unknown.status_code == 404
    missing = client.get("/api/v1/price", params={"service": "whatsapp"})
    assert missing.status_code == 400 and missing.json()["error"] == "missing_params"


def test_catalog_one_call_with_stock_and_cheapest_out_of_stock(served):
    sb, client, _ = served
    rows = client.get("/api/v1/catalog/countries", params={"service": "whatsapp"}).json()
    rows = rows["countries"]
    assert {"id", "name", "price", "count"} == set(rows[0])
    cheapest = min(rows, key=lambda r: r["price"])
    assert cheapest["count"] == 0
    assert sum(1 for r in rows if r["count"] == 0) >= 2
    price = client.get("/api/v1/price", params={"service": "whatsapp", "country": cheapest["id"]})
    assert price.json()["price"] == cheapest["price"]  # /price alone would pick it


def test_catalog_can_be_switched_off(served):
    sb, client, _ = served
    sb.set_catalog_available(False)
    assert (
        client.get("/api/v1/catalog/countries", params={"service": "whatsapp"}).status_code == 404
    )
    sb.set_catalog_available(True)
    assert (
        client.get("/api/v1/catalog/countries", params={"service": "whatsapp"}).status_code == 200
    )
    assert client.get("/api/v1/catalog/countries").status_code == 400


def test_same_seed_same_world_other_seed_other(clock):
    def world(seed: int) -> tuple:
        with running_sandbox(seed=seed, clock=clock) as (sb, base_url):
            key = sb.create_account(5.0)
            with httpx.Client(base_url=base_url, headers={"X-API-Key": key}) as client:
                catalog = client.get("/api/v1/catalog/countries", params={"service": "google"})
                order = client.post(
                    f"{CUSTOMER}/purchase",
                    json={"service": "google", "country": in_stock(sb, "google")},
                ).json()
                clock.advance(3)
                code = client.get(f"{CUSTOMER}/order/{order['order_id']}").json()["sms_code"]
        return catalog.json(), order["order_id"], order["phone_number"], code

    assert world(3) == world(3)
    assert world(3) != world(4)


@pytest.mark.parametrize(
    "path", ["balance", "profile", "transactions", "orders", f"order/{uuid.UUID(int=1)}"]
)
def test_account_calls_need_a_valid_key(served, path):
    _, client, _ = served
    with anonymous(client) as anon:
        missing = anon.get(f"{CUSTOMER}/{path}")
        wrong = anon.get(f"{CUSTOMER}/{path}", headers={"X-API-Key": fake_key("stranger")})
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"] == "unauthorized"


def test_purchase_needs_a_key(served):
    _, client, _ = served
    with anonymous(client) as anon:
        response = anon.post(f"{CUSTOMER}/purchase", json={"service": "whatsapp", "country": "US"})
    assert response.status_code == 401


def test_balance_and_profile(served):
    _, client, _ = served
    assert client.get(f"{CUSTOMER}/balance").json() == {"balance_usd": 10.0}
    profile = client.get(f"{CUSTOMER}/profile").json()
    expected = {"id", "email", "telegram_linked", "balance_usd", "total_spent_usd"}
    assert expected | {"total_orders", "active_api_keys", "created_at"} <= set(profile)
    assert profile["balance_usd"] == 10.0 and profile["total_orders"] == 0


def test_created_key_is_key_shaped_and_not_seeded():
    one, two = Sandbox(seed=1).create_account(), Sandbox(seed=1).create_account()
    assert keys.is_key(one) and keys.is_key(two) and one != two


def test_purchase_then_sms_after_the_delay(served, clock):
    sb, client, _ = served
    country = in_stock(sb)
    stock = sb.catalog.offers[("whatsapp", country)].count
    order = buy(client, sb)
    assert uuid.UUID(order["order_id"]).version == 4
    assert order["status"] == "waiting" and order["messages"] == []
    for field in ("phone_number", "price", "expires_at", "cancel_available_at"):
        assert order[field]
    created = datetime.fromisoformat(order["created_at"])
    hold = datetime.fromisoformat(order["swap_available_at"]) - created
    assert hold.total_seconds() == 120
    assert client.get(f"{CUSTOMER}/balance").json()["balance_usd"] == round(10 - order["price"], 2)
    assert sb.catalog.offers[("whatsapp", country)].count == stock - 1

    clock.advance(1.0)
    waiting = client.get(f"{CUSTOMER}/order/{order['order_id']}").json()
    assert waiting["messages"] == [] and waiting["sms_code"] is None
    clock.advance(1.5)
    got = client.get(f"{CUSTOMER}/order/{order['order_id']}").json()
    assert got["status"] == "sms_received"
    [message] = got["messages"]
    assert set(message) == {"content", "sender", "received_at"}
    assert message["sender"] == "WhatsApp"
    assert got["sms_text"] == message["content"]
    assert got["sms_code"] and got["sms_code"] in message["content"]


def test_deliver_sms_and_code_extraction(served):
    sb, client, _ = served
    order = buy(client, sb)
    sb.deliver_sms(order["order_id"], "G-12 is not it; your code: 4821 then 99999", sender="Google")
    got = client.get(f"{CUSTOMER}/order/{order['order_id']}").json()
    assert got["sms_code"] == "4821"
    assert got["messages"][0]["sender"] == "Google"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (None, 400, "missing_params"),
        ({"service": "whatsapp"}, 400, "missing_params"),
        ({"service": "nosuchservice", "country": "US"}, 400, "invalid_service"),
    ],
)
def test_purchase_bad_requests(served, body, status, error):
    _, client, _ = served
    response = client.post(f"{CUSTOMER}/purchase", json=body)
    assert (response.status_code, response.json()["error"]) == (status, error)


def test_purchase_invalid_json(served):
    _, client, _ = served
    response = client.post(f"{CUSTOMER}/purchase", content=b"{not json")
    assert response.status_code == 400 and response.json()["error"] == "missing_params"


def test_purchase_out_of_stock(served):
    sb, client, _ = served
    empty = next(c for (s, c), o in sb.catalog.offers.items() if s == "whatsapp" and not o.count)
    response = client.post(f"{CUSTOMER}/purchase", json={"service": "whatsapp", "country": empty})
    assert response.status_code == 409 and response.json()["error"] == "no_numbers"


def test_purchase_insufficient_balance(served):
    sb, client, _ = served
    poor = sb.create_account(balance_usd=0.01)
    response = client.post(
        f"{CUSTOMER}/purchase",
        json={"service": "whatsapp", "country": in_stock(sb)},
        headers={"X-API-Key": poor},
    )
    assert response.status_code == 402 and response.json()["error"] == "insufficient_balance"
    assert sb.balance(poor) == 0.01


def test_cancel_during_the_hold_is_too_early(served, clock):
    sb, client, _ = served
    sb.sms_delay = None  # no SMS: only the hold stands in the way
    order = buy(client, sb)
    early = client.post(f"{CUSTOMER}/cancel/{order['order_id']}")
    assert early.status_code == 425
    assert early.headers["Retry-After"] == "120"
    assert early.json()["wait_seconds"] == 120
    assert early.json()["retry_at"] == order["cancel_available_at"]
    clock.advance(119.5)
    still = client.post(f"{CUSTOMER}/cancel/{order['order_id']}")
    assert still.status_code == 425 and still.headers["Retry-After"] == "1"


def test_cancel_after_hold_refunds(clock):
    with running_sandbox(sms_delay=None, clock=clock) as (sb, base_url):
        key = sb.create_account(10.0)
        with httpx.Client(base_url=base_url, headers={"X-API-Key": key}) as client:
            order = buy(client, sb)
            clock.advance(120)
            done = client.post(f"{CUSTOMER}/cancel/{order['order_id']}")
            assert done.status_code == 200
            assert done.json()["success"] is True and done.json()["refunded"] is True
            assert client.get(f"{CUSTOMER}/balance").json()["balance_usd"] == 10.0
            again = client.post(f"{CUSTOMER}/cancel/{order['order_id']}")
            assert again.status_code == 409 and again.json()["error"] == "order_closed"
            kinds = [
                t["type"] for t in client.get(f"{CUSTOMER}/transactions").json()["transactions"]
            ]
            assert kinds == ["refund", "purchase", "deposit"]


def test_cancel_refused_once_an_sms_arrived(served, clock):
    sb, client, _ = served
    order = buy(client, sb)
    clock.advance(121)
    response = client.post(f"{CUSTOMER}/cancel/{order['order_id']}")
    assert response.status_code == 409 and response.json()["error"] == "sms_received"


def test_swap_hold_then_new_number(clock):
    with running_sandbox(sms_delay=None, clock=clock) as (sb, base_url):
        key = sb.create_account(10.0)
        with httpx.Client(base_url=base_url, headers={"X-API-Key": key}) as client:
            order = buy(client, sb)
            early = client.post(f"{CUSTOMER}/swap/{order['order_id']}")
            assert early.status_code == 425 and early.json()["error"] == "too_early"
            clock.advance(130)
            swapped = client.post(f"{CUSTOMER}/swap/{order['order_id']}")
            assert swapped.status_code == 200
            body = swapped.json()
            assert body["order_id"] == order["order_id"]
            assert body["phone_number"] != order["phone_number"]
            assert body["swap_available_at"] > order["swap_available_at"]  # the hold restarts
            assert client.post(f"{CUSTOMER}/swap/{order['order_id']}").status_code == 425
            assert client.get(f"{CUSTOMER}/balance").json()["balance_usd"] == round(
                10 - order["price"], 2
            )


def test_expiry_refunds_unused_and_completes_used(served, clock):
    sb, client, _ = served
    used = buy(client, sb)
    clock.advance(3)  # its SMS arrives
    sb.sms_delay = None  # the next order gets none
    unused = buy(client, sb)
    clock.advance(1200)
    assert client.get(f"{CUSTOMER}/order/{used['order_id']}").json()["status"] == "completed"
    assert client.get(f"{CUSTOMER}/order/{unused['order_id']}").json()["status"] == "expired"
    refunds = client.get(f"{CUSTOMER}/transactions", params={"type": "refund"}).json()
    assert [t["order_id"] for t in refunds["transactions"]] == [unused["order_id"]]


def test_orders_filter_and_cap(clock):
    with running_sandbox(sms_delay=None, rate_limit_per_minute=None, clock=clock) as (sb, url):
        key = sb.create_account(500.0)
        with httpx.Client(base_url=url, headers={"X-API-Key": key}) as client:
            bought = [buy(client, sb)["order_id"] for _ in range(55)]
            clock.advance(120)
            client.post(f"{CUSTOMER}/cancel/{bought[0]}")
            everything = client.get(f"{CUSTOMER}/orders").json()
            assert len(everything["orders"]) == 50 and everything["count"] == 50
            assert everything["orders"][0]["order_id"] == bought[-1]  # newest first
            cancelled = client.get(f"{CUSTOMER}/orders", params={"status": "cancelled"}).json()
            assert [o["order_id"] for o in cancelled["orders"]] == [bought[0]]
            active = client.get(f"{CUSTOMER}/orders", params={"status": "active"}).json()
            assert all(o["status"] == "waiting" for o in active["orders"])
            bad = client.get(f"{CUSTOMER}/orders", params={"status": "sideways"})
            assert bad.status_code == 400


def test_transactions_filters(served, clock):
    sb, client, _ = served
    buy(client, sb)
    clock.advance(86400 * 2)
    buy(client, sb)
    url = f"{CUSTOMER}/transactions"
    everything = client.get(url).json()
    assert everything["count"] == 3 and everything["limit"] == 50 and everything["offset"] == 0
    purchases = client.get(url, params={"type": "purchase"}).json()
    assert purchases["count"] == 2
    assert {t["type"] for t in purchases["transactions"]} == {"purchase"}
    latest = purchases["transactions"][0]["created_at"]
    since = client.get(url, params={"type": "purchase", "from": latest}).json()
    assert since["count"] == 1
    until = client.get(url, params={"to": latest[:10]}).json()  # a date: midnight UTC
    assert until["count"] == 2
    page = client.get(url, params={"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and len(page["transactions"]) == 1
    assert page["transactions"][0] == everything["transactions"][1]
    for params in ({"type": "gift"}, {"limit": 0}, {"limit": 201}, {"offset": -1}, {"from": "x"}):
        assert client.get(url, params=params).status_code == 400, params


def test_rate_limit_per_key_with_retry_after(clock):
    with running_sandbox(rate_limit_per_minute=5, clock=clock) as (sb, base_url):
        first, second = sb.create_account(), sb.create_account()
        with httpx.Client(base_url=base_url) as client:
            one = {"X-API-Key": first}
            for _ in range(5):
                assert client.get(f"{CUSTOMER}/balance", headers=one).status_code == 200
                clock.advance(1)
            limited = client.get(f"{CUSTOMER}/balance", headers=one)
            assert limited.status_code == 429
            assert limited.headers["Retry-After"] == "55"
            assert limited.json()["error"] == "rate_limited"
            other = client.get(f"{CUSTOMER}/balance", headers={"X-API-Key": second})
            assert other.status_code == 200
            for _ in range(10):  # public calls without a key are not counted
                assert client.get(f"{CUSTOMER}/services").status_code == 200
            clock.advance(55)
            assert client.get(f"{CUSTOMER}/balance", headers=one).status_code == 200


def test_idempotency_key_same_order_charged_once(served):
    sb, client, key = served
    idem = {"X-Idempotency-Key": str(uuid.uuid4())}
    first = buy(client, sb, **idem)
    second = buy(client, sb, **idem)
    assert first["order_id"] == second["order_id"]
    assert sb.balance(key) == round(10 - first["price"], 2)
    assert len(client.get(f"{CUSTOMER}/orders").json()["orders"]) == 1
    other = client.post(
        f"{CUSTOMER}/purchase",
        json={"service": "telegram", "country": in_stock(sb, "telegram")},
        headers=idem,
    )
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
    third = buy(client, sb)  # no idempotency key: a new order
    assert third["order_id"] != first["order_id"]


def test_orders_of_others_and_unknown_ids_are_404(served):
    sb, client, _ = served
    order = buy(client, sb)
    stranger = sb.create_account()
    theirs = client.get(f"{CUSTOMER}/order/{order['order_id']}", headers={"X-API-Key": stranger})
    assert theirs.status_code == 404
    for path in ("order/not-an-order", "cancel/not-an-order", "swap/not-an-order"):
        method = "GET" if path.startswith("order") else "POST"
        assert client.request(method, f"{CUSTOMER}/{path}").status_code == 404
    # an escaped traversal stays inside the path segment: no order, never the balance
    escaped = client.get(f"{CUSTOMER}/order/..%2Fbalance")
    assert escaped.status_code == 404 and "balance_usd" not in escaped.text


def test_key_in_url_is_refused_and_never_recorded(served):
    sb, client, key = served
    for name in ("api_key", "apiKey", "x-api-key"):
        response = client.get(f"{CUSTOMER}/balance", params={name: key})
        assert response.status_code == 400 and response.json()["error"] == "key_in_url"
    assert sb.requests, "requests are recorded"
    assert all(key not in path for _, path in sb.requests)
    masked = [p for _, p in sb.requests if p.startswith(f"{CUSTOMER}/balance?api_key=")]
    assert len(masked) == 1 and "redacted" in masked[0]


def test_requests_are_counted(served):
    sb, client, _ = served
    before = len(sb.requests)
    client.get("/api/v1/catalog/countries", params={"service": "whatsapp"})
    assert sb.requests[before:] == [("GET", "/api/v1/catalog/countries?service=whatsapp")]


def test_injected_server_error_then_recovery(served):
    sb, client, _ = served
    sb.fail_next(f"{CUSTOMER}/balance", status=503, times=2)
    assert client.get(f"{CUSTOMER}/balance").status_code == 503
    assert client.get(f"{CUSTOMER}/profile").status_code == 200  # other paths unaffected
    assert client.get(f"{CUSTOMER}/balance").json()["error"] == "internal_error"
    assert client.get(f"{CUSTOMER}/balance").status_code == 200


def test_unknown_route_and_wrong_method(served):
    _, client, _ = served
    assert client.get("/api/v1/nothing").status_code == 404
    wrong = client.get(f"{CUSTOMER}/purchase")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


def test_lost_answer_after_a_purchase_went_through(served):
    sb, client, key = served
    sb.fail_next(f"{CUSTOMER}/purchase", status=502, after_applying=True)
    lost = client.post(
        f"{CUSTOMER}/purchase", json={"service": "whatsapp", "country": in_stock(sb)}
    )
    assert lost.status_code == 502
    [order] = client.get(f"{CUSTOMER}/orders").json()["orders"]  # bought all the same
    assert sb.balance(key) == round(10 - order["price"], 2)


def test_recorded_requests_can_be_bounded(clock):
    sb = Sandbox(clock=clock, keep_requests=10)
    for n in range(25):
        sb.record("GET", f"/health?n={n}")
    assert len(sb.requests) <= 10
    assert sb.requests[-1] == ("GET", "/health?n=24")


def test_default_clock_follows_freezegun():
    from freezegun import freeze_time

    with freeze_time("2030-01-02 03:04:05"):
        sb = Sandbox()
        key = sb.create_account(1.0)
        profile = sb.profile(sb.authenticate(key))
    assert profile["created_at"] == "2030-01-02T03:04:05.000Z"


def test_oversized_body_is_refused(served):
    _, client, _ = served
    response = client.post(f"{CUSTOMER}/purchase", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"
