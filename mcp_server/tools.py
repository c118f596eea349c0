"""The 18 tools of the Node.js ``virtualsms-mcp`` server: same names, parameters and hints.

Every tool answers a ``CallToolResult`` whose text is JSON in the Node.js server's shapes.
Failures are ``isError`` results with a structured payload (never a JSON-RPC error, never a
key). Discovery tools work without a key; account tools answer ``api_key_required``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from mcp_server.api import ApiError, Upstream, VirtualSMS
from mcp_server.operations import (
    cancel_all,
    cancel_or_swap,
    find_cheapest,
    get_stats,
    list_countries,
    list_services,
    order_history,
)
from mcp_server.orders import order_view
from mcp_server.settings import Settings
from mcp_server.waiting import wait_for_sms

log = logging.getLogger(__name__)

READ = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)
WRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
DESTROY = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
)

# Older agent prompts and the security policy use these names (FACTS §2); accepted, not listed.
LEGACY_ALIASES = {
    "list_services": "virtualsms_list_services",
    "list_countries": "virtualsms_list_countries",
    "check_price": "virtualsms_get_price",
    "find_cheapest": "virtualsms_find_cheapest",
    "search_service": "virtualsms_search_services",
    "get_balance": "virtualsms_get_balance",
    "buy_number": "virtualsms_create_order",
    "check_sms": "virtualsms_get_sms",
    "wait_for_code": "virtualsms_wait_for_sms",
    "active_orders": "virtualsms_list_orders",
}

OrderId = Annotated[str, Field(description="Order id returned by virtualsms_create_order")]
Service = Annotated[str, Field(description="Service id, e.g. 'whatsapp' or 'telegram'")]
Country = Annotated[str, Field(description="Country id or ISO code, e.g. 'US' or 'GB'")]


def _drop_null(schema: dict[str, Any]) -> None:
    """List an optional parameter as its plain type (``{type: string}``), as the Node.js server
    does, instead of pydantic's ``anyOf[X, null]`` with ``default: null``."""
    options = schema.pop("anyOf", [])
    schema.update(next((o for o in options if o != {"type": "null"}), {}))
    if "default" in schema and schema["default"] is None:
        del schema["default"]


def optional(description: str, **constraints: Any) -> Any:
    """``Field`` for an optional parameter (None when omitted)."""
    return Field(description=description, json_schema_extra=_drop_null, **constraints)


def ok(data: Any) -> CallToolResult:
    """A successful result: the JSON text the Node.js server would send."""
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(data, indent=2))])


def failed(payload: dict[str, Any]) -> CallToolResult:
    """An ``isError`` result with a structured payload, never a protocol error."""
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload, indent=2))], is_error=True
    )


class Backend:
    """What tools share: operator settings, the pooled upstream, and whose key to use."""

    def __init__(self, settings: Settings, upstream: Upstream) -> None:
        self.settings = settings
        self.upstream = upstream

    def key_for(self, ctx: Context | None) -> str | None:
        """The caller's key: ``x-api-key`` in HTTP mode (never the env), the env key on stdio."""
        if not self.settings.http_mode:
            return self.settings.env_key
        headers = ctx.headers if ctx is not None else None
        value = (headers or {}).get("x-api-key", "").strip()
        return value or None

    def address_for(self, ctx: Context | None) -> str | None:
        """The HTTP caller's client address (None on stdio), for the per-address budget."""
        if not self.settings.http_mode or ctx is None:
            return None
        request = ctx.request_context.request
        client = getattr(request, "client", None)
        return getattr(client, "host", None) or "unknown"

    def api(self, ctx: Context | None) -> VirtualSMS:
        return VirtualSMS(self.upstream, self.key_for(ctx), self.address_for(ctx))

    async def run(self, tool: str, work: Awaitable[Any]) -> CallToolResult:
        """Await ``work``; an ApiError becomes an ``isError`` result, logged by code only."""
        try:
            return ok(await work)
        except ApiError as exc:
            log.info("tool %s failed: %s", tool, exc.code)
            return failed(exc.payload())


