"""Key-redacting guard layer: one ``Redactor`` and adapters around it (issue #3).

``install()`` covers stdlib logging in one call; ``vsms_guard.redact.sentry.hooks()`` and
``vsms_guard.redact.structlog.RedactProcessor`` cover Sentry and structlog; ``vsms-guard redact``
cleans existing log files. See docs/redaction.md.
"""

from __future__ import annotations

from vsms_guard.redact.core import (
    ENV_KEY,
    REDACTED,
    SMS_REDACTED,
    Redactor,
    default_redactor,
    is_secret_name,
    masked,
)
from vsms_guard.redact.logging import (
    RedactingFilter,
    install,
    installed,
    redact_record,
    uninstall,
)

__all__ = [
    "ENV_KEY",
    "REDACTED",
    "SMS_REDACTED",
    "Redactor",
    "RedactingFilter",
    "default_redactor",
    "install",
    "installed",
    "is_secret_name",
    "masked",
    "redact_record",
    "uninstall",
]
