"""``--verify``: ask the configured VirtualSMS base URL whether a found key is live.

Each distinct key is sent once, in the ``X-API-Key`` header of ``GET /api/v1/customer/balance``
(a read-only call), to that base URL and nowhere else: redirects are not followed, and plain
``http`` is refused except to a loopback host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from vsms_guard import keys
from vsms_guard.errors import GuardError

BALANCE_PATH = "/api/v1/customer/balance"
LIVE = "live"
REVOKED = "revoked"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """The balance URL under ``base_url``; a ``GuardError`` for anything unsafe to send keys to."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise GuardError(f"--verify: base URL {base_url!r} is not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise GuardError(f"--verify: refusing to send keys over plain http to {parts.hostname}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise GuardError("--verify: base URL must not carry a query, fragment or credentials")
    return base_url.rstrip("/") + BALANCE_PATH


def verify_keys(found: Iterable[str], base_url: str, timeout: float = 10.0) -> dict[str, str]:
    """Verdict per key fingerprint: ``live`` (200), ``revoked`` (401) or ``unknown (…)``."""
    import httpx

    url = check_base_url(base_url)
    verdicts: dict[str, str] = {}
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for key in dict.fromkeys(found):
            fp = keys.fingerprint(key)
            if fp in verdicts:
                continue
            try:
                status = client.get(url, headers={"X-API-Key": key}).status_code
            except httpx.HTTPError as exc:
                verdicts[fp] = f"unknown ({type(exc).__name__})"
                continue
            verdicts[fp] = {200: LIVE, 401: REVOKED}.get(status, f"unknown (HTTP {status})")
    return verdicts
