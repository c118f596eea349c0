"""`vsms-mcp` started as users start it: a stdio subprocess, the MCP Inspector CLI, `--http`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_server.sandbox import running_sandbox
from tests.fakes import fake_key

BIN = Path(sys.executable).parent
VSMS_MCP = str(BIN / "vsms-mcp")
SMS = "Your Discord verification code is 907153 (unique-body-marker)"

pytestmark = pytest.mark.slow


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_stdio_flow_writes_nothing_and_logs_no_secret(tmp_path: Path) -> None:
    """HOME, TMPDIR and the working directory are an empty folder; it stays empty."""
    empty = tmp_path / "empty"
    empty.mkdir()
    errlog_path = tmp_path / "stderr.log"
    with running_sandbox(sms_delay=None, rate_limit_per_minute=None) as (sb, base_url):
        key = sb.create_account(balance_usd=10.0)
        params = StdioServerParameters(
            command=VSMS_MCP,
            args=["--verbose"],  # DEBUG logging: the strictest test of the redaction
            env={
                "VIRTUALSMS_API_KEY": key,
                "VIRTUALSMS_BASE_URL": base_url,
                "HOME": str(empty),
                "TMPDIR": str(empty),
            },
            cwd=str(empty),
        )

        async def flow() -> dict[str, Any]:
            out: dict[str, Any] = {}
            with errlog_path.open("w") as errlog:
                async with Client(stdio_client(params, errlog=errlog)) as client:
                    out["tools"] = len((await client.list_tools()).tools)
                    cheapest = await client.call_tool("find_cheapest", {"service": "discord"})
                    country = json.loads(cheapest.content[0].text)["cheapest"][0]["country"]
                    args = {"service": "discord", "country": country}
                    order = await client.call_tool("virtualsms_create_order", args)
                    order_id = json.loads(order.content[0].text)["order_id"]
                    async with anyio.create_task_group() as tg:

                        async def deliver() -> None:
                            await anyio.sleep(0.5)
                            sb.deliver_sms(order_id, SMS, sender="Discord")

                        tg.start_soon(deliver)
                        waited = await client.call_tool(
                            "virtualsms_wait_for_sms", {"order_id": order_id}
                        )
                    out["wait"] = json.loads(waited.content[0].text)
                    cancel = await client.call_tool("cancel_order", {"order_id": order_id})
                    out["cancel"] = json.loads(cancel.content[0].text)
                    bad = await client.call_tool("virtualsms_get_order", {"order_id": "../x"})
                    out["bad"] = bad.is_error
            return out

        out = anyio.run(flow)
    assert out["tools"] == 18
    assert out["wait"]["code"] == "907153" and out["wait"]["sms_text"] == SMS
    assert out["bad"] is True
    assert out["cancel"]["cooldown_active"] is True
    assert _files_under(empty) == []
    stderr = errlog_path.read_text()
    assert "Initializing server 'vsms-mcp'" in stderr  # the DEBUG log was captured
    assert key not in stderr
    assert "unique-body-marker" not in stderr and "907153" not in stderr


def test_stdio_without_key_serves_discovery_only() -> None:
    with running_sandbox(sms_delay=None, rate_limit_per_minute=None) as (_, base_url):
        params = StdioServerParameters(
            command=VSMS_MCP, env={"VIRTUALSMS_BASE_URL": base_url, "VIRTUALSMS_API_KEY": ""}
        )

        async def flow() -> tuple[Any, Any]:
            async with Client(params) as client:
                services = await client.call_tool("list_services", {"search": "tele"})
                balance = await client.call_tool("virtualsms_get_balance", {})
            return services, balance

        services, balance = anyio.run(flow)
    assert not services.is_error and json.loads(services.content[0].text)["count"] >= 1
    assert balance.is_error
    assert json.loads(balance.content[0].text)["error"] == "api_key_required"


def test_sandbox_flag_needs_no_account() -> None:
    params = StdioServerParameters(command=VSMS_MCP, args=["--sandbox"])

    async def flow() -> Any:
        async with Client(params) as client:
            return await client.call_tool("virtualsms_get_balance", {})

    balance = anyio.run(flow)
    assert not balance.is_error and json.loads(balance.content[0].text)["balance_usd"] == 10.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http", "--port", "70000"], "--port"),
        (["--port", "8001"], "need --http"),
        (["--sandbox", "--base-url", "https://virtualsms.io"], "exclude"),
        (["--base-url", "http://virtualsms.example"], "https"),
        (["--key-file", "x"], "--key-file"),
        (["--sandbox", "--http", "--port", "0"], "--key-file"),
        (["--upstream-limit", "-1"], "--upstream-limit"),
        (["--sandbox", "--http", "--key-file", "/nonexistent-dir/key"], "no such directory"),
        (["--base-url", "http://"], "has no host"),
        (["--base-url", "https://:8443/api"], "has no host"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUALSMS_API_KEY"}
    done = subprocess.run(
        [VSMS_MCP, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("vsms-mcp: error")]
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in done.stderr


def test_version_matches_the_package() -> None:
    from vsms_guard import __version__

    for flag in ("--version", "-V"):
        done = subprocess.run(
            [VSMS_MCP, flag], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0 and done.stdout.strip() == f"vsms-mcp {__version__}"


def test_http_listen_failure_is_one_line_and_exit_2() -> None:
    """A busy port or an unusable host: one line and exit 2, not uvicorn's exit 3 and log."""
    from mcp_server.serving import bind

    env = {k: v for k, v in os.environ.items() if k != "VIRTUALSMS_API_KEY"}
    with bind() as busy:
        port = str(busy.getsockname()[1])
        for args in (["--port", port], ["--host", "999.1.1.1", "--port", "0"]):
            done = subprocess.run(
                [VSMS_MCP, "--http", *args],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                stdin=subprocess.DEVNULL,
            )
            assert done.returncode == 2, done.stderr
            assert done.stderr.count("\n") == 1 and "cannot listen on" in done.stderr
            assert "Traceback" not in done.stderr


