"""Retention windows (``policies/retention.toml``) and the purge that enforces them.

The windows are data so that operators change a file, not code. Ages are measured in UTC epoch
seconds from when the receiver stored a row, so local time zones and DST never move a boundary.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from policies import policy_path
from vsms_guard.errors import GuardError
from vsms_guard.webhooks import clock

if TYPE_CHECKING:
    from vsms_guard.receiver import EventStore
    from vsms_guard.replay import ReplayStore

POLICY_FILE = "retention.toml"
LIFETIME = "account-lifetime"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"\s*(\d+)\s*([smhd])\s*")


@dataclass(frozen=True)
class RetentionPolicy:
    """Windows in seconds; ``order_metadata`` None means kept for the account's lifetime."""

    sms_body: int
    access_log: int
    order_metadata: int | None
    replay_ids: int
    purge_interval: int
    sms_body_fields: tuple[str, ...]
    source: Path | None = None


@dataclass(frozen=True)
class PurgeResult:
    """How many rows one purge removed, per kind of data."""

    sms_bodies: int = 0
    access_log: int = 0
    events: int = 0
    replay_ids: int = 0

    @property
    def total(self) -> int:
        return self.sms_bodies + self.access_log + self.events + self.replay_ids


def parse_duration(text: object, *, name: str = "duration") -> int:
    """Seconds in ``"7d"``, ``"36h"``, ``"15m"`` or ``"45s"``; GuardError otherwise."""
    match = _DURATION_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise GuardError(f"{name}: expected a positive duration like '7d' or '36h', got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: int | None) -> str:
    """The shortest exact form of ``seconds`` (``None`` -> ``account-lifetime``)."""
    if seconds is None:
        return LIFETIME
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def load_policy(path: str | Path | None = None) -> RetentionPolicy:
    """The policy in ``path``, or the one shipped in ``policies/retention.toml``."""
    if path is None:
        return _shipped_policy()
    return _read_policy(Path(path))


@functools.cache
def _shipped_policy() -> RetentionPolicy:
    return _read_policy(policy_path(POLICY_FILE))


def _read_policy(path: Path) -> RetentionPolicy:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise GuardError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise GuardError(f"{path}: cannot read: {exc.strerror}") from None
    windows, purge, sms = (_table(data, key, path) for key in ("windows", "purge", "sms"))
    fields = sms.get("sms_body_fields")
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise GuardError(f"{path}: [sms] sms_body_fields must be a non-empty list of strings")
    order = windows.get("order_metadata", LIFETIME)
    return RetentionPolicy(
        sms_body=parse_duration(windows.get("sms_body"), name=f"{path}: sms_body"),
        access_log=parse_duration(windows.get("access_log"), name=f"{path}: access_log"),
        order_metadata=None
        if order == LIFETIME
        else parse_duration(order, name=f"{path}: order_metadata"),
        replay_ids=parse_duration(windows.get("replay_ids"), name=f"{path}: replay_ids"),
        purge_interval=parse_duration(purge.get("interval", "1h"), name=f"{path}: interval"),
        sms_body_fields=tuple(fields),
        source=path,
    )


def _table(data: dict, key: str, path: Path) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise GuardError(f"{path}: missing table [{key}]")
    return value


def purge(
    store: EventStore,
    policy: RetentionPolicy | None = None,
    *,
    replay_store: ReplayStore | None = None,
    now: float | None = None,
) -> PurgeResult:
    """Apply every window once. Idempotent: a second run at the same time removes nothing.

    SMS bodies go after ``sms_body`` (the event's metadata stays), access-log rows after
    ``access_log``, whole events only when ``order_metadata`` is a duration, expired replay ids
    always.
    """
    policy = policy or load_policy()
    current = clock() if now is None else now
    events = 0
    if policy.order_metadata is not None:
        events = store.purge_events(before=current - policy.order_metadata)
    result = PurgeResult(
        sms_bodies=store.purge_sms_bodies(before=current - policy.sms_body, now=current),
        access_log=store.purge_access_log(before=current - policy.access_log),
        events=events,
        replay_ids=replay_store.purge(now=current) if replay_store is not None else 0,
    )
    store.compact()
    return result
