"""The drop-in MCP server's speed against the sandbox, with ratios against peers in one run.

1. StreamableHTTP overhead: requests/s and p50/p99 of ``virtualsms_get_balance`` through
   ``vsms-mcp --http`` (a subprocess) with 1, 8 and 32 concurrent clients, next to the same
   balance read made directly to the sandbox (another subprocess) with httpx. Both as raw HTTP
   from one asyncio load generator; the SDK client is a third row (what agents really use).
2. ``wait_for_sms``: delay from the SMS reaching the sandbox (its ``received_at``) to the result
   reaching the client, on the WebSocket path and on the polling fallback (socket refused).
3. Backend requests per ``find_cheapest``: the catalog path vs the per-country ``/price``
   fallback (what the Node.js server always does: one call per country).

Run: ``.venv/bin/python -m bench mcp`` (about a minute).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_server.sandbox import Sandbox, running_sandbox
from mcp_server.server import build_server
from mcp_server.serving import serving
from mcp_server.settings import Settings
from vsms_guard import keys

CONCURRENCY = (1, 8, 32)
SECONDS = 3.0
WAIT_ROUNDS = 6
BIN = Path(sys.executable).parent
ACCEPT = {"Accept": "application/json, text/event-stream"}


def demo_key() -> str:
    """A throwaway key for the sandbox, built at run time."""
    while True:
        key = keys.PREFIX + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")
        if keys.is_key(key):
            return key


@contextmanager
def subprocess_url(args: list[str], env: dict[str, str], pattern: str) -> Iterator[str]:
    """Start a console script; yield the URL its stderr announces (``pattern``'s group 1)."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(args, stderr=log, stdout=subprocess.DEVNULL, env=env)
        try:
            deadline = time.monotonic() + 30
            while True:
                log.seek(0)
                found = re.search(pattern, log.read())
                if found:
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not start")
                time.sleep(0.05)
            yield found.group(1)
        finally:
            proc.terminate()
            proc.wait(30)


async def load(worker: Callable[[], Awaitable[None]], concurrency: int) -> dict[str, float]:
    """Run ``concurrency`` loops of ``worker`` for SECONDS; requests/s and latency quantiles."""
    latencies: list[float] = []
    stop = time.perf_counter() + SECONDS

    async def loop() -> None:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            await worker()
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


async def direct_rows(base_url: str, key: str, n: int) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}) as http:

        async def balance() -> None:
            response = await http.get("/api/v1/customer/balance")
            response.raise_for_status()

        await balance()
        return await load(balance, n)


async def raw_mcp_rows(mcp_url: str, key: str, n: int) -> dict[str, float]:
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "virtualsms_get_balance", "arguments": {}},
    }
    async with httpx.AsyncClient(headers={"x-api-key": key, **ACCEPT}) as http:

        async def balance() -> None:
            response = await http.post(mcp_url, json=call)
            if response.status_code != 200 or response.json()["result"].get("isError"):
                raise RuntimeError(f"tool call failed: {response.text[:200]}")

        await balance()
        return await load(balance, n)


