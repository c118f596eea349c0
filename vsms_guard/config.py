"""Project configuration: ``[tool.vsms-guard]`` in pyproject.toml or a ``.vsms-guard.toml``.

Top-level keys apply to every checker (``exclude``: gitignore-style path patterns); each checker
reads its own table (``[tool.vsms-guard.versions]`` or ``[versions]`` in ``.vsms-guard.toml``).
One file is read, never merged: ``.vsms-guard.toml`` wins over ``pyproject.toml``. A misspelt
setting is an error, not a silently ignored line.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsms_guard.errors import GuardError

CONFIG_FILE = ".vsms-guard.toml"
TOP_LEVEL = ("exclude",)
SECTIONS = ("scan", "versions", "semgrep", "audit")  # one table per checker


@dataclass
class Config:
    """Loaded settings; ``source`` is the file they came from, or None for defaults."""

    data: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def exclude(self) -> list[str]:
        value = self.data.get("exclude", [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise GuardError(f"{self.source}: 'exclude' must be a list of strings")
        return value

    def section(self, name: str, known: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The checker's table; with ``known``, any other key in it is an error."""
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise GuardError(f"{self.source}: [{name}] must be a table")
        unknown = sorted(set(value) - set(known)) if known is not None else []
        if unknown:
            raise GuardError(
                f"{self.source}: [{name}] unknown setting(s): {', '.join(unknown)} "
                f"(known: {', '.join(known or ())})"
            )
        return value


def _checked(config: Config) -> Config:
    unknown = sorted(set(config.data) - set(TOP_LEVEL) - set(SECTIONS))
    if unknown:
        raise GuardError(
            f"{config.source}: unknown setting(s): {', '.join(unknown)} "
            f"(known: {', '.join(TOP_LEVEL + SECTIONS)})"
        )
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise GuardError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise GuardError(f"{path}: cannot read: {exc.strerror}") from None


def load_config(root: Path, explicit: Path | None = None) -> Config:
    """Settings for a scan rooted at ``root``: ``explicit`` file, else ``.vsms-guard.toml``, else
    ``[tool.vsms-guard]`` of ``pyproject.toml``, else defaults."""
    if explicit is not None:
        return _checked(Config(_read_toml(explicit), explicit))
    base = root if root.is_dir() else root.parent
    own = base / CONFIG_FILE
    if own.is_file():
        return _checked(Config(_read_toml(own), own))
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("vsms-guard")
        if table is not None:
            if not isinstance(table, dict):
                raise GuardError(f"{pyproject}: [tool.vsms-guard] must be a table")
            return _checked(Config(table, pyproject))
    return Config()
