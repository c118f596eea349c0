"""The one exception type a command turns into a one-line message and exit code 2."""

from __future__ import annotations


class GuardError(Exception):
    """Bad input or a check that could not run. ``str(err)`` is shown to the user as is,
    so it must never contain a secret."""
