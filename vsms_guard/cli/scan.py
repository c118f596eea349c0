"""``vsms-guard scan``: find leaked vsms_ keys in trees, staged files or git history.

Argument parsing and printing only; the work is in ``scanners``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scanners.settings import ScanSettings, scan_settings
from vsms_guard.cli.args import OneLineParser, add_output_options, emit
from vsms_guard.config import load_config
from vsms_guard.errors import GuardError
from vsms_guard.findings import EXIT_CLEAN

if TYPE_CHECKING:
    from scanners.leaks import Leak

    Collected = tuple[list[Leak], list[str]]

EPILOG = """\
examples:
  vsms-guard scan .                        scan a folder (git repository or not)
  vsms-guard scan --staged                 scan what is about to be committed
  vsms-guard scan --history                scan every commit of every ref
  vsms-guard scan --history /repo          the same for the repository /repo
  vsms-guard scan --history --range main..HEAD   scan the commits of a range
  vsms-guard scan . --write-baseline .vsms-guard-baseline.json
  detect-secrets scan --plugin "$(vsms-guard scan --print-plugin-path)"

exit codes: 0 clean, 1 keys found, 2 bad input or something could not be checked.
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Find leaked VirtualSMS API keys (vsms_…). Output never shows a whole key.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files or folders (default: .); with --staged, the files to check; "
        "with --history, the repository",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--staged", action="store_true", help="scan the staged content (the index), not the disk"
    )
    mode.add_argument(
        "--history",
        nargs="?",
        const="",
        metavar="PATH",
        help="scan the git history of the repository PATH (default: .): every commit of every "
        "ref, or only those of --range. A value that is no existing file or folder is read as "
        "a range (the older spelling of --range)",
    )
    parser.add_argument(
        "--range",
        metavar="REV-RANGE",
        help="with --history (implied): scan only the commits of REV-RANGE, e.g. main..HEAD",
    )
    add_output_options(parser)
    parser.add_argument(
        "--baseline",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="accept the keys of a vsms-guard or detect-secrets baseline (repeatable)",
    )
    parser.add_argument(
        "--write-baseline",
        type=Path,
        metavar="FILE",
        help="accept every key found now: write their fingerprints to FILE and exit 0",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="ask the VirtualSMS API whether each found key is live (sends each key there)",
    )
    parser.add_argument("--base-url", help="VirtualSMS base URL for --verify")
    parser.add_argument("--config", type=Path, help="config file (default: found in the root)")
    parser.add_argument("--jobs", type=int, help="worker processes for trees (default: CPUs)")
    parser.add_argument(
        "--print-plugin-path",
        action="store_true",
        help="print the path of the detect-secrets plugin file and exit",
    )
    return parser


def plugin_path() -> str:
    """Where ``detect-secrets scan --plugin`` finds our detector."""
    import importlib.util

    spec = importlib.util.find_spec("scanners.detect_secrets_plugin")
    if spec is None or spec.origin is None:
        raise GuardError("the detect-secrets plugin file is missing from this installation")
    return spec.origin


def _prepare(args: argparse.Namespace) -> tuple[ScanSettings, Callable[[], Collected]]:
    """Settings for this run and the scan to do, checked before any file is read."""
    history = args.history is not None or args.range is not None
    if args.staged and args.range is not None:
        raise GuardError("--range goes with --history, not --staged")
    rev_range, repos = args.range, list(args.paths)
    if args.history and os.path.exists(args.history):  # `--history .`: a path, not a range
        repos.append(args.history)
    elif args.history:
        if rev_range is not None:
            raise GuardError(f"--history {args.history}: no such folder (the range is --range)")
        rev_range = args.history
    if args.staged or history:
        from scanners import git

        if history and len(repos) > 1:
            raise GuardError("--history takes one repository path")
        where = Path(repos[0]) if history and repos else Path.cwd()
        root = git.repo_root(where)
        settings = scan_settings(load_config(root, args.config), root)
        if args.staged:
            return settings, lambda: git.collect_staged(Path.cwd(), args.paths, settings.exclude)
        return settings, lambda: git.collect_history(where, rev_range or None, settings.exclude)
    from scanners import tree

    paths = args.paths or ["."]
    root = Path(paths[0]) if len(paths) == 1 and os.path.isdir(paths[0]) else Path.cwd()
    settings = scan_settings(load_config(root, args.config), root)
    return settings, lambda: tree.collect(paths, root, settings.exclude, args.jobs)


def main(argv: list[str], prog: str = "vsms-guard scan") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.print_plugin_path:
        print(plugin_path())
        return EXIT_CLEAN
    if args.jobs is not None and args.jobs < 1:
        raise GuardError("--jobs must be at least 1")
    settings, collect = _prepare(args)

    from scanners import baseline
    from scanners.leaks import build_report

    if args.write_baseline is not None:
        leaks, problems = collect()
        if problems:
            raise GuardError(f"baseline not written: could not check {problems[0]}")
        n = baseline.write(args.write_baseline, leaks)
        print(f"{args.write_baseline}: {n} key(s) accepted (fingerprints only)", file=sys.stderr)
        return EXIT_CLEAN
    accepted = baseline.load([*settings.baselines, *args.baseline])
    base_url = args.base_url or settings.base_url
    if args.verify:
        from scanners.verify import check_base_url

        check_base_url(base_url)  # refuse an unsafe URL before scanning, found keys or not
    leaks, problems = collect()
    leaks = [leak for leak in leaks if not accepted(leak.hit.key)]
    verdicts = None
    if args.verify and leaks:
        from scanners.verify import verify_keys

        verdicts = verify_keys((leak.hit.key for leak in leaks), base_url)
    report = build_report(leaks, problems, verdicts=verdicts)
    return emit(report, args)
