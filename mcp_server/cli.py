"""``vsms-mcp``: the drop-in for ``npx virtualsms-mcp``.

vsms-mcp                          stdio; key from VIRTUALSMS_API_KEY
vsms-mcp --http [--host --port]   StreamableHTTP; each caller sends x-api-key
vsms-mcp --sandbox [...]          either, against the built-in local test double
vsms-mcp sandbox [...]            serve only the test double (see its --help)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import anyio

from mcp_server.api import Upstream
from mcp_server.server import build_server, configure_logging
from mcp_server.settings import ENV_KEY, Settings, from_env, is_loopback
from vsms_guard import __version__, keys
from vsms_guard.cli.args import OneLineParser
from vsms_guard.errors import GuardError

EXIT_ERROR = 2
DEFAULT_PORT = 8000
log = logging.getLogger("mcp_server")


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="vsms-mcp",
        description="VirtualSMS MCP server (drop-in for virtualsms-mcp) that never leaks keys.",
        epilog="`vsms-mcp sandbox --help` describes the stand-alone test double.",
    )
    p.add_argument("-V", "--version", action="version", version=f"vsms-mcp {__version__}")
    p.add_argument("--http", action="store_true", help="serve StreamableHTTP instead of stdio")
    p.add_argument("--host", help="HTTP interface (default 127.0.0.1)")
    p.add_argument("--port", type=int, help=f"HTTP port (default {DEFAULT_PORT}; 0 = any free)")
    p.add_argument(
        "--base-url", help="upstream API (default $VIRTUALSMS_BASE_URL or https://virtualsms.io)"
    )
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="use the built-in local test double instead of VirtualSMS (no account, no money)",
    )
    p.add_argument(
        "--key-file",
        type=Path,
        help="with --sandbox --http: write the demo key here (mode 0600) for your client",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT|:*]",
        help="accept this Host header besides loopback (repeat; needed behind a public name)",
    )
    p.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="accept this browser Origin besides loopback (repeat)",
    )
    p.add_argument(
        "--rate-limit", type=int, help="MCP requests per minute per key (default 60; 0 disables)"
    )
    p.add_argument(
        "--address-rate-limit",
        type=int,
        help="MCP requests per minute per client address, whatever key is sent "
        "(default 120; 0 disables)",
    )
    p.add_argument(
        "--upstream-address-limit",
        type=int,
        help="requests per client address per minute sent to VirtualSMS, discovery included "
        "(default 100; 0 disables)",
    )
    p.add_argument("--max-body", type=int, help="largest request body in bytes (default 65536)")
    p.add_argument(
        "--upstream-limit",
        type=int,
        help="account requests per key per minute sent to VirtualSMS (default 50 of its 60; "
        "0 disables)",
    )
    p.add_argument("--verbose", action="store_true", help="log at DEBUG (still redacted)")
    return p


def _start_sandbox(stack: ExitStack, args: argparse.Namespace) -> tuple[str, str]:
    """Run the test double in a thread; (base URL, demo key). Over HTTP the demo key follows
    ``vsms-mcp sandbox``: $VIRTUALSMS_API_KEY, else --key-file (read, or created 0600)."""
    from mcp_server.sandbox import running_sandbox
    from mcp_server.sandbox.demo_key import choose_demo_key, open_demo_account

    chosen, where, key_file = None, "", None
    if args.http:
        key_file = args.key_file
        chosen, where = choose_demo_key(os.environ.get(ENV_KEY, "").strip(), key_file)
    sb, base_url = stack.enter_context(running_sandbox())
    key = open_demo_account(sb, 10.0, chosen, key_file)
    say = sys.stderr.write
    say("vsms-mcp: SANDBOX mode: a local test double, not VirtualSMS; numbers and SMS are fake\n")
    if args.http:
        say(f"  demo key {keys.mask(key)} {where}: send it as the x-api-key header\n")
    return base_url, key


HTTP_ONLY = (
    "host",
    "port",
    "rate_limit",
    "address_rate_limit",
    "upstream_address_limit",
    "max_body",
    "allowed_host",
    "allowed_origin",
)


def _check_flags(args: argparse.Namespace) -> None:
    """Refuse flags that would be silently ignored, and out-of-range values."""
    unused = [f"--{n.replace('_', '-')}" for n in HTTP_ONLY if getattr(args, n) not in (None, [])]
    if unused and not args.http:
        raise GuardError(f"{', '.join(unused)}: HTTP options, they need --http")
    if args.key_file and not (args.sandbox and args.http):
        raise GuardError("--key-file only applies to --sandbox --http")
    if args.sandbox and args.base_url:
        raise GuardError("--base-url and --sandbox exclude each other")
    if args.port is not None and not 0 <= args.port <= 65535:
        raise GuardError("--port must be 0..65535")
    if (args.rate_limit or 0) < 0 or (args.max_body is not None and args.max_body < 1024):
        raise GuardError("--rate-limit must be >= 0 and --max-body >= 1024")
    for name in ("upstream_limit", "address_rate_limit", "upstream_address_limit"):
        if (getattr(args, name) or 0) < 0:
            raise GuardError(f"--{name.replace('_', '-')} must be >= 0")


def _settings(args: argparse.Namespace, stack: ExitStack) -> Settings:
    _check_flags(args)
    common: dict[str, object] = {"http_mode": args.http}
    if args.upstream_limit is not None:
        common["upstream_per_minute"] = args.upstream_limit
    if args.http:
        common.update(
            rate_limit_per_minute=args.rate_limit,
            address_rate_limit_per_minute=args.address_rate_limit,
            upstream_per_address_per_minute=args.upstream_address_limit,
            max_body_bytes=args.max_body,
            allowed_hosts=tuple(args.allowed_host),
            allowed_origins=tuple(args.allowed_origin),
        )
        common = {k: v for k, v in common.items() if v is not None}
    if args.sandbox:
        base_url, key = _start_sandbox(stack, args)
        if not args.http:
            common["env_key"] = key
        return Settings(base_url=base_url, **common)  # type: ignore[arg-type]
    return from_env(base_url=args.base_url, **common)


def _serve_stdio(settings: Settings) -> None:
    if not settings.env_key:
        log.warning("%s is not set: account tools will answer api_key_required", ENV_KEY)
    upstream = Upstream(settings)
    server = build_server(settings, upstream=upstream)

    async def run() -> None:
        try:
            await server.run_stdio_async()
        finally:
            await upstream.aclose()

    anyio.run(run)


def _serve_http(settings: Settings, host: str, port: int) -> None:
    from mcp_server.http_app import build_http_app
    from mcp_server.serving import base_url, bind, serve_forever

    try:
        sock = bind(host, port)
    except OSError as exc:
        raise GuardError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if not is_loopback(host) and not settings.allowed_hosts:
        log.warning("listening on %s: only loopback Host headers pass until --allowed-host", host)
    log.info("StreamableHTTP at %s/mcp, health at /health", base_url(sock))
    serve_forever(build_http_app(settings), sock)


def run(argv: list[str]) -> int:
    if argv[:1] == ["sandbox"]:
        from mcp_server.sandbox import main as sandbox_main

        return sandbox_main(argv[1:], prog="vsms-mcp sandbox")
    args = _parser().parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    with ExitStack() as stack:
        settings = _settings(args, stack)
        if args.http:
            _serve_http(
                settings, args.host or "127.0.0.1", DEFAULT_PORT if args.port is None else args.port
            )
        else:
            _serve_stdio(settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console script ``vsms-mcp``: 0 after a clean stop, 2 with one line on bad input."""
    try:
        return run(list(sys.argv[1:] if argv is None else argv))
    except GuardError as exc:
        print(f"vsms-mcp: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        print(f"vsms-mcp: error: {type(exc).__name__}", file=sys.stderr)
        return EXIT_ERROR