async def sdk_rows(mcp_url: str, key: str, n: int) -> dict[str, float]:
    """One SDK ``Client`` per concurrent worker, each reused for all its calls."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                Client(
                    streamable_http_client(
                        mcp_url, http_client=httpx2.AsyncClient(headers={"x-api-key": key})
                    )
                )
            )
            for _ in range(n)
        ]
        free: asyncio.Queue[Client] = asyncio.Queue()
        for client in clients:
            free.put_nowait(client)

        async def balance() -> None:
            client = await free.get()
            try:
                result = await client.call_tool("virtualsms_get_balance", {})
            finally:
                free.put_nowait(client)
            if result.is_error:
                raise RuntimeError("tool call failed")

        return await load(balance, n)


def bench_http() -> None:
    key = demo_key()
    env = {**os.environ, "VIRTUALSMS_API_KEY": key}
    # The sandbox as users start it (no rate limit, no automatic SMS during the run).
    sandbox_cmd = [str(BIN / "vsms-mcp"), "sandbox", "--port", "0", "--rate-limit", "0"]
    sandbox_cmd += ["--balance", "1000", "--sms-delay", "3600"]
    with subprocess_url(sandbox_cmd, env, r"base URL\s+(http://\S+)") as base_url:
        mcp_env = {**env, "VIRTUALSMS_BASE_URL": base_url}
        mcp_env.pop("VIRTUALSMS_API_KEY")
        mcp_cmd = [str(BIN / "vsms-mcp"), "--http", "--port", "0", "--rate-limit", "0"]
        mcp_cmd += ["--upstream-limit", "0"]  # a load test is the runaway agent it stops
        with subprocess_url(mcp_cmd, mcp_env, r"StreamableHTTP at (http://\S+/mcp)") as mcp_url:
            print(
                "1. virtualsms_get_balance: vsms-mcp --http vs direct sandbox (both subprocesses)"
            )
            print(f"   {SECONDS:g} s per cell; one asyncio load generator")
            header = (
                f"   {'clients':>7} | {'path':<22} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7}"
            )
            print(header)
            for n in CONCURRENCY:
                direct = asyncio.run(direct_rows(base_url, key, n))
                raw = asyncio.run(raw_mcp_rows(mcp_url, key, n))
                sdk = asyncio.run(sdk_rows(mcp_url, key, n))
                for name, row in (("direct httpx (peer)", direct), ("MCP raw JSON-RPC", raw)):
                    print(
                        f"   {n:>7} | {name:<22} | {row['rps']:>8.0f} | {row['p50']:>7.2f} | "
                        f"{row['p99']:>7.2f}"
                    )
                print(
                    f"   {n:>7} | {'MCP via SDK Client':<22} | {sdk['rps']:>8.0f} | "
                    f"{sdk['p50']:>7.2f} | {sdk['p99']:>7.2f}"
                )
                raw_ratio = raw["rps"] / direct["rps"]
                print(
                    f"   {'':>7}   ratio MCP raw / direct: throughput x{raw_ratio:.2f}, "
                    f"p50 x{raw['p50'] / direct['p50']:.2f}; SDK / direct: throughput "
                    f"x{sdk['rps'] / direct['rps']:.2f}"
                )


def _arrival_delay(result_text: str, arrived: float) -> float:
    body = json.loads(result_text)
    received = body["messages"][0]["received_at"]
    return arrived - datetime.fromisoformat(received.replace("Z", "+00:00")).timestamp()


def _wait_delays(sb: Sandbox, base_url: str, rounds: int, **settings: Any) -> list[float]:
    key = sb.create_account(balance_usd=100.0)
    server = build_server(Settings(base_url=base_url, env_key=key, **settings))

    async def go() -> list[float]:
        delays = []
        async with Client(server) as client:
            for _ in range(rounds):
                args = {"service": "whatsapp", "country": "US"}
                order = json.loads(
                    (await client.call_tool("virtualsms_create_order", args)).content[0].text
                )
                result = await client.call_tool(
                    "virtualsms_wait_for_sms", {"order_id": order["order_id"]}
                )
                delays.append(_arrival_delay(result.content[0].text, time.time()))
        return delays

    return asyncio.run(go())


def bench_wait() -> None:
    print("2. wait_for_sms: SMS reaching the sandbox -> result at the client (sms_delay 1.5 s)")
    with running_sandbox(sms_delay=1.5, rate_limit_per_minute=None) as (sb, base_url):
        socket_path = _wait_delays(sb, base_url, WAIT_ROUNDS)

        async def no_websocket(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await sb.app(scope, receive, send)

        with serving(no_websocket) as refused_url:
            polling = _wait_delays(sb, refused_url, WAIT_ROUNDS // 2)
    for name, delays in (("WebSocket (ours)", socket_path), ("polling fallback", polling)):
        print(
            f"   {name:<18} median {statistics.median(delays) * 1000:7.1f} ms, "
            f"max {max(delays) * 1000:7.1f} ms over {len(delays)} orders"
        )
    ratio = statistics.median(polling) / statistics.median(socket_path)
    print(f"   ratio polling / socket (median): x{ratio:.0f}")
    print("   (FACTS §3: the Node.js server reported an SMS that arrived at 1.5 s after 5.2 s)")


def bench_cheapest() -> None:
    print("3. backend requests per find_cheapest (service whatsapp)")
    with running_sandbox(sms_delay=None, rate_limit_per_minute=None) as (sb, base_url):
        server = build_server(Settings(base_url=base_url))

        async def one() -> None:
            async with Client(server) as client:
                await client.call_tool("virtualsms_find_cheapest", {"service": "whatsapp"})

        asyncio.run(one())
        catalog_calls = len(sb.requests)
        sb.set_catalog_available(False)
        sb.requests.clear()
        asyncio.run(one())
        fallback_calls = len(sb.requests)
    print(f"   catalog path (ours):                {catalog_calls} request(s)")
    print(f"   per-country /price (Node.js style): {fallback_calls} requests (our fallback)")
    print(f"   ratio: x{fallback_calls / catalog_calls:.0f} fewer requests on the catalog path")


def main() -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"   machine: {os.cpu_count()} CPUs, load average {load:.1f} at start")
    bench_http()
    bench_wait()
    bench_cheapest()


if __name__ == "__main__":
    main()
