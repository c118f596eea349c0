"""detect-secrets plugin for VirtualSMS keys, for teams that already run detect-secrets:

    detect-secrets scan --plugin "$(vsms-guard scan --print-plugin-path)"

Its verdicts come from the same line scanner as ``vsms-guard scan`` (``vsms_guard.keys`` plus
base64 decoding), so the two never disagree about a line.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path

from detect_secrets.plugins.base import RegexBasedDetector

try:
    from scanners.files import scan_ascii
    from vsms_guard import keys
except ImportError:  # loaded by path from a detect-secrets outside our environment
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from scanners.files import scan_ascii
    from vsms_guard import keys


class VirtualSMSKeyDetector(RegexBasedDetector):
    """VirtualSMS API keys (``vsms_`` + a random token); placeholders and names are not."""

    secret_type = "VirtualSMS API key"
    denylist = (keys.CANDIDATE_RE,)

    def analyze_string(self, string: str) -> Generator[str, None, None]:
        for hit in scan_ascii(string.encode("utf-8", errors="surrogateescape")):
            yield hit.key
