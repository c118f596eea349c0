"""Assembly of the MCP server: tools, prompts, resources, legacy names, redacted logging."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

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
log = logging.getLogger(__name__)
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


def argument_problems(error: ValidationError) -> list[dict[str, str]]:
    """Each rejected argument and why, without the value sent or pydantic's help URL."""
    problems = []
    for err in error.errors(include_url=False, include_input=False):
        argument = ".".join(str(part) for part in err["loc"]) or "(arguments)"
        problems.append({"argument": argument, "problem": err["msg"]})
    return problems


class GuardedServer(MCPServer):
    """MCPServer whose unknown tools and rejected arguments fail like every other tool call:
    an ``isError`` result with a JSON body, never the SDK's plain text."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if name not in {tool.name for tool in await self.list_tools()}:
            log.info("unknown tool called")
            message = f"Unknown tool: {name[:80]}. tools/list names the available tools."
            return tools.failed({"success": False, "error": "unknown_tool", "message": message})
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError) or not isinstance(
                exc.__cause__, ValidationError
            ):
                raise
            details = argument_problems(exc.__cause__)
            log.info("tool %s rejected arguments: %s", name, [d["argument"] for d in details])
            summary = "; ".join(f"{d['argument']}: {d['problem']}" for d in details)
            return tools.failed(
                {
                    "success": False,
                    "error": "invalid_arguments",
                    "message": f"Invalid arguments for {name}: {summary}",
                    "details": details,
                }
            )


def build_server(settings: Settings, *, upstream: Upstream | None = None) -> MCPServer:
    """A ready MCPServer for ``settings``; pass ``upstream`` to share or inspect the client."""
    server: MCPServer = GuardedServer(
        NAME, version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    backend = tools.Backend(settings, upstream or Upstream(settings))
    names = tools.register(server, backend)
    prompts.register(server)
    resources.register(server)
    server.middleware.append(alias_middleware(aliases(names)))
    return server
