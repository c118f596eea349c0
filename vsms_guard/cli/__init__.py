"""``vsms-guard``: one thin command per checker, plus ``check`` that runs them all.

Each command lives in its own module with ``main(argv, prog) -> int``; only the chosen one is
imported, so the pre-commit hook starts fast. Every failure becomes one line and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

from vsms_guard import __version__
from vsms_guard.errors import GuardError
from vsms_guard.findings import EXIT_ERROR

# name -> (module, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("vsms_guard.cli.check", "run every checker over a path; one report, one exit code"),
    "scan": ("vsms_guard.cli.scan", "find leaked vsms_ keys in trees, staged files or git history"),
    "versions": ("vsms_guard.cli.versions", "fail unsupported virtualsms-mcp pins and ranges"),
    "semgrep": ("vsms_guard.cli.semgrep", "run the vsms-guard semgrep policies"),
    "audit": ("vsms_guard.cli.audit", "pip-audit gate that never passes on skipped dependencies"),
    "redact": ("vsms_guard.cli.redact", "stream filter: mask keys and secrets in log files"),
    "webhook": ("vsms_guard.cli.webhook", "sign, verify and receive VirtualSMS webhooks"),
    "retention": ("vsms_guard.cli.retention", "enforce retention windows on stored data"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items())
    return (
        "usage: vsms-guard COMMAND [ARGS]\n\n"
        "Security and compliance checks around the VirtualSMS MCP server.\n\n"
        f"commands:\n{rows}\n\nRun 'vsms-guard COMMAND --help' for a command's options.\n"
    )


def fail(message: str) -> int:
    """Print a one-line error on stderr and return the usage/could-not-check exit code."""
    first_line = " ".join(str(message).split()) or "unknown error"
    print(f"vsms-guard: error: {first_line}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_usage())
        return 0 if args else EXIT_ERROR
    if args[0] in ("-V", "--version"):
        print(f"vsms-guard {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        return fail(f"unknown command {name!r}; run 'vsms-guard --help'")
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.main(rest, prog=f"vsms-guard {name}"))
    except GuardError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted")
    except BrokenPipeError:
        return EXIT_ERROR
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - never a traceback; never a secret
        from vsms_guard.redact import default_redactor

        return fail(f"internal error: {type(exc).__name__}: {default_redactor().text(str(exc))}")


if __name__ == "__main__":
    sys.exit(main())