def test_http_subprocess_refuses_query_key_and_never_logs_it(tmp_path: Path) -> None:
    """`vsms-mcp --http --verbose` as an operator runs it; its whole stderr is checked."""
    key = fake_key("http-subprocess")
    log_path = tmp_path / "stderr.log"
    empty = tmp_path / "empty"  # HOME, TMPDIR and the working directory: must stay empty
    empty.mkdir()
    with running_sandbox(sms_delay=None, rate_limit_per_minute=None) as (sb, base_url):
        env = {**os.environ, "VIRTUALSMS_BASE_URL": base_url, "VIRTUALSMS_API_KEY": key}
        env.update(HOME=str(empty), TMPDIR=str(empty))
        sb.create_account(key=key)  # the operator's key: HTTP callers must never get its use
        with log_path.open("w") as errlog:
            proc = subprocess.Popen(
                [VSMS_MCP, "--http", "--port", "0", "--verbose"],
                stdout=subprocess.DEVNULL,
                stderr=errlog,
                env=env,
                cwd=empty,
                stdin=subprocess.DEVNULL,
            )
            try:
                url = f"http://127.0.0.1:{_wait_for_port(log_path, proc)}"
                headers = {"Accept": "application/json, text/event-stream"}

                def call(name: str, args: dict[str, Any], query: str = "", **extra: str) -> Any:
                    body = {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "tools/call",
                        "params": {"name": name, "arguments": args},
                    }
                    return httpx.post(f"{url}/mcp{query}", json=body, headers={**headers, **extra})

                refused = call("virtualsms_get_balance", {}, f"?apiKey={key}")
                anonymous = call("virtualsms_get_balance", {})
                balance_calls = sum(p.endswith("/balance") for _, p in sb.requests)
                args = {"service": "whatsapp", "country": "US"}
                order = call("virtualsms_create_order", args, **{"x-api-key": key}).json()
                order_id = json.loads(order["result"]["content"][0]["text"])["order_id"]
                sb.deliver_sms(order_id, SMS, sender="Discord")
                sms = call("virtualsms_get_sms", {"order_id": order_id}, **{"x-api-key": key})
                health = httpx.get(f"{url}/health")
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    assert refused.status_code == 400
    assert "api_key_required" in anonymous.json()["result"]["content"][0]["text"]
    assert balance_calls == 0  # the anonymous call never reached the backend with any key
    assert "907153" in sms.json()["result"]["content"][0]["text"]
    assert health.json()["status"] == "ok"
    assert _files_under(empty) == []
    stderr = log_path.read_text()
    assert "refused POST /mcp" in stderr and "POST /mcp 200" in stderr
    assert key not in stderr and "apiKey=" not in stderr
    assert "unique-body-marker" not in stderr and "907153" not in stderr


