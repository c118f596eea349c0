"""``vsms-guard versions [PATH…]``: the supported-version gate on its own (and the pre-commit
hook ``vsms-versions``, which passes the changed file names)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vsms_guard.cli.args import OneLineParser, add_output_options, emit
from vsms_guard.config import load_config
from vsms_guard.versions import Options, check_paths

EPILOG = """\
finds virtualsms-mcp pins, ranges and commands in package.json, lockfiles (npm, pnpm, yarn),
MCP client configs (Claude Desktop, Cursor, Windsurf, Cline, VS Code, Zed, Codex), Dockerfiles
and CI/shell scripts, and judges them against policies/supported_versions.toml.

exit codes: 0 clean, 1 findings at or above --fail-on, 2 bad input.
"""


def main(argv: list[str], prog: str = "vsms-guard versions") -> int:
    parser = OneLineParser(
        prog=prog,
        description="Fail unsupported virtualsms-mcp versions, pins and ranges.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="default: .")
    parser.add_argument("--config", type=Path, help="config file (default: found in the root)")
    parser.add_argument("--policy", type=Path, help="support policy TOML (default: shipped one)")
    parser.add_argument(
        "--production",
        action="store_true",
        help="unpinned commands and ranges warn: production should pin exact versions",
    )
    parser.add_argument(
        "--critical-fixes-only",
        choices=["error", "warning", "info"],
        help="severity for versions that get critical fixes only (default: warning)",
    )
    add_output_options(parser)
    args = parser.parse_args(argv)
    paths = args.paths or [Path(".")]
    root = paths[0] if len(paths) == 1 and paths[0].is_dir() else Path(".")
    options = Options.from_config(
        load_config(root, args.config),
        production=args.production,
        critical_fixes_only=args.critical_fixes_only,
        policy=args.policy,
    )
    return emit(check_paths(paths, root, options), args)
