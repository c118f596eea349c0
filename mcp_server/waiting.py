"""``wait_for_sms``: the order WebSocket (key in a header, never the URL), polling as fallback.

The socket is opened *before* the first order read, so an SMS landing between the two is
either in the read or pushed on the socket. If the socket is refused or drops, the order is
polled at ``Settings.poll_interval`` (well inside 60 requests/min) and a 429 waits out its
``Retry-After``. A timeout never cancels the order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from mcp_server.api import ApiError, VirtualSMS, key_required, path_segment
from mcp_server.orders import SMS_STATUSES, extract_code, order_view
from mcp_server.settings import Settings

log = logging.getLogger(__name__)
PUSH_SMS = frozenset({"sms", "sms_received"})
ENDED = frozenset({"cancelled", "expired"})


def _settled(order: dict[str, Any]) -> dict[str, Any] | None:
    """The final answer if ``order`` already has an SMS or has ended, else None."""
    view = order_view(order)
    if view["messages"] or view.get("status") in SMS_STATUSES:
        return {"success": True, **view}
    if view.get("status") in ENDED:
        return {
            "success": False,
            "error": view["status"],
            "order_id": view.get("order_id"),
            "phone_number": view.get("phone_number"),
            "message": f"The order is {view['status']}; no SMS will arrive.",
        }
    return None


async def _open_socket(
    api: VirtualSMS, settings: Settings, segment: str
) -> ClientConnection | None:
    url = f"{settings.ws_base_url}/ws/orders?order_id={segment}"
    try:
        return await connect(
            url,
            additional_headers={"x-api-key": api.key or ""},
            open_timeout=settings.ws_open_timeout,
            proxy=None,
        )
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        log.info("order socket unavailable (%s); polling instead", type(exc).__name__)
        return None


async def _from_push(
    api: VirtualSMS, order_id: str, event: dict[str, Any], order: dict[str, Any]
) -> dict[str, Any]:
    """Full order shape after a push; the push itself if the re-read fails."""
    try:
        settled = _settled(await api.order(order_id))
        if settled and settled["success"]:
            return settled
    except ApiError as exc:
        log.info("order read after push failed: %s", exc.code)
    text = event.get("full_text") or event.get("message") or ""
    code = event.get("code") or extract_code(text)
    view = order_view({**order, "messages": [{"content": text}], "sms_code": code})
    view["status"] = "sms_received"
    return {"success": True, **view}


async def _listen(
    sock: ClientConnection,
    api: VirtualSMS,
    order_id: str,
    order: dict[str, Any],
    deadline: float,
) -> dict[str, Any] | None:
    """Answer from the socket, or None on timeout/drop (caller then polls what time is left)."""
    loop = asyncio.get_running_loop()
    while (remaining := deadline - loop.time()) > 0:
        try:
            raw = await asyncio.wait_for(sock.recv(), remaining)
        except (TimeoutError, ConnectionClosed):
            return None
        try:
            event = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if not isinstance(event, dict):
            continue
        if event.get("type") in PUSH_SMS:
            return await _from_push(api, order_id, event, order)
        if event.get("type") == "expired":
            return _settled({**order, "status": "expired"})
    return None


async def _poll(
    api: VirtualSMS, settings: Settings, order_id: str, deadline: float
) -> dict[str, Any] | None:
    loop = asyncio.get_running_loop()
    pause = settings.poll_interval
    while (remaining := deadline - loop.time()) > 0:
        await asyncio.sleep(min(pause, remaining))
        if deadline - loop.time() <= 0:
            return None
        pause = settings.poll_interval
        try:
            settled = _settled(await api.order(order_id))
        except ApiError as exc:
            if exc.code != "rate_limited":
                raise
            pause = max(settings.poll_interval, exc.retry_after or settings.poll_interval)
            continue
        if settled:
            return settled
    return None


async def wait_for_sms(
    api: VirtualSMS, settings: Settings, order_id: str, timeout_seconds: float
) -> dict[str, Any]:
    """The order with its SMS, the ended-order answer, or the timeout result."""
    segment = path_segment(order_id)
    if not api.key:
        raise key_required()
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    sock = await _open_socket(api, settings, segment)
    try:
        order = await api.order(order_id)
        result = _settled(order)
        if result is None and sock is not None:
            result = await _listen(sock, api, order_id, order, deadline)
    finally:
        if sock is not None:
            await sock.close()
    if result is None:
        result = await _poll(api, settings, order_id, deadline)
    if result is not None:
        return result
    return {
        "success": False,
        "error": "timeout",
        "order_id": order.get("order_id", order_id),
        "phone_number": order.get("phone_number"),
        "message": f"No SMS within {timeout_seconds:g} s. The order is still active and was "
        "not cancelled: wait again, or cancel it once its hold has passed.",
    }
