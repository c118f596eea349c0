"""What the composite tools do, apart from how they are listed: the Node.js server's behaviour
with its weaknesses fixed (one catalog call for the cheapest countries, local hold checks)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from mcp_server.api import ApiError, VirtualSMS
from mcp_server.orders import cooldown, now, parse_time

ACTIVE_STATUSES = ("created", "waiting")
ORDERS_CAP = 50


def _items(body: Any, field: str) -> list[dict[str, Any]]:
    items = body.get(field, []) if isinstance(body, dict) else body
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _matches(item: dict[str, Any], needle: str, *fields: str) -> bool:
    needle = needle.casefold()
    return any(needle in str(item.get(f, "")).casefold() for f in fields)


async def list_services(api: VirtualSMS, search: str | None) -> dict[str, Any]:
    """Services, filtered by a case-insensitive substring of their id or name."""
    services = _items(await api.services(), "services")
    if search:
        services = [s for s in services if _matches(s, search, "service_id", "service_name")]
    return {"success": True, "count": len(services), "services": services}


async def list_countries(api: VirtualSMS, service: str | None) -> dict[str, Any]:
    """With a service: the catalog (price and stock per country); else the plain list."""
    if service:
        try:
            countries = _items(await api.catalog(service), "countries")
        except ApiError as exc:
            if exc.status != 404:
                raise
        else:
            return {
                "success": True,
                "service": service,
                "count": len(countries),
                "countries": countries,
            }
    countries = _items(await api.countries(), "countries")
    return {"success": True, "count": len(countries), "countries": countries}


async def find_cheapest(
    api: VirtualSMS, service: str, limit: int, concurrency: int
) -> dict[str, Any]:
    """One catalog call (price and stock together); bounded ``/price`` calls if it is missing."""
    limit = max(1, min(limit, 50))
    try:
        catalog = _items(await api.catalog(service), "countries")
    except ApiError as exc:
        if exc.status != 404:
            raise
        return await _cheapest_by_price(api, service, limit, concurrency)
    in_stock = [c for c in catalog if _number(c.get("count")) > 0 and _has_price(c)]
    in_stock.sort(key=lambda c: float(c["price"]))
    options = [
        {
            "country": c.get("id"),
            "country_name": c.get("name"),
            "price": c.get("price"),
            "available": c.get("count"),
        }
        for c in in_stock[:limit]
    ]
    return {"success": True, "service": service, "source": "catalog", "cheapest": options}


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _has_price(item: dict[str, Any]) -> bool:
    return _number(item.get("price")) > 0


async def _cheapest_by_price(
    api: VirtualSMS, service: str, limit: int, concurrency: int
) -> dict[str, Any]:
    countries = _items(await api.countries(), "countries")
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(country: dict[str, Any]) -> dict[str, Any] | None:
        async with gate:
            try:
                body = await api.price(service, str(country.get("country_id")))
            except ApiError as exc:
                if exc.status == 404:
                    return None
                raise
        if not isinstance(body, dict) or not _has_price(body):
            return None
        return {
            "country": country.get("country_id"),
            "country_name": country.get("country_name"),
            "price": body["price"],
            "available": None,
        }

    found = [r for r in await asyncio.gather(*(one(c) for c in countries)) if r]
    found.sort(key=lambda r: float(r["price"]))
    return {
        "success": True,
        "service": service,
        "source": "price",
        "note": "The stock catalog was unavailable: prices are current, stock is unknown.",
        "cheapest": found[:limit],
    }


async def cancel_or_swap(api: VirtualSMS, order_id: str, action: str) -> dict[str, Any]:
    """Answer the hold locally when it is still running; otherwise make the one upstream call."""
    order = await api.order(order_id)
    waiting = cooldown(order, f"{action}_available_at")
    if waiting is not None:
        return waiting
    result = await (api.cancel(order_id) if action == "cancel" else api.swap(order_id))
    if action == "swap" and isinstance(result, dict):
        return {"success": True, **result}
    return result if isinstance(result, dict) else {"success": True, "result": result}


async def cancel_all(api: VirtualSMS) -> dict[str, Any]:
    """Cancel every active order past its hold; report held ones and failures, never stop early."""
    cancelled, held, failures = [], [], []
    seen: set[str] = set()
    for status in ACTIVE_STATUSES:
        for order in await api.orders(status):
            order_id = str(order.get("order_id", ""))
            if not order_id or order_id in seen:
                continue
            seen.add(order_id)
            waiting = cooldown(order, "cancel_available_at")
            if waiting is not None:
                held.append({"order_id": order_id, "wait_seconds": waiting["wait_seconds"]})
                continue
            try:
                result = await api.cancel(order_id)
                refunded = result.get("refunded") if isinstance(result, dict) else None
                cancelled.append({"order_id": order_id, "refunded": refunded})
            except ApiError as exc:
                failures.append({"order_id": order_id, "error": exc.code, "message": exc.message})
    return {
        "success": not failures,
        "cancelled": cancelled,
        "cooldown_active": held,
        "failed": failures,
    }


def _recent(orders: list[dict[str, Any]], since_days: int | None) -> list[dict[str, Any]]:
    """Orders created in the last ``since_days`` days (by the one clock); undated ones kept."""
    if not since_days:
        return orders
    cutoff = now() - timedelta(days=since_days)
    return [o for o in orders if (t := parse_time(o.get("created_at"))) is None or t >= cutoff]


async def order_history(
    api: VirtualSMS,
    status: str | None,
    service: str | None,
    country: str | None,
    since_days: int | None,
    limit: int,
) -> dict[str, Any]:
    """Orders filtered here (the API filters only by status), newest first as the API sends."""
    orders = _recent(await api.orders(status), since_days)
    if service:
        orders = [o for o in orders if str(o.get("service", "")).casefold() == service.casefold()]
    if country:
        orders = [o for o in orders if str(o.get("country", "")).casefold() == country.casefold()]
    orders = orders[: max(1, min(limit, ORDERS_CAP))]
    return {"success": True, "count": len(orders), "orders": orders}


async def get_stats(api: VirtualSMS, since_days: int) -> dict[str, Any]:
    """Counts, success rate and spending over the recent orders the API returns."""
    orders = _recent(await api.orders(), max(1, since_days))
    statuses = Counter(str(o.get("status")) for o in orders)
    received = statuses["sms_received"] + statuses["completed"]
    spent = sum(
        _number(o.get("price")) for o in orders if o.get("status") not in ("cancelled", "expired")
    )
    return {
        "success": True,
        "since_days": since_days,
        "orders": len(orders),
        "by_status": dict(statuses),
        "by_service": dict(Counter(str(o.get("service")) for o in orders)),
        "success_rate": round(received / len(orders), 3) if orders else None,
        "spent_usd": round(spent, 2),
        "note": f"Computed from the latest {ORDERS_CAP} orders (the API's cap).",
    }
