"""Registry of the checkers that ``vsms-guard check`` runs, and the loop that runs them.

A checker is ``check(root: Path, config: Config) -> Report``; it is imported only when run. A
checker that cannot do its job (a GuardError, a missing tool, a crash) becomes a "could not check"
problem in the one report, so the run exits 2 instead of passing silently.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from vsms_guard.config import Config
from vsms_guard.errors import GuardError
from vsms_guard.findings import Report

Checker = Callable[[Path, Config], Report]

CHECKERS: dict[str, str] = {
    "secrets": "scanners.tree:check",
    "versions": "vsms_guard.versions:check",
    "semgrep": "vsms_guard.semgrep:check",
    "audit": "vsms_guard.audit:check",
}


def load(name: str) -> Checker:
    module, _, func = CHECKERS[name].partition(":")
    return getattr(importlib.import_module(module), func)


def with_settings(config: Config, section: str, **values: Any) -> Config:
    """A copy of ``config`` whose ``[section]`` carries ``values`` (command-line overrides)."""
    data = copy.deepcopy(config.data)
    table = data.setdefault(section, {})
    if not isinstance(table, dict):
        raise GuardError(f"{config.source}: [{section}] must be a table")
    table.update(values)
    return Config(data, config.source)


def run(root: Path, config: Config, names: Iterable[str] | None = None) -> Report:
    """Every named checker (default: all) over ``root``, gathered into one report."""
    report = Report()
    for name in names or CHECKERS:
        if name not in CHECKERS:
            raise GuardError(f"unknown checker {name!r} (choose from {', '.join(CHECKERS)})")
        try:
            part = load(name)(root, config)
        except GuardError as exc:
            report.could_not_check(f"{name}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one broken checker must not hide the others
            from vsms_guard.redact import default_redactor

            detail = default_redactor().text(f"{type(exc).__name__}: {exc}")
            report.could_not_check(f"{name}: internal error: {detail}")
            continue
        report.findings.extend(part.findings)
        report.problems.extend(
            p if p.startswith(f"{name}:") else f"{name}: {p}" for p in part.problems
        )
    return report
