"""``vsms-guard check [PATH]``: every checker over a path, one report, one exit code."""

from __future__ import annotations

import argparse
from pathlib import Path

from vsms_guard.checks import CHECKERS, run, with_settings
from vsms_guard.cli.args import OneLineParser, add_output_options, emit
from vsms_guard.config import load_config
from vsms_guard.errors import GuardError

EPILOG = """\
checkers: secrets (leaked vsms_ keys), versions (virtualsms-mcp support policy),
semgrep (vsms-guard policies), audit (pip-audit; skipped dependencies are "could not check").

examples:
  vsms-guard check .
  vsms-guard check . --format sarif --output vsms-guard.sarif --github
  vsms-guard check . --skip audit --production

exit codes: 0 clean, 1 findings at or above --fail-on, 2 bad input or something could not be
checked.
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Run every vsms-guard checker over a path: one report, one exit code.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", nargs="?", default=".", type=Path, metavar="PATH")
    parser.add_argument(
        "--only", action="append", choices=list(CHECKERS), help="run only this checker (repeatable)"
    )
    parser.add_argument(
        "--skip", action="append", choices=list(CHECKERS), default=[], help="skip a checker"
    )
    parser.add_argument("--config", type=Path, help="config file (default: found in PATH)")
    parser.add_argument(
        "--production",
        action="store_true",
        help="versions: unpinned commands and ranges warn; production asks for exact pins",
    )
    parser.add_argument(
        "--allow-skipped-audit",
        action="store_true",
        help="audit: report dependencies pip-audit could not check as a warning instead of "
        "failing with exit 2 (use only where the vulnerability service is unreachable)",
    )
    add_output_options(parser)
    return parser


def main(argv: list[str], prog: str = "vsms-guard check") -> int:
    args = build_parser(prog).parse_args(argv)
    root: Path = args.path
    if not root.exists():
        raise GuardError(f"{root}: no such file or directory")
    config = load_config(root, args.config)
    if args.production:
        config = with_settings(config, "versions", production=True)
    if args.allow_skipped_audit:
        config = with_settings(config, "audit", allow_skipped=True)
    names = [n for n in (args.only or CHECKERS) if n not in args.skip]
    if not names:
        raise GuardError("--only/--skip left no checker to run")
    return emit(run(root, config, names), args)
