"""Policy data (support windows, retention windows, semgrep rules): data, not code.

Shipped as package data so installed copies and the source tree read the same files.
"""

from __future__ import annotations

from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parent


def policy_path(name: str) -> Path:
    """Path of a policy file or folder shipped with vsms-guard (``supported_versions.toml`` …)."""
    return POLICY_DIR / name
