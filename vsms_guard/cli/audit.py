"""``vsms-guard audit [PATH]``: pip-audit that never passes on skipped dependencies."""

from __future__ import annotations

import argparse
from pathlib import Path

from vsms_guard.audit import AuditSettings, audit
from vsms_guard.checks import with_settings
from vsms_guard.cli.args import OneLineParser, add_output_options, emit
from vsms_guard.config import load_config
from vsms_guard.errors import GuardError

EPILOG = """\
audits (first that applies): [tool.vsms-guard.audit] requirements = [...]; the Python
environment (environment = true / --environment); requirements.txt; the pyproject project.

pip-audit says "No known vulnerabilities found" even when it skipped every dependency; this gate
lists the skipped ones and exits 2 unless --allow-skipped is given.
exit codes: 0 clean, 1 vulnerabilities, 2 bad input or dependencies that could not be checked.
"""


def main(argv: list[str], prog: str = "vsms-guard audit") -> int:
    parser = OneLineParser(
        prog=prog,
        description="pip-audit gate: skipped dependencies are 'could not check', not a pass.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", nargs="?", default=".", type=Path, metavar="PATH")
    parser.add_argument("--config", type=Path, help="config file (default: found in PATH)")
    parser.add_argument(
        "-r", "--requirement", action="append", metavar="FILE", help="requirements file(s)"
    )
    parser.add_argument(
        "--environment", action="store_true", help="audit the environment vsms-guard runs in"
    )
    parser.add_argument(
        "--no-resolve",
        action="store_true",
        help="requirements are fully pinned: no pip resolution (pip-audit --no-deps)",
    )
    parser.add_argument(
        "--allow-skipped",
        "--allow-skipped-audit",
        dest="allow_skipped",
        action="store_true",
        help="report skipped dependencies as a warning instead of exit 2",
    )
    parser.add_argument("--osv-url", help="OSV API URL (implies the osv service)")
    add_output_options(parser)
    args = parser.parse_args(argv)
    if not args.path.exists():
        raise GuardError(f"{args.path}: no such file or directory")
    overrides: dict[str, object] = {}
    if args.requirement:
        overrides["requirements"] = args.requirement
    if args.environment:
        overrides["environment"] = True
    if args.no_resolve:
        overrides["resolve"] = False
    if args.allow_skipped:
        overrides["allow_skipped"] = True
    if args.osv_url:
        overrides.update(service="osv", osv_url=args.osv_url)
    config = with_settings(load_config(args.path, args.config), "audit", **overrides)
    return emit(audit(args.path, AuditSettings.from_config(config)), args)
