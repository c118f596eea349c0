"""Redactor core: masks keys and registered secrets in text.

Issue #3 extends this module (bytes, mappings, URLs, headers, SMS fields, logging/Sentry/structlog
adapters). Public API that other modules rely on: ``Redactor(secrets=…)``, ``.add_secret()``,
``.text()``, and ``default_redactor()``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable

from vsms_guard import keys

ENV_KEY = "VIRTUALSMS_API_KEY"
MIN_SECRET_LEN = 4  # shorter exact values would mask ordinary words


def masked(secret: str) -> str:
    """Replacement text for a secret: keeps the prefix and a short fingerprint, nothing else."""
    head = keys.PREFIX if secret.startswith(keys.PREFIX) else ""
    return f"{head}…[redacted:{keys.fingerprint(secret, 8)}]"


class Redactor:
    """Masks anything ``keys`` calls a key plus exact secret values registered with it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._secret_re: re.Pattern[str] | None = None
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, value: str | None) -> None:
        """Register an exact value (env key, webhook secret, …) to mask whatever its shape."""
        if not value or len(value) < MIN_SECRET_LEN:
            return
        with self._lock:
            if value in self._secrets:
                return
            self._secrets.add(value)
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._secret_re = re.compile("|".join(map(re.escape, ordered)))

    def text(self, text: str) -> str:
        """``text`` with every key and registered secret masked."""
        pattern = self._secret_re
        if pattern is not None:
            text = pattern.sub(lambda m: masked(m.group()), text)
        if keys.PREFIX in text:
            text = keys.CANDIDATE_RE.sub(
                lambda m: masked(m.group()) if keys.is_key(m.group()) else m.group(), text
            )
        return text


_default: Redactor | None = None
_default_lock = threading.Lock()


def default_redactor() -> Redactor:
    """The process-wide redactor; it always knows the current ``VIRTUALSMS_API_KEY``."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Redactor()
    _default.add_secret(os.environ.get(ENV_KEY))
    return _default
