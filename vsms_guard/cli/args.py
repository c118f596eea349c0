"""What every command shares on its command line: a parser whose usage errors are one line and
exit code 2, and the report options (--format/--output/--github/--fail-on) with their output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from vsms_guard.errors import GuardError
from vsms_guard.findings import EXIT_ERROR, FORMATS, Report, Severity, render


class OneLineParser(argparse.ArgumentParser):
    """argparse prints a usage block before its error; bad input here gets one clear line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """--format/--output/--github/--fail-on, the same for every gate command."""
    parser.add_argument("--format", choices=sorted(FORMATS), default="text")
    parser.add_argument(
        "-o", "--output", type=Path, help="write the --format report here; stdout gets the text"
    )
    parser.add_argument(
        "--github",
        action="store_true",
        help="also print GitHub Actions annotations (::error file=…) on stdout",
    )
    parser.add_argument(
        "--fail-on",
        choices=[Severity.ERROR.value, Severity.WARNING.value],
        default=Severity.ERROR.value,
        help="lowest severity that fails the run (default: error)",
    )


def emit(report: Report, args: argparse.Namespace) -> int:
    """Write the report as asked and return the exit code. With ``--output`` the file gets the
    chosen format and stdout still gets the readable text report, so CI logs show the findings."""
    text = render(report, args.format)
    if args.output is not None:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise GuardError(f"{args.output}: cannot write report: {exc.strerror}") from None
        sys.stdout.write(render(report, "text"))
    elif not (args.github and args.format == "github"):
        sys.stdout.write(text)
    if args.github:
        sys.stdout.write(render(report, "github"))
    return report.exit_code(Severity(args.fail_on))
