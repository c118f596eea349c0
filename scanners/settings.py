"""The scanner's settings from the project config (``[tool.vsms-guard]`` / ``.vsms-guard.toml``).

``exclude`` (top level, shared by every checker) and ``[scan]``: ``exclude`` (extra patterns),
``baseline`` (a path or a list of paths, relative to the config file).

The ``--verify`` base URL is deliberately *not* read from the project config: the scanned
repository (say, a hostile pull request) must not choose where found keys are sent. It comes
from ``--base-url``, else ``VIRTUALSMS_BASE_URL``, else https://virtualsms.io.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from vsms_guard import keys
from vsms_guard.config import Config
from vsms_guard.errors import GuardError

DEFAULT_BASE_URL = keys.DEFAULT_BASE_URL
BASE_URL_ENV = keys.ENV_BASE_URL


@dataclass
class ScanSettings:
    exclude: list[str] = field(default_factory=list)
    baselines: list[Path] = field(default_factory=list)
    base_url: str = DEFAULT_BASE_URL


def _strings(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise GuardError(f"{where} must be a string or a list of strings")


def scan_settings(config: Config, root: Path) -> ScanSettings:
    """Settings for a scan rooted at ``root``; relative baseline paths follow the config file."""
    section = config.section("scan", known=("exclude", "baseline", "base_url"))
    where = f"{config.source}: [scan]"
    base = config.source.parent if config.source else root
    if "base_url" in section:
        raise GuardError(
            f"{where} base_url is not read from project config (a scanned repository must not "
            f"choose where keys are sent): use --base-url or {BASE_URL_ENV}"
        )
    base_url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return ScanSettings(
        exclude=config.exclude + _strings(section.get("exclude", []), f"{where} exclude"),
        baselines=[base / p for p in _strings(section.get("baseline", []), f"{where} baseline")],
        base_url=base_url,
    )