def register(server: MCPServer, backend: Backend) -> list[str]:
    """Add the 18 tools to ``server``; returns their names."""
    names: list[str] = []

    def tool(name: str, hints: ToolAnnotations, description: str) -> Callable:
        names.append(name)
        return server.tool(name=name, description=description, annotations=hints)

    @tool("virtualsms_list_services", READ, "List services that can receive SMS codes.")
    async def virtualsms_list_services(
        ctx: Context,
        search: Annotated[str | None, optional(description="Filter by name or id")] = None,
    ) -> CallToolResult:
        return await backend.run("list_services", list_services(backend.api(ctx), search))

    @tool("virtualsms_list_countries", READ, "List countries; with a service, price and stock.")
    async def virtualsms_list_countries(
        ctx: Context,
        service: Annotated[str | None, optional(description="Service id for price/stock")] = None,
    ) -> CallToolResult:
        return await backend.run("list_countries", list_countries(backend.api(ctx), service))

    @tool("virtualsms_get_price", READ, "Price of a number for a service in a country.")
    async def virtualsms_get_price(
        ctx: Context, service: Service, country: Country
    ) -> CallToolResult:
        return await backend.run("get_price", backend.api(ctx).price(service, country))

    @tool("virtualsms_get_balance", READ, "Account balance (needs an API key).")
    async def virtualsms_get_balance(
        ctx: Context,
        currency: Annotated[str | None, optional(description="Only 'USD' is available")] = None,
    ) -> CallToolResult:
        async def work() -> dict[str, Any]:
            if currency and currency.upper() != "USD":
                raise ApiError("unsupported_currency", "Balances are kept in USD only")
            body = await backend.api(ctx).balance()
            return {"success": True, "currency": "USD", **body}

        return await backend.run("get_balance", work())

    @tool(
        "virtualsms_create_order",
        WRITE,
        "Buy a number for a service and country (spends balance). Then call "
        "virtualsms_wait_for_sms with the order_id.",
    )
    async def virtualsms_create_order(
        ctx: Context, service: Service, country: Country
    ) -> CallToolResult:
        async def work() -> dict[str, Any]:
            order = await backend.api(ctx).purchase(service, country)
            return {"success": True, **order} if isinstance(order, dict) else order

        return await backend.run("create_order", work())

    @tool("virtualsms_get_sms", READ, "Messages received by an order, with the extracted code.")
    async def virtualsms_get_sms(ctx: Context, order_id: OrderId) -> CallToolResult:
        async def work() -> dict[str, Any]:
            return {"success": True, **order_view(await backend.api(ctx).order(order_id))}

        return await backend.run("get_sms", work())

    @tool(
        "virtualsms_cancel_order",
        DESTROY,
        "Cancel an order and refund it (possible 120 s after purchase).",
    )
    async def virtualsms_cancel_order(ctx: Context, order_id: OrderId) -> CallToolResult:
        return await backend.run(
            "cancel_order", cancel_or_swap(backend.api(ctx), order_id, "cancel")
        )

    @tool(
        "virtualsms_wait_for_sms",
        READ,
        "Wait for the SMS of an order and return its code. Never cancels on timeout.",
    )
    async def virtualsms_wait_for_sms(
        ctx: Context,
        order_id: OrderId,
        timeout_seconds: Annotated[int, Field(ge=5, le=600, description="Seconds to wait")] = 60,
    ) -> CallToolResult:
        api = backend.api(ctx)
        work = wait_for_sms(api, backend.settings, order_id, timeout_seconds)
        return await backend.run("wait_for_sms", work)

    @tool(
        "virtualsms_find_cheapest",
        READ,
        "Cheapest countries with numbers in stock for a service (one catalog call).",
    )
    async def virtualsms_find_cheapest(
        ctx: Context,
        service: Service,
        limit: Annotated[int, Field(description="How many countries to return")] = 5,
    ) -> CallToolResult:
        work = find_cheapest(backend.api(ctx), service, limit, backend.settings.price_concurrency)
        return await backend.run("find_cheapest", work)

    @tool("virtualsms_search_services", READ, "Find services whose name or id contains a query.")
    async def virtualsms_search_services(
        ctx: Context, query: Annotated[str, Field(description="Text to look for")]
    ) -> CallToolResult:
        return await backend.run("search_services", list_services(backend.api(ctx), query))

    @tool(
        "virtualsms_swap_number",
        WRITE,
        "Swap an order's number for a new one (possible 120 s after purchase).",
    )
    async def virtualsms_swap_number(ctx: Context, order_id: OrderId) -> CallToolResult:
        return await backend.run("swap_number", cancel_or_swap(backend.api(ctx), order_id, "swap"))

    @tool("virtualsms_list_orders", READ, "Orders of the account, optionally by status.")
    async def virtualsms_list_orders(
        ctx: Context,
        status: Annotated[str | None, optional(description="e.g. waiting, sms_received")] = None,
    ) -> CallToolResult:
        async def work() -> dict[str, Any]:
            orders = await backend.api(ctx).orders(status)
            return {"success": True, "count": len(orders), "orders": orders}

        return await backend.run("list_orders", work())

    @tool("virtualsms_get_order", READ, "One order with its status, number and messages.")
    async def virtualsms_get_order(ctx: Context, order_id: OrderId) -> CallToolResult:
        async def work() -> dict[str, Any]:
            return {"success": True, **order_view(await backend.api(ctx).order(order_id))}

        return await backend.run("get_order", work())

    @tool(
        "virtualsms_cancel_all_orders",
        DESTROY,
        "Cancel every active order past its 120 s hold; reports the ones still held.",
    )
    async def virtualsms_cancel_all_orders(ctx: Context) -> CallToolResult:
        return await backend.run("cancel_all_orders", cancel_all(backend.api(ctx)))

    @tool("virtualsms_order_history", READ, "Past orders, filtered by status/service/country/age.")
    async def virtualsms_order_history(
        ctx: Context,
        status: Annotated[str | None, optional(description="Order status")] = None,
        service: Annotated[str | None, optional(description="Service id")] = None,
        country: Annotated[str | None, optional(description="Country id")] = None,
        since_days: Annotated[
            int | None, optional(ge=1, le=365, description="Only orders of the last N days")
        ] = None,
        limit: Annotated[int, Field(le=50, description="At most 50")] = 20,
    ) -> CallToolResult:
        work = order_history(backend.api(ctx), status, service, country, since_days, limit)
        return await backend.run("order_history", work)

    @tool("virtualsms_get_stats", READ, "Spending and success statistics of recent orders.")
    async def virtualsms_get_stats(
        ctx: Context,
        since_days: Annotated[int, Field(description="Window in days")] = 30,
    ) -> CallToolResult:
        return await backend.run("get_stats", get_stats(backend.api(ctx), since_days))

    @tool("virtualsms_get_profile", READ, "Account profile: email, totals, linked Telegram.")
    async def virtualsms_get_profile(ctx: Context) -> CallToolResult:
        return await backend.run("get_profile", backend.api(ctx).profile())

    @tool("virtualsms_get_transactions", READ, "Deposits, purchases and refunds of the account.")
    async def virtualsms_get_transactions(
        ctx: Context,
        type: Annotated[
            Literal["deposit", "purchase", "refund", "admin_credit"] | None,
            optional(description="Transaction type"),
        ] = None,
        from_: Annotated[
            str | None, optional(validation_alias="from", description="ISO date, inclusive")
        ] = None,
        to: Annotated[str | None, optional(description="ISO date, inclusive")] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="Page size")] = 50,
        offset: Annotated[int, Field(description="Rows to skip")] = 0,
    ) -> CallToolResult:
        async def work() -> Any:
            filters = {"type": type, "from": from_, "to": to, "limit": limit}
            return await backend.api(ctx).transactions(offset=max(0, offset), **filters)

        return await backend.run("get_transactions", work())

    return names
