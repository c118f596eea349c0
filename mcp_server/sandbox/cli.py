"""``vsms-mcp sandbox``: serve the local VirtualSMS stand-in on a port.

The demo key is the operator's choice (``VIRTUALSMS_API_KEY``) or a new one written to a 0600
``--key-file``; only its masked form is printed. The webhook secret comes from an environment
variable, never from the command line where ``ps`` would show it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import httpx

from mcp_server.sandbox.backend import Sandbox
from mcp_server.sandbox.demo_key import ENV_KEY, choose_demo_key, open_demo_account
from mcp_server.serving import base_url, bind, serve_forever
from vsms_guard import keys
from vsms_guard.cli.args import OneLineParser
from vsms_guard.errors import GuardError

DEFAULT_PORT = 8780
EXIT_ERROR = 2
KEEP_REQUESTS = 10_000  # a long-running sandbox must not grow without bound


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Serve a local test double of the VirtualSMS API (not the real service).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks a free one"
    )
    parser.add_argument("--seed", type=int, default=0, help="catalog and id seed (default 0)")
    parser.add_argument(
        "--sms-delay", type=float, default=2.0, help="seconds until the automatic SMS (default 2)"
    )
    parser.add_argument("--hold-seconds", type=float, default=120.0, help="cancel/swap hold")
    parser.add_argument(
        "--rate-limit", type=int, default=60, help="requests per minute per key; 0 disables"
    )
    parser.add_argument("--balance", type=float, default=10.0, help="demo balance in USD")
    parser.add_argument(
        "--key-file",
        type=Path,
        help=f"without {ENV_KEY}: the demo key is read from this file, or made and written "
        "there (mode 0600) when the file does not exist",
    )
    parser.add_argument("--webhook-url", help="POST signed events to this URL")
    parser.add_argument(
        "--webhook-secret-env",
        metavar="NAME",
        help="environment variable holding the webhook signing secret",
    )
    return parser


def _webhook(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if not args.webhook_url:
        if args.webhook_secret_env:
            raise GuardError("--webhook-secret-env needs --webhook-url")
        return None, None
    try:
        scheme = httpx.URL(args.webhook_url).scheme
    except httpx.InvalidURL:
        scheme = ""
    if scheme not in ("http", "https"):
        raise GuardError("--webhook-url must be an http:// or https:// URL")
    if not args.webhook_secret_env:
        raise GuardError("--webhook-url needs --webhook-secret-env NAME (the signing secret)")
    secret = os.environ.get(args.webhook_secret_env)
    if not secret:
        raise GuardError(f"environment variable {args.webhook_secret_env} is empty or unset")
    return args.webhook_url, secret


def run(argv: list[str], prog: str) -> int:
    args = _parser(prog).parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise GuardError("--port must be 0..65535")
    amounts = (args.sms_delay, args.hold_seconds, args.balance)
    if args.rate_limit < 0 or not all(math.isfinite(x) and x >= 0 for x in amounts):
        raise GuardError(
            "--sms-delay, --hold-seconds, --rate-limit and --balance must be finite numbers >= 0"
        )
    webhook_url, webhook_secret = _webhook(args)
    sb = Sandbox(
        seed=args.seed,
        sms_delay=args.sms_delay,
        hold_seconds=args.hold_seconds,
        rate_limit_per_minute=args.rate_limit or None,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        keep_requests=KEEP_REQUESTS,
    )
    chosen, where = choose_demo_key(os.environ.get(ENV_KEY, "").strip(), args.key_file)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise GuardError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    try:
        key = open_demo_account(sb, args.balance, chosen, args.key_file)
    except GuardError:
        sock.close()
        raise
    url = base_url(sock)
    say = sys.stderr.write
    say(f"{prog}: local test double of the VirtualSMS API (not the service), seed {args.seed}\n")
    say(f"  base URL  {url}   (point VIRTUALSMS_BASE_URL here)\n")
    say(f"  demo key  {keys.mask(key)} {where}, balance {args.balance:.2f} USD\n")
    if webhook_url:
        say(f"  webhooks  signed POSTs to {webhook_url}\n")
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        say(f"  warning   listening on {args.host}: anyone who can reach it can use the demo key\n")
    sys.stderr.flush()
    from mcp_server.server import configure_logging  # lazily: the MCP SDK is not needed before

    configure_logging()  # uvicorn's and our records go to stderr through the redactor
    serve_forever(sb.app, sock)
    return 0


def main(argv: list[str] | None = None, prog: str = "vsms-mcp sandbox") -> int:
    """Entry point for ``vsms-mcp sandbox ...``: 0 after a clean stop, 2 on bad input."""
    try:
        return run(list(sys.argv[1:] if argv is None else argv), prog)
    except GuardError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except KeyboardInterrupt:  # Ctrl-C after uvicorn's graceful shutdown
        return 0
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback (or a secret in it)
        print(f"{prog}: error: internal error: {type(exc).__name__}", file=sys.stderr)
        return EXIT_ERROR
