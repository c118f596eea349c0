"""A local test double of the VirtualSMS API: REST, WebSocket push, signed webhooks.

It lets tests, benchmarks and newcomers run every MCP tool with no account and no money. It is
never the VirtualSMS service: prices, numbers and SMS are made up, deterministic for a seed.

    from mcp_server.sandbox import Sandbox, running_sandbox
    with running_sandbox(sms_delay=0.5) as (sb, base_url):
        key = sb.create_account(balance_usd=10.0)
"""

from __future__ import annotations

from mcp_server.sandbox.backend import Sandbox
from mcp_server.sandbox.cli import main
from mcp_server.sandbox.clock import ManualClock
from mcp_server.sandbox.model import ApiError
from mcp_server.sandbox.server import running_sandbox

__all__ = ["ApiError", "ManualClock", "Sandbox", "main", "running_sandbox"]
