"""``vsms-guard webhook sign|verify|serve``: test receivers from the shell, or run one.

Secrets come from an environment variable or a file, never from argv (visible in ``ps``).
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import sys
from pathlib import Path

from vsms_guard import keys
from vsms_guard.cli.args import OneLineParser
from vsms_guard.cli.secret_sources import env_secrets, file_secrets
from vsms_guard.errors import GuardError
from vsms_guard.findings import EXIT_CLEAN, EXIT_FINDINGS
from vsms_guard.redact import default_redactor
from vsms_guard.redact.core import MIN_SECRET_LEN
from vsms_guard.webhooks import DEFAULT_TOLERANCE, Verifier, WebhookError, sign

SECRET_ENV = keys.ENV_WEBHOOK_SECRET
DEFAULT_PATH = "/webhooks/virtualsms"


def _add_secret_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret-env",
        action="append",
        metavar="NAME",
        help=f"environment variable holding the secret; several secrets may be separated by "
        f"commas during a rotation (default: {SECRET_ENV}); repeatable",
    )
    parser.add_argument(
        "--secret-file",
        action="append",
        type=Path,
        metavar="PATH",
        help="file with one secret per line ('#' comments allowed); repeatable",
    )


def load_secrets(env_names: list[str] | None, files: list[Path] | None) -> list[str]:
    """Secrets from the named environment variables and files (default: ``SECRET_ENV``)."""
    names = env_names or ([] if files else [SECRET_ENV])
    found = env_secrets(names) + file_secrets(files or [])
    for origin, secret in found:
        if len(secret) < MIN_SECRET_LEN:  # the redactor could not mask it in logs
            raise GuardError(
                f"{origin}: a webhook secret shorter than {MIN_SECRET_LEN} characters is refused "
                "(it cannot be masked in logs); use the whsec_… secret VirtualSMS gave you"
            )
    secrets = [secret for _, secret in found]
    redactor = default_redactor()
    for secret in secrets:
        redactor.add_secret(secret)
    return secrets


def _read_body(source: str) -> bytes:
    """The raw body from a file or ('-') stdin. An empty body is refused: VirtualSMS never
    sends one, and it is what an empty pipe or a wrong file gives."""
    if source == "-":
        body = sys.stdin.buffer.read()
    else:
        try:
            body = Path(source).read_bytes()
        except OSError as exc:
            raise GuardError(f"{source}: cannot read body: {exc.strerror}") from None
    if not body:
        name = "stdin" if source == "-" else source
        raise GuardError(f"{name}: the body is empty (VirtualSMS never sends an empty body)")
    return body


def _read_headers(path: Path | None, extra: list[str] | None) -> dict[str, str]:
    """Headers from a JSON object file or ``Name: value`` lines, then ``-H`` options."""
    lines: list[str] = []
    headers: dict[str, str] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GuardError(f"{path}: cannot read headers: {type(exc).__name__}") from None
        if text.lstrip().startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                raise GuardError(f"{path}: headers file is not valid JSON") from None
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise GuardError(f"{path}: headers JSON must map names to strings")
            headers.update(data)
        else:
            lines.extend(text.splitlines())
    lines.extend(extra or [])
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():  # not echoed: it may be a pasted secret or signature
            raise GuardError(f"header {number} is not in 'Name: value' form")
        headers[name.strip()] = value.strip()
    return headers


def _sign(args: argparse.Namespace) -> int:
    secrets = load_secrets(args.secret_env, args.secret_file)
    headers = sign(
        _read_body(args.body),
        secrets[0],
        timestamp=args.timestamp,
        delivery_id=args.delivery_id,
    )
    if args.format == "json":
        print(json.dumps(headers, indent=2))
    else:
        for name, value in headers.items():
            print(f"{name}: {value}")
    return EXIT_CLEAN


def _verify(args: argparse.Namespace) -> int:
    from vsms_guard.replay import open_store

    secrets = load_secrets(args.secret_env, args.secret_file)
    store = open_store(args.replay) if args.replay else None
    verifier = Verifier(
        secrets,
        tolerance=args.tolerance,
        require_timestamp=not args.no_timestamp,
        replay_store=store,
    )
    body = _read_body(args.body)
    headers = _read_headers(args.headers, args.header)
    try:
        event = verifier.verify(body, headers, now=args.now)
    except WebhookError as exc:
        print(exc)
        return EXIT_FINDINGS
    finally:
        if store is not None:
            store.close()
    test = " (test delivery)" if event.test else ""
    print(f"verified: {event.id} {event.type}{test}")
    return EXIT_CLEAN


def _listen(host: str, port: int) -> socket.socket:
    """A bound socket for the receiver. Bound here, not by uvicorn, so a bad port or an address
    in use is one line and exit 2 instead of uvicorn's traceback and exit 1 or 3."""
    if not 0 <= port <= 65535:
        raise GuardError(f"--port {port}: must be 0-65535 (0 picks a free port)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise GuardError(f"--host {host}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise GuardError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from vsms_guard import retention
    from vsms_guard.receiver import EventStore, create_app
    from vsms_guard.replay import open_store

    if not args.path.startswith("/") or args.path == "/health":
        raise GuardError(f"--path must start with '/' and not be /health (e.g. {DEFAULT_PATH})")
    secrets = load_secrets(args.secret_env, args.secret_file)
    policy = retention.load_policy(args.policy)
    sock = _listen(args.host, args.port)  # before any file is created
    store = replay = None
    try:
        # An unreachable Redis fails here, not as a 503 on every delivery; before --db exists.
        replay = open_store(args.replay) if args.replay else None
        store = EventStore(args.db, sms_body_fields=policy.sms_body_fields)
        if replay is None:  # not ``or``: an empty MemoryReplayStore is falsy (``__len__``)
            replay = open_store(str(args.db))
    except BaseException:
        sock.close()
        for opened in (replay, store):
            if opened is not None:
                opened.close()
        raise
    try:
        verifier = Verifier(
            secrets, tolerance=args.tolerance, max_age=policy.replay_ids, replay_store=replay
        )
        app = create_app(verifier, store, path=args.path, policy=policy)
        host, port = sock.getsockname()[:2]
        print(
            f"vsms-guard: receiving VirtualSMS webhooks at POST http://{host}:{port}{args.path}; "
            f"events in {args.db}",
            file=sys.stderr,
            flush=True,
        )
        config = uvicorn.Config(app, host=host, port=port, log_level=args.log_level)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        replay.close()
        store.close()
    return EXIT_CLEAN


def _finite_float(text: str) -> float:
    """argparse type: a finite number (``nan`` would pass every timestamp window)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected unix seconds, got {text[:40]!r}")
    return value


def build_parser(prog: str) -> argparse.ArgumentParser:
    # No abbreviations: argparse's "ambiguous option" error would echo a mistaken --secret=VALUE.
    parser = OneLineParser(
        prog=prog,
        description=(
            "Sign, verify and receive VirtualSMS webhooks. Secrets are read from an environment "
            "variable or a file, never from the command line."
        ),
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="action", required=True)

    p = sub.add_parser(
        "sign", allow_abbrev=False, help="print the headers VirtualSMS would send with a body"
    )
    p.add_argument(
        "--body", metavar="FILE", help="file with the raw body, '-' for stdin (required)"
    )
    p.add_argument("--timestamp", type=int, help="unix seconds (default: now)")
    p.add_argument("--delivery-id", help="X-VirtualSMS-Delivery value (default: random)")
    p.add_argument("--format", choices=("headers", "json"), default="headers")
    _add_secret_args(p)
    p.set_defaults(run=_sign)

    p = sub.add_parser(
        "verify", allow_abbrev=False, help="verify a captured delivery; exit 1 when refused"
    )
    p.add_argument(
        "--body", metavar="FILE", help="file with the raw body, '-' for stdin (required)"
    )
    p.add_argument("--headers", type=Path, help="JSON object or 'Name: value' lines")
    p.add_argument("-H", "--header", action="append", help="one 'Name: value' header")
    p.add_argument("--tolerance", type=int, default=DEFAULT_TOLERANCE, help="seconds, ± (300)")
    p.add_argument("--now", type=_finite_float, help="unix seconds to verify at (default: now)")
    p.add_argument("--no-timestamp", action="store_true", help="accept a missing timestamp")
    p.add_argument("--replay", metavar="STORE", help="replay store: SQLite path, redis://…")
    _add_secret_args(p)
    p.set_defaults(run=_verify)

    p = sub.add_parser(
        "serve", allow_abbrev=False, help="reference receiver storing events in SQLite"
    )
    p.add_argument("--db", type=Path, default=Path("webhooks.sqlite"), help="SQLite event store")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--path", default=DEFAULT_PATH, help="webhook URL path")
    p.add_argument("--replay", metavar="STORE", help="memory, redis://…, or SQLite path (--db)")
    p.add_argument("--policy", type=Path, help="retention policy file (shipped one by default)")
    p.add_argument("--tolerance", type=int, default=DEFAULT_TOLERANCE)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    _add_secret_args(p)
    p.set_defaults(run=_serve)
    return parser


def main(argv: list[str], prog: str = "vsms-guard webhook") -> int:
    parser = build_parser(prog)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would echo them, and a mistaken "--secret VALUE" must not be printed
        raise GuardError(
            f"{len(unknown)} unrecognized argument(s); secrets are read from --secret-env or "
            f"--secret-file, never from the command line"
        )
    if args.action in ("sign", "verify") and args.body is None:  # never wait on a silent stdin
        parser.error(f"{args.action} needs --body FILE (or --body - to read stdin)")
    if args.action == "verify" and args.headers is None and not args.header:
        parser.error("verify needs the delivery's headers: --headers FILE or -H 'Name: value'")
    return args.run(args)
