"""The `vsms-guard` dispatcher, run as users run it: a real subprocess of the console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).with_name("vsms-guard")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command() -> None:
    from vsms_guard.cli import COMMANDS

    proc = run("--help")
    assert proc.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in proc.stdout


def test_no_command_is_a_usage_error() -> None:
    proc = run()
    assert proc.returncode == 2
    assert "usage: vsms-guard" in proc.stdout


def test_unknown_command_is_one_line_and_exit_2() -> None:
    proc = run("frobnicate")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "unknown command 'frobnicate'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_command_has_help() -> None:
    from vsms_guard.cli import COMMANDS

    for name in COMMANDS:
        proc = run(name, "--help")
        assert proc.returncode == 0, (name, proc.stderr)
        assert "usage:" in proc.stdout, name


def test_version() -> None:
    from vsms_guard import __version__

    assert run("--version").stdout.strip() == f"vsms-guard {__version__}"


def test_every_usage_error_is_one_line_and_exit_2() -> None:
    from vsms_guard.cli import COMMANDS

    for name in COMMANDS:
        proc = run(name, "--no-such-flag")
        assert proc.returncode == 2, (name, proc.stderr)
        assert proc.stderr.count("\n") == 1, (name, proc.stderr)
        # commands with sub-actions complain about the missing action first
        assert proc.stderr.startswith(f"vsms-guard {name}: error: "), name
    for argv in (["--no-such-flag"], ["sandbox", "--no-such-flag"]):
        proc = subprocess.run(
            [str(BIN.with_name("vsms-mcp")), *argv], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (argv, proc.stderr)
