"""Registry of the checkers that ``vsms-guard check`` runs.

A checker is ``check(root: Path, config: Config) -> Report``; it is imported only when run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from vsms_guard.config import Config
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
