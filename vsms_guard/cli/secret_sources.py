"""Where commands get secrets: environment variables or files, never argv (``ps`` shows argv).

Shared by ``vsms-guard redact`` and ``vsms-guard webhook`` so both read, split and report
secrets the same way. Each secret comes with its origin, for error messages that never show it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from vsms_guard.errors import GuardError

_ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")  # anything else might be a pasted secret


def env_secrets(names: Iterable[str], *, required: bool = True) -> list[tuple[str, str]]:
    """Comma-separated secrets (several during a rotation) from the named variables; a variable
    that is unset or empty is an error when ``required``, else skipped."""
    found: list[tuple[str, str]] = []
    for name in names:
        value = os.environ.get(name, "")
        if not value.strip():
            if not required:
                continue
            shown = name if _ENV_NAME_RE.fullmatch(name) else "given by --secret-env"
            raise GuardError(
                f"environment variable {shown} is not set or empty "
                "(--secret-env takes the variable's NAME, not the secret)"
            )
        origin = f"environment variable {name if _ENV_NAME_RE.fullmatch(name) else '(unnamed)'}"
        found.extend((origin, part.strip()) for part in value.split(",") if part.strip())
    return found


def file_secrets(paths: Iterable[Path]) -> list[tuple[str, str]]:
    """One exact secret per line (commas included); blank lines and ``#`` comments skipped."""
    found: list[tuple[str, str]] = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise GuardError(f"{path}: cannot read secret file: {type(exc).__name__}") from None
        in_file = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        if not in_file:
            raise GuardError(f"{path}: no secret in file")
        found.extend((str(path), line) for line in in_file)
    return found
