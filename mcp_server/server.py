"""Assembly of the MCP server: tools, prompts, resources, legacy names, redacted logging."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.server.mcpserver import MCPServer

from mcp_server import prompts, resources, tools
from mcp_server.api import Upstream
from mcp_server.settings import Settings
from vsms_guard import __version__
from vsms_guard.redact import default_redactor, install

NAME = "vsms-mcp"
PREFIX = "virtualsms_"
INSTRUCTIONS = (
    "VirtualSMS: real-SIM phone numbers for SMS verification. Find a country with "
    "virtualsms_find_cheapest, buy with virtualsms_create_order, then call "
    "virtualsms_wait_for_sms for the code. Purchases spend the account balance."
)
QUIET_LOGGERS = ("httpx", "httpcore", "websockets", "mcp.client")


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr (stdout is the stdio transport) through the redactor; SDK chatter quiet."""
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    install(default_redactor())


def aliases(names: list[str]) -> dict[str, str]:
    """Unlisted names accepted on ``tools/call``: the legacy short names and unprefixed names."""
    table = {name.removeprefix(PREFIX): name for name in names if name.startswith(PREFIX)}
    table.update(tools.LEGACY_ALIASES)
    return table


def alias_middleware(table: Mapping[str, str]) -> ServerMiddleware[Any]:
    """Rewrite an alias to its tool name before the SDK looks the tool up."""

    async def accept_aliases(
        ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        params = ctx.params
        if ctx.method == "tools/call" and isinstance(params, Mapping):
            target = table.get(str(params.get("name")))
            if target is not None:
                ctx = replace(ctx, params={**params, "name": target})
        return await call_next(ctx)

    return accept_aliases


def build_server(settings: Settings, *, upstream: Upstream | None = None) -> MCPServer:
    """A ready MCPServer for ``settings``; pass ``upstream`` to share or inspect the client."""
    server: MCPServer = MCPServer(
        NAME, version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    backend = tools.Backend(settings, upstream or Upstream(settings))
    names = tools.register(server, backend)
    prompts.register(server)
    resources.register(server)
    server.middleware.append(alias_middleware(aliases(names)))
    return server
