"""The sandbox's state and rules: accounts, orders, the hold, rate limit, idempotency.

A local test double of the VirtualSMS API (FACTS §1), never the service. Every operation takes
the one lock, reads time only through ``clock`` and raises ``ApiError`` for an HTTP error, so
the web layer in ``app.py`` is a thin mapping. Nothing is stored on disk.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcp_server.sandbox import events
from mcp_server.sandbox.catalog import Catalog, build_catalog
from mcp_server.sandbox.model import (
    ACTIVE,
    STATUSES,
    TRANSACTION_TYPES,
    Account,
    ApiError,
    Message,
    Order,
    extract_code,
    int_param,
    new_key,
    parse_when,
    ws_sms,
)
from vsms_guard.redact import Redactor

ORDERS_CAP = 50
RATE_WINDOW = 60.0
LOW_BALANCE_USD = 1.0


@dataclass
class Failure:
    """An injected error: ``applied`` runs the call first, as when only the answer is lost."""

    path_prefix: str
    status: int
    remaining: int
    applied: bool = False


class Sandbox:
    """In-memory VirtualSMS stand-in; ``.app`` is its ASGI app (see ``app.py``)."""

    def __init__(
        self,
        seed: int = 0,
        sms_delay: float | None = 2.0,
        hold_seconds: float = 120.0,
        rate_limit_per_minute: int | None = 60,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        clock: Callable[[], float] | None = None,
        *,
        order_ttl: float = 1200.0,
        webhook_retry_delays: Sequence[float] = events.RETRY_DELAYS,
        webhook_pause_after: int = events.PAUSE_AFTER_FAILURES,
        low_balance_usd: float = LOW_BALANCE_USD,
        keep_requests: int | None = None,
    ) -> None:
        self.seed = seed
        self.sms_delay = sms_delay
        self.hold_seconds = hold_seconds
        self.rate_limit_per_minute = rate_limit_per_minute
        self.order_ttl = order_ttl
        self.low_balance_usd = low_balance_usd
        # Looked up at call time so freezegun's patched time.time is seen.
        self.clock: Callable[[], float] = clock or (lambda: time.time())
        self.catalog: Catalog = build_catalog(seed)
        self.requests: list[tuple[str, str]] = []
        self.keep_requests = keep_requests  # None: keep all (tests); the CLI bounds it
        self.redactor = Redactor([webhook_secret or ""])  # also every account key, any shape
        self.catalog_available = True
        self._rng = random.Random(f"vsms-sandbox-{seed}")  # ids and numbers, in call order
        self._event_rng = random.Random(f"vsms-sandbox-events-{seed}")  # apart: timing varies
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}  # api key -> account
        self._owners: dict[str, Account] = {}  # account id -> account
        self._orders: dict[str, Order] = {}
        self._failures: list[Failure] = []
        self.hub = events.EventHub(
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            retry_delays=webhook_retry_delays,
            pause_after=webhook_pause_after,
            clock=self.clock,
            new_delivery_id=lambda: "dlv_" + self._ulid(),
        )
        self._app: Any = None

    @property
    def app(self) -> Any:
        """The Starlette app (REST, WebSocket, /health), built once."""
        if self._app is None:
            from mcp_server.sandbox.app import build_app

            self._app = build_app(self)
        return self._app

    # --- test and operator controls ---

    def create_account(self, balance_usd: float = 10.0, *, key: str | None = None) -> str:
        """A new funded account; returns its API key (``key`` lets the operator choose it)."""
        if key is None:
            key = new_key()
        with self._lock:
            if not key or key in self._accounts:
                raise ValueError("the account key must be non-empty and unused")
            self.redactor.add_secret(key)
            now = self.clock()
            number = len(self._accounts) + 1
            account = Account(
                account_id=f"usr_{self._rng.getrandbits(48):012x}",
                email=f"sandbox-{number}@example.invalid",
                balance=0.0,
                created_at=now,
            )
            self._accounts[key] = self._owners[account.account_id] = account
            if balance_usd:
                self._transact(account, "deposit", balance_usd, "sandbox starting balance", None)
        return key

    def deliver_sms(self, order_id: str, text: str, sender: str = "WhatsApp") -> None:
        """Push an SMS to an order now (REST, WebSocket and webhook all see it)."""
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                raise KeyError("unknown order id")
            if order.status not in ACTIVE:
                raise ValueError(f"order is {order.status}; it cannot receive an SMS")
            published = [self._receive(order, text, sender, self.clock())]
        self.hub.publish(published)

    def set_catalog_available(self, available: bool) -> None:
        """``False`` makes ``/api/v1/catalog/countries`` answer 404 (fallback tests)."""
        self.catalog_available = available

    def fail_next(
        self,
        path_prefix: str = "/api/v1/",
        status: int = 500,
        times: int = 1,
        *,
        after_applying: bool = False,
    ) -> None:
        """Answer the next ``times`` requests under ``path_prefix`` with ``status`` (5xx tests).

        ``after_applying=True`` carries the call out first (a purchase is made and charged) and
        only then fails, like a response lost on the way: the case where a blind retry of a
        mutating call buys twice.
        """
        with self._lock:
            self._failures.append(Failure(path_prefix, status, times, after_applying))

    def order(self, order_id: str) -> dict[str, Any]:
        """The current JSON view of an order, for tests."""
        with self._lock:
            self._tick_locked_and_publish()
            return self._orders[order_id].view()

    def balance(self, key: str) -> float:
        """The balance of the account behind ``key``, for tests."""
        with self._lock:
            return round(self._accounts[key].balance, 2)

    @property
    def webhook_attempts(self) -> list[events.WebhookAttempt]:
        return self.hub.attempts

    # --- time ---

    def tick(self) -> None:
        """Deliver due automatic SMS and expire orders whose time is up."""
        with self._lock:
            published = self._tick_locked()
        self.hub.publish(published)

    def _tick_locked(self) -> list[events.Event]:
        now = self.clock()
        published: list[events.Event] = []
        for order in self._orders.values():
            if order.status not in ACTIVE:
                continue
            due = order.sms_due
            if due is not None and now >= due and due < order.expires_at:
                order.sms_due = None
                code = self._code(order)
                name = self.catalog.services[order.service]
                text = f"Your {name} verification code is {code}. Do not share it."
                published.append(self._receive(order, text, name, due))
            if now >= order.expires_at:
                published.extend(self._expire(order))
        return published

    # --- used by app.py; ``account`` is already authenticated ---

    def failure_for(self, path: str) -> Failure | None:
        """The injected failure for ``path``, consuming one use, or None."""
        with self._lock:
            for failure in self._failures:
                if path.startswith(failure.path_prefix):
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                    return failure
        return None

    def record(self, method: str, path: str) -> None:
        """Append to ``requests`` (masked); past ``keep_requests`` the oldest half is dropped."""
        self.requests.append((method, self.redactor.text(path)))
        if self.keep_requests and len(self.requests) > self.keep_requests:
            del self.requests[: len(self.requests) // 2]

    def authenticate(self, key: str | None) -> Account:
        """The account for ``key``, counted against the rate limit; 401 or 429 otherwise."""
        with self._lock:
            account = self._accounts.get(key) if key else None
            if account is None:
                raise ApiError(401, "unauthorized", "invalid or missing API key")
            limit = self.rate_limit_per_minute
            if limit:
                now = self.clock()
                while account.hits and account.hits[0] <= now - RATE_WINDOW:
                    account.hits.popleft()
                if len(account.hits) >= limit:
                    retry = max(1, math.ceil(account.hits[0] + RATE_WINDOW - now))
                    raise ApiError(
                        429,
                        "rate_limited",
                        f"more than {limit} requests per minute; retry in {retry} s",
                        headers={"Retry-After": str(retry)},
                        retry_after=retry,
                    )
                account.hits.append(now)
            self._tick_locked_and_publish()
            return account

    def _tick_locked_and_publish(self) -> None:
        published = self._tick_locked()
        if published:
            self.hub.publish(published)

    def services(self) -> dict[str, Any]:
        rows = [{"service_id": s, "service_name": n} for s, n in self.catalog.services.items()]
        return {"services": rows, "success": True}

    def countries(self, service: str | None) -> dict[str, Any]:
        wanted = self._service(service) if service else None
        rows = [
            {"country_id": c, "country_name": name, "dial_code": "+" + dial}
            for c, (name, dial) in self.catalog.countries.items()
            if wanted is None or (wanted, c) in self.catalog.offers
        ]
        return {"countries": rows, "success": True}

    def price(self, service: str | None, country: str | None) -> dict[str, Any]:
        if not service or not country:
            raise ApiError(400, "missing_params", "service and country are required")
        s, c = self.catalog.service_id(service), self.catalog.country_id(country)
        offer = self.catalog.offers.get((s, c)) if s and c else None
        if offer is None:
            raise ApiError(404, "not_found", "no price for this service and country")
        return {"price": offer.price, "country": c, "service": s, "success": True}

    def catalog_countries(self, service: str | None) -> dict[str, Any]:
        if not self.catalog_available:
            raise ApiError(404, "not_found", "catalog not available")
        if not service:
            raise ApiError(400, "missing_params", "service is required")
        s = self._service(service)
        with self._lock:
            rows = [
                {"id": c, "name": self.catalog.countries[c][0], "price": o.price, "count": o.count}
                for (svc, c), o in self.catalog.offers.items()
                if svc == s
            ]
        return {"countries": rows}

    def balance_view(self, account: Account) -> dict[str, Any]:
        return {"balance_usd": round(account.balance, 2)}

    def profile(self, account: Account) -> dict[str, Any]:
        with self._lock:
            spent = -sum(t["amount_usd"] for t in account.transactions if t["type"] == "purchase")
            refunded = sum(t["amount_usd"] for t in account.transactions if t["type"] == "refund")
            total = sum(1 for o in self._orders.values() if o.account_id == account.account_id)
            return {
                "id": account.account_id,
                "email": account.email,
                "telegram_linked": False,
                "balance_usd": round(account.balance, 2),
                "total_spent_usd": round(spent - refunded, 2),
                "total_orders": total,
                "active_api_keys": 1,
                "created_at": events.iso(account.created_at),
                "sandbox": True,
            }

    def transactions(self, account: Account, params: Mapping[str, str]) -> dict[str, Any]:
        kind = params.get("type")
        if kind and kind not in TRANSACTION_TYPES:
            raise ApiError(400, "invalid_params", f"type must be one of {TRANSACTION_TYPES}")
        start = parse_when(params["from"], "from") if params.get("from") else None
        end = parse_when(params["to"], "to") if params.get("to") else None
        limit = int_param(params, "limit", 50, 1, 200)
        offset = int_param(params, "offset", 0, 0, None)
        with self._lock:
            rows = [
                t
                for t in reversed(account.transactions)
                if (not kind or t["type"] == kind)
                and (start is None or t["_ts"] >= start)
                and (end is None or t["_ts"] <= end)
            ]
            page = [{k: v for k, v in t.items() if k != "_ts"} for t in rows]
        return {
            "count": len(rows),
            "limit": limit,
            "offset": offset,
            "transactions": page[offset : offset + limit],
        }

    def purchase(
        self, account: Account, body: Any, idempotency_key: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Buy a number; the same ``X-Idempotency-Key`` returns the first answer again."""
        if not isinstance(body, dict) or not body.get("service") or not body.get("country"):
            raise ApiError(400, "missing_params", "service and country are required")
        request = (str(body["service"]), str(body["country"]))
        published: list[events.Event] = []
        with self._lock:
            if idempotency_key:
                seen = account.idempotency.get(idempotency_key)
                if seen is not None:
                    if seen[0] != request:
                        raise ApiError(
                            409,
                            "idempotency_conflict",
                            "this X-Idempotency-Key was used for a different purchase",
                        )
                    return 200, self._orders[seen[1]["order_id"]].view()
            s, c = self.catalog.service_id(request[0]), self.catalog.country_id(request[1])
            offer = self.catalog.offers.get((s, c)) if s and c else None
            if s is None or c is None or offer is None:
                raise ApiError(400, "invalid_service", "unknown service or country")
            if offer.count <= 0:
                raise ApiError(409, "no_numbers", "no numbers in stock for this country")
            if account.balance + 1e-9 < offer.price:
                raise ApiError(
                    402,
                    "insufficient_balance",
                    f"balance {account.balance:.2f} USD is below the price {offer.price:.2f} USD",
                )
            now = self.clock()
            offer.count -= 1
            order = Order(
                order_id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                account_id=account.account_id,
                service=s,
                country=c,
                phone_number=self._phone(c),
                price=offer.price,
                created_at=now,
                expires_at=now + self.order_ttl,
                available_at=now + self.hold_seconds,
                sms_due=None if self.sms_delay is None else now + self.sms_delay,
            )
            self._orders[order.order_id] = order
            before = account.balance
            self._transact(account, "purchase", -offer.price, f"{s} number ({c})", order.order_id)
            if before >= self.low_balance_usd > account.balance:
                published.append(self._balance_low(account))
            view = order.view()
            if idempotency_key:
                account.idempotency[idempotency_key] = (request, view)
        self.hub.publish(published)
        return 200, view

    def get_order(self, account: Account, order_id: str) -> dict[str, Any]:
        with self._lock:
            return self._own_order(account, order_id).view()

    def orders(self, account: Account, status: str | None) -> dict[str, Any]:
        if status and status not in STATUSES and status != "active":
            raise ApiError(400, "invalid_params", f"status must be one of {STATUSES} or active")
        wanted = ACTIVE if status == "active" else (status,) if status else STATUSES
        with self._lock:
            mine = [
                o
                for o in reversed(self._orders.values())
                if o.account_id == account.account_id and o.status in wanted
            ]
            page = [o.view() for o in mine[:ORDERS_CAP]]
            return {"orders": page, "count": len(page)}

    def cancel(self, account: Account, order_id: str) -> dict[str, Any]:
        with self._lock:
            order = self._own_order(account, order_id)
            self._check_changeable(order, "cancel")
            order.status = "cancelled"
            order.sms_due = None
            self.catalog.offers[(order.service, order.country)].count += 1
            self._transact(account, "refund", order.price, "order cancelled", order.order_id)
            event = self._order_event(order, "order.cancelled", refunded=True)
        self.hub.publish([event, events.Event(order_id=order_id, ws_message=events.CLOSE)])
        return {"success": True, "refunded": True, "order_id": order_id}

    def swap(self, account: Account, order_id: str) -> dict[str, Any]:
        """A new number on the same order, at no charge; the hold and SMS timer start again."""
        with self._lock:
            order = self._own_order(account, order_id)
            self._check_changeable(order, "swap")
            previous = order.phone_number
            now = self.clock()
            order.phone_number = self._phone(order.country)
            order.available_at = now + self.hold_seconds
            order.sms_due = None if self.sms_delay is None else now + self.sms_delay
            event = self._order_event(order, "order.swapped", previous_phone_number=previous)
            view = order.view()
        self.hub.publish([event])
        return view

    def ws_snapshot(self, key: str | None, order_id: str) -> tuple[Order, list[dict[str, Any]]]:
        """For a new socket: the order and the messages it already has (401/404 otherwise)."""
        with self._lock:
            account = self._accounts.get(key) if key else None
            if account is None:
                raise ApiError(401, "unauthorized", "invalid or missing API key")
            order = self._own_order(account, order_id)
            self._tick_locked_and_publish()
            return order, [ws_sms(m) for m in order.messages]

    # --- internals (lock held) ---

    def _service(self, value: str) -> str:
        service = self.catalog.service_id(value)
        if service is None:
            raise ApiError(400, "invalid_service", "unknown service")
        return service

    def _own_order(self, account: Account, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None or order.account_id != account.account_id:
            raise ApiError(404, "not_found", "order not found")
        return order

    def _check_changeable(self, order: Order, action: str) -> None:
        if order.status not in ACTIVE:
            raise ApiError(409, "order_closed", f"order is {order.status}; cannot {action}")
        if order.messages:
            raise ApiError(409, "sms_received", f"order already has an SMS; cannot {action}")
        now = self.clock()
        if now < order.available_at:
            wait = max(1, math.ceil(order.available_at - now))
            raise ApiError(
                425,
                "too_early",
                f"{action} is possible after the {self.hold_seconds:g} s hold; wait {wait} s",
                headers={"Retry-After": str(wait)},
                retry_at=events.iso(order.available_at),
                wait_seconds=wait,
            )

    def _receive(self, order: Order, text: str, sender: str, when: float) -> events.Event:
        order.messages.append(Message(text, sender, when))
        order.status = "sms_received"
        message = order.messages[-1]
        data = self._order_data(order)
        data.update(
            code=extract_code(text),
            message=text,
            sender=sender,
            received_at=events.iso(message.received_at),
        )
        return events.Event(
            order_id=order.order_id,
            ws_message=ws_sms(message),
            ws_index=len(order.messages) - 1,
            envelope=self._envelope("sms.received", data),
        )

    def _expire(self, order: Order) -> list[events.Event]:
        account = self._owners[order.account_id]
        if order.messages:
            order.status = "completed"
            return [events.Event(order_id=order.order_id, ws_message=events.CLOSE)]
        order.status = "expired"
        order.sms_due = None
        self._transact(account, "refund", order.price, "order expired unused", order.order_id)
        event = self._order_event(order, "order.expired", refunded=True)
        event.ws_message = {"type": "expired"}
        return [event]

    def _order_event(self, order: Order, kind: str, **extra: Any) -> events.Event:
        data = self._order_data(order)
        data.update(extra)
        return events.Event(order_id=order.order_id, envelope=self._envelope(kind, data))

    def _order_data(self, order: Order) -> dict[str, Any]:
        return {
            "order_id": order.order_id,
            "phone_number": order.phone_number,
            "service": order.service,
            "country": order.country,
            "test": False,
        }

    def _balance_low(self, account: Account) -> events.Event:
        data = {
            "balance_usd": round(account.balance, 2),
            "threshold_usd": self.low_balance_usd,
            "test": False,
        }
        return events.Event(envelope=self._envelope("balance.low", data))

    def _envelope(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        created = events.iso(self.clock())
        return {"id": "evt_" + self._ulid(), "type": kind, "created_at": created, "data": data}

    def _ulid(self) -> str:
        with self._lock:
            return events.ulid(self.clock(), self._event_rng)

    def _code(self, order: Order) -> str:
        """The automatic SMS code: fixed by seed, order and message number, not by timing."""
        rng = random.Random(f"vsms-sandbox-{self.seed}-{order.order_id}-{len(order.messages)}")
        return f"{rng.randrange(10**6):06d}"

    def _phone(self, country: str) -> str:
        dial = self.catalog.countries[country][1]
        return f"+{dial}{self._rng.randrange(10**9, 10**10)}"

    def _transact(
        self, account: Account, kind: str, amount: float, note: str, order_id: str | None
    ) -> None:
        now = self.clock()
        account.balance = round(account.balance + amount, 2)
        account.transactions.append(
            {
                "id": f"txn_{len(account.transactions) + 1:06d}",
                "type": kind,
                "amount_usd": round(amount, 2),
                "balance_after_usd": account.balance,
                "description": note,
                "order_id": order_id,
                "created_at": events.iso(now),
                "_ts": now,
            }
        )