def _wait_for_port(log: Path, proc: subprocess.Popen[bytes]) -> int:
    """The port bound for ``--port 0``, read from the start-up line."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"StreamableHTTP at http://127\.0\.0\.1:(\d+)/mcp", log.read_text())
        if found:
            return int(found.group(1))
        if proc.poll() is not None:
            raise AssertionError(f"vsms-mcp --http exited: {log.read_text()[-500:]}")
        time.sleep(0.05)
    raise AssertionError("vsms-mcp --http did not start")


INSPECTOR = "@modelcontextprotocol/inspector@0.15"


@pytest.mark.skipif(not shutil.which("npx"), reason="Node.js/npx are not installed")
def test_mcp_inspector_cli_lists_and_calls_our_tools() -> None:
    with running_sandbox(sms_delay=None, rate_limit_per_minute=None) as (sb, base_url):
        key = sb.create_account()
        base = ["npx", "-y", INSPECTOR, "--cli", "-e", f"VIRTUALSMS_BASE_URL={base_url}"]
        base += ["-e", f"VIRTUALSMS_API_KEY={key}", VSMS_MCP]

        def inspect(*args: str) -> Any:
            done = subprocess.run(
                [*base, *args],
                capture_output=True,
                text=True,
                timeout=300,
                stdin=subprocess.DEVNULL,
            )
            assert done.returncode == 0, done.stderr[-1000:]
            return json.loads(done.stdout)

        listed = inspect("--method", "tools/list")
        balance = inspect("--method", "tools/call", "--tool-name", "virtualsms_get_balance")
        search = inspect(
            "--method",
            "tools/call",
            "--tool-name",
            "virtualsms_search_services",
            "--tool-arg",
            "query=whats",
        )
    assert len(listed["tools"]) == 18
    assert json.loads(balance["content"][0]["text"])["balance_usd"] == 10.0
    assert not search.get("isError") and "whatsapp" in search["content"][0]["text"]


def test_sandbox_http_writes_demo_key_file_for_the_client(tmp_path: Path) -> None:
    key_file = tmp_path / "demo.key"
    log_path = tmp_path / "stderr.log"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUALSMS_API_KEY"}
    with log_path.open("w") as errlog:
        proc = subprocess.Popen(
            [VSMS_MCP, "--sandbox", "--http", "--port", "0", "--key-file", str(key_file)],
            stdout=subprocess.DEVNULL,
            stderr=errlog,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        try:
            port = _wait_for_port(log_path, proc)
            key = key_file.read_text().strip()
            call = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "virtualsms_get_balance", "arguments": {}},
            }
            headers = {"Accept": "application/json, text/event-stream", "x-api-key": key}
            response = httpx.post(f"http://127.0.0.1:{port}/mcp", json=call, headers=headers)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert key_file.stat().st_mode & 0o777 == 0o600
    body = json.loads(response.json()["result"]["content"][0]["text"])
    assert body["balance_usd"] == 10.0
    stderr = log_path.read_text()
    assert "SANDBOX" in stderr and "not VirtualSMS" in stderr
    assert key not in stderr


def test_sandbox_subcommand_is_dispatched() -> None:
    done = subprocess.run(
        [VSMS_MCP, "sandbox", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "vsms-mcp sandbox" in done.stdout
    assert "--webhook-url" in done.stdout
