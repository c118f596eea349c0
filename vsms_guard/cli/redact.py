"""``vsms-guard redact [FILE …]``: mask keys and secrets in log files before they are shared.

Streams stdin (or each FILE, ``-`` for stdin) to stdout in constant memory. Masks what the
``Redactor`` masks: vsms_ keys, ``VIRTUALSMS_API_KEY``, webhook secrets, secret headers and query
parameters, SMS bodies and codes (``--keep-sms`` keeps those). Secrets come from environment
variables or files, never from argv (visible in ``ps``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import BinaryIO

from vsms_guard import keys
from vsms_guard.cli.args import OneLineParser
from vsms_guard.cli.secret_sources import env_secrets, file_secrets
from vsms_guard.errors import GuardError
from vsms_guard.findings import EXIT_CLEAN, EXIT_FINDINGS
from vsms_guard.redact.core import ENV_KEY, MIN_SECRET_LEN, Redactor, default_redactor
from vsms_guard.redact.stream import redact_stream

WEBHOOK_SECRET_ENV = keys.ENV_WEBHOOK_SECRET


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Mask API keys, secrets and SMS content in log files before they are shared. "
        "Streams each FILE ('-': stdin; default: stdin) to stdout in constant memory.",
        epilog="exit codes: 0 done (with --check: clean), 1 (--check) something would be masked, "
        "2 bad input or I/O error.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="input files (default: stdin)")
    parser.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="NAME",
        help="environment variable holding an exact secret to mask (comma-separated values "
        "allowed); repeatable. VIRTUALSMS_API_KEY and VIRTUALSMS_WEBHOOK_SECRET are always used "
        "when set",
    )
    parser.add_argument(
        "--secret-file",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="file with one exact secret per line ('#' comments allowed); repeatable",
    )
    parser.add_argument("--keep-sms", action="store_true", help="do not mask SMS bodies and codes")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if anything would be masked, 0 if the input is clean",
    )
    return parser


def build_redactor(env_names: list[str], files: list[Path], keep_sms: bool) -> Redactor:
    """The process redactor plus the secrets named on the command line. A secret too short to
    mask (it would hit ordinary words) is an error, not a silent gap in the output."""
    redactor = default_redactor()
    redactor.mask_sms = not keep_sms
    api_key = os.environ.get(ENV_KEY, "").strip()  # one key: never split on commas
    found: list[tuple[str, str]] = [(ENV_KEY, api_key)] if api_key else []
    found += env_secrets([WEBHOOK_SECRET_ENV], required=False)
    found += env_secrets(env_names)
    found += file_secrets(files)
    for origin, secret in found:
        if len(secret) < MIN_SECRET_LEN:
            raise GuardError(
                f"{origin}: a secret shorter than {MIN_SECRET_LEN} characters cannot be "
                "masked without masking ordinary text"
            )
        redactor.add_secret(secret)
    return redactor


def _open_all(names: list[str]) -> list[BinaryIO]:
    """Open every input first, so a bad name fails before any output is written."""
    sources: list[BinaryIO] = []
    for name in names or ["-"]:
        if name == "-":
            sources.append(sys.stdin.buffer)
            continue
        try:
            sources.append(open(name, "rb", buffering=0))  # noqa: SIM115 - closed by main
        except OSError as exc:
            for source in sources:
                if source is not sys.stdin.buffer:
                    source.close()
            raise GuardError(f"{name}: cannot read: {exc.strerror}") from None
    return sources


def main(argv: list[str], prog: str = "vsms-guard redact") -> int:
    args = _parser(prog).parse_args(argv)
    redactor = build_redactor(args.secret_env, args.secret_file, args.keep_sms)
    sources = _open_all(args.files)
    sink = None if args.check else sys.stdout.buffer
    changed = False
    try:
        for source in sources:
            changed |= redact_stream(source, sink, redactor)
    except BrokenPipeError:
        raise  # the reader went away (``| head``): the dispatcher exits quietly
    except OSError as exc:
        raise GuardError(f"I/O error: {exc.strerror or type(exc).__name__}") from None
    finally:
        for source in sources:
            if source is not sys.stdin.buffer:
                source.close()
    return EXIT_FINDINGS if args.check and changed else EXIT_CLEAN
