"""Operator configuration of the server: read once at start-up, never from a request.

The upstream base URL in particular comes only from here (flag or ``VIRTUALSMS_BASE_URL``), so
no caller can point the server, and a key, at a host of its choosing.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from vsms_guard import keys
from vsms_guard.errors import GuardError

DEFAULT_BASE_URL = keys.DEFAULT_BASE_URL
ENV_KEY = keys.ENV_KEY
ENV_BASE_URL = keys.ENV_BASE_URL
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# The backend allows 60 requests/minute per key: one poll a second would spend all of it.
MIN_POLL_INTERVAL = 1.0


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """The normalised base URL, or a GuardError: https, or plain http only to a loopback host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise GuardError(f"upstream base URL must be an http(s) URL, got {parts.scheme or 'none'}")
    if not parts.hostname:
        raise GuardError(f"upstream base URL {parts.scheme}://{parts.netloc} has no host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise GuardError("upstream base URL must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise GuardError("upstream base URL must use https unless it is a loopback address")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class Settings:
    """Everything the operator decides. ``env_key`` is used on stdio only, never over HTTP."""

    base_url: str = DEFAULT_BASE_URL
    env_key: str | None = None
    http_mode: bool = False
    request_timeout: float = 15.0
    connect_timeout: float = 5.0
    read_retries: int = 2
    retry_backoff: float = 0.25
    poll_interval: float = 3.0  # fallback polling: 20 reads/min, a third of the 60/min budget
    ws_open_timeout: float = 5.0
    price_concurrency: int = 4
    # Requests per key per minute sent to /api/v1/customer/* (backend: 60); 0 disables.
    upstream_per_minute: int = 50
    # HTTP mode: upstream requests (discovery included) per client address per minute, whatever
    # key each request sends; 0 disables.
    upstream_per_address_per_minute: int = 100
    # StreamableHTTP front: MCP requests per minute per key, and per client address whatever
    # key is sent (random keys must not buy a fresh bucket); 0 disables either.
    rate_limit_per_minute: int = 60
    address_rate_limit_per_minute: int = 120
    max_body_bytes: int = 64 * 1024
    allowed_hosts: tuple[str, ...] = field(default=())
    allowed_origins: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", check_base_url(self.base_url))
        if self.http_mode and self.env_key is not None:
            raise GuardError("HTTP mode never uses a server-side API key")
        if min(self.upstream_per_minute, self.upstream_per_address_per_minute) < 0:
            raise GuardError("upstream limits must be >= 0 (0 disables)")
        if self.poll_interval < MIN_POLL_INTERVAL:
            raise GuardError(f"poll_interval must be >= {MIN_POLL_INTERVAL:g} s (60 requests/min)")

    @property
    def ws_base_url(self) -> str:
        """``ws(s)://`` twin of the base URL, for the order socket."""
        return "ws" + self.base_url.removeprefix("http")


def from_env(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment (base URL; the key only outside HTTP mode) plus overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {"base_url": env.get(ENV_BASE_URL) or DEFAULT_BASE_URL}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if not values.get("http_mode"):
        values.setdefault("env_key", env.get(ENV_KEY, "").strip() or None)
    return Settings(**values)  # type: ignore[arg-type]
