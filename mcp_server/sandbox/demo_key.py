"""The sandbox's demo key, chosen the same way by ``vsms-mcp sandbox`` and ``vsms-mcp --sandbox``.

The operator's ``VIRTUALSMS_API_KEY`` if set; else the key kept in ``--key-file`` by an earlier
run (so a restarted sandbox keeps the client's configuration valid); else a new key written to
that file, readable by its owner only. Only a masked form is ever printed.
"""

from __future__ import annotations

import os
from pathlib import Path

from mcp_server.sandbox.backend import Sandbox
from vsms_guard import keys
from vsms_guard.errors import GuardError

ENV_KEY = keys.ENV_KEY


def write_key_file(path: Path, key: str) -> None:
    """Create ``path`` (mode 0600) holding ``key``; never follows or overwrites an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    except OSError as exc:
        raise GuardError(f"cannot write the key file {path}: {exc.strerror}") from None


def read_key_file(path: Path) -> str:
    """The one key saved in ``path``, or a GuardError that never shows the file's content."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise GuardError(f"cannot read the key file {path}: {type(exc).__name__}") from None
    if not key or len(key.split()) != 1:
        raise GuardError(f"the key file {path} must hold one key on one line")
    return key


def choose_demo_key(env_key: str, key_file: Path | None) -> tuple[str | None, str]:
    """(key or None for "make a new one", where it comes from); checked before anything starts."""
    if env_key:
        return env_key, f"from {ENV_KEY}"
    if key_file is None:
        raise GuardError(f"set {ENV_KEY} to the demo key you want, or pass --key-file PATH")
    if key_file.exists():
        return read_key_file(key_file), f"read from {key_file}"
    if key_file.is_symlink():  # exists() follows links: this one points nowhere
        raise GuardError(
            f"the key file {key_file} is a symbolic link to a missing file: "
            "remove the link or pass another path"
        )
    if not key_file.parent.is_dir():
        raise GuardError(f"cannot write the key file {key_file}: no such directory")
    return None, f"written to {key_file} (mode 0600)"


def open_demo_account(
    sb: Sandbox, balance_usd: float, chosen: str | None, key_file: Path | None
) -> str:
    """Fund the demo account; a new key (``chosen`` None) is saved to ``key_file`` if given."""
    key = sb.create_account(balance_usd, key=chosen)
    if chosen is None and key_file is not None:
        write_key_file(key_file, key)
    return key
