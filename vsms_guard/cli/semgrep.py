"""``vsms-guard semgrep [PATH]``: run the vsms-guard semgrep policies on their own."""

from __future__ import annotations

import argparse
from pathlib import Path

from vsms_guard.cli.args import OneLineParser, add_output_options, emit
from vsms_guard.config import load_config
from vsms_guard.errors import GuardError
from vsms_guard.semgrep import excludes, rules_dir, run_semgrep, to_report

EPILOG = """\
rules: an API key in a URL or query string; request headers or a client config logged whole;
a signature compared with ==/===; a webhook parsing JSON before verifying the raw body; a
hard-coded vsms_ key; an upstream base URL taken from request input (Python, JS, TS).

semgrep runs from its own environment: VSMS_GUARD_SEMGREP (its path), else semgrep on PATH,
else ./.tools/semgrep/bin/semgrep (where make tools puts it).
paths in findings are relative to the current folder (absolute when outside it).
exit codes: 0 clean, 1 findings, 2 bad input or semgrep failed/missing.
"""


def main(argv: list[str], prog: str = "vsms-guard semgrep") -> int:
    parser = OneLineParser(
        prog=prog,
        description="Run the vsms-guard semgrep policies.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", nargs="?", default=".", type=Path, metavar="PATH")
    parser.add_argument("--config", type=Path, help="config file (default: found in PATH)")
    parser.add_argument(
        "--print-rules-path", action="store_true", help="print the rules folder and exit"
    )
    add_output_options(parser)
    args = parser.parse_args(argv)
    if args.print_rules_path:
        print(rules_dir())
        return 0
    if not args.path.exists():
        raise GuardError(f"{args.path}: no such file or directory")
    config = load_config(args.path, args.config)
    return emit(to_report(run_semgrep(args.path, excludes(config))), args)
