"""Replay stores: remember webhook envelope ids for a while, so a replayed delivery is caught.

One interface, three stores: :class:`MemoryReplayStore` (bounded, one process),
:class:`SQLiteReplayStore` (the embedded default, safe across processes on one machine) and
:class:`RedisReplayStore` (``SET NX`` with an expiry, for receivers behind a load balancer).
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from vsms_guard.errors import GuardError
from vsms_guard.webhooks import clock

REDIS_PREFIX = "vsms-guard:replay:"


@runtime_checkable
class ReplayStore(Protocol):
    """What the verifier and the receiver need from a replay store."""

    def add(self, key: str, *, ttl: float, now: float | None = None) -> bool:
        """Record ``key`` for ``ttl`` seconds; False if it was already recorded and unexpired.
        Atomic: of two concurrent adds of one key, exactly one returns True."""
        ...

    def discard(self, key: str) -> None:
        """Forget ``key`` (a delivery that could not be stored must be accepted on retry)."""
        ...

    def purge(self, *, now: float | None = None) -> int:
        """Drop expired keys; returns how many."""
        ...

    def close(self) -> None: ...


def _check_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise GuardError("replay ttl must be positive")


class MemoryReplayStore:
    """In-process store with TTL, bounded to ``max_entries``: when full, expired ids go first,
    then the oldest. A full store weakens replay defence (the signed ``created_at`` check still
    holds), so size it above the deliveries expected in one replay window."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise GuardError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._expiry: dict[str, float] = {}  # insertion order == age order
        self._lock = threading.Lock()

    def add(self, key: str, *, ttl: float, now: float | None = None) -> bool:
        _check_ttl(ttl)
        current = clock() if now is None else now
        with self._lock:
            expires = self._expiry.get(key)
            if expires is not None:
                if expires > current:
                    return False
                del self._expiry[key]
            if len(self._expiry) >= self.max_entries:
                self._make_room(current)
            self._expiry[key] = current + ttl
            return True

    def discard(self, key: str) -> None:
        with self._lock:
            self._expiry.pop(key, None)

    def purge(self, *, now: float | None = None) -> int:
        with self._lock:
            return self._purge(clock() if now is None else now)

    def _make_room(self, current: float) -> None:
        """Drop expired ids; if none were, the oldest tenth at once, so a full store costs one
        scan per ``max_entries / 10`` adds rather than one per add."""
        if self._purge(current):
            return
        for key in list(itertools.islice(self._expiry, max(1, self.max_entries // 10))):
            del self._expiry[key]

    def _purge(self, current: float) -> int:
        expired = [k for k, t in self._expiry.items() if t <= current]
        for key in expired:
            del self._expiry[key]
        return len(expired)

    def __len__(self) -> int:
        return len(self._expiry)

    def close(self) -> None:
        with self._lock:
            self._expiry.clear()


class SQLiteReplayStore:
    """Ids in a SQLite table (WAL mode): several processes on one machine share one file.

    The insert-or-revive is one statement, so concurrent adds of an id cannot both win.
    """

    TABLE = "replay_ids"

    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: no fsync per id (~10x faster); a crash of the process loses nothing,
            # a power cut at most the last ids, still bounded by the signed created_at check.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.TABLE} "
                "(id TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID"
            )
            self._db.execute(
                f"CREATE INDEX IF NOT EXISTS {self.TABLE}_expires ON {self.TABLE}(expires_at)"
            )
        except sqlite3.Error as exc:
            raise GuardError(f"{self.path}: cannot open replay store: {exc}") from None
        self._lock = threading.Lock()

    def add(self, key: str, *, ttl: float, now: float | None = None) -> bool:
        _check_ttl(ttl)
        current = clock() if now is None else now
        with self._lock:
            cursor = self._db.execute(
                f"INSERT INTO {self.TABLE} (id, expires_at) VALUES (?, ?) "
                f"ON CONFLICT(id) DO UPDATE SET expires_at = excluded.expires_at "
                f"WHERE {self.TABLE}.expires_at <= ?",
                (key, current + ttl, current),
            )
            return cursor.rowcount == 1

    def discard(self, key: str) -> None:
        with self._lock:
            self._db.execute(f"DELETE FROM {self.TABLE} WHERE id = ?", (key,))

    def purge(self, *, now: float | None = None) -> int:
        current = clock() if now is None else now
        with self._lock:
            cursor = self._db.execute(f"DELETE FROM {self.TABLE} WHERE expires_at <= ?", (current,))
            return cursor.rowcount

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute(f"SELECT count(*) FROM {self.TABLE}").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisReplayStore:
    """Ids as Redis keys set with ``SET NX PX``: Redis expires them, on its own clock (``now``
    is ignored), so every receiver behind a load balancer sees the same ids."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = REDIS_PREFIX,
        timeout: float = 5.0,
    ) -> None:
        if client is None:
            if not url:
                raise GuardError("RedisReplayStore needs a redis:// URL or a client")
            try:
                import redis  # lazy: optional integration
            except ImportError:
                raise GuardError(
                    "Redis replay store needs: pip install 'vsms-guard[redis]'"
                ) from None
            try:
                client = redis.Redis.from_url(
                    url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
            except ValueError:
                raise GuardError(f"replay store {_redis_place(url)}: not a valid URL") from None
        self._redis = client
        self.prefix = prefix
        self.url = url

    def check(self) -> None:
        """Fail now, with one clear line, if the server cannot be reached (a receiver that
        starts anyway would answer 503 to every delivery; a purge would report 0 ids)."""
        try:
            self._redis.ping()
        except Exception as exc:  # noqa: BLE001 - redis raises several unrelated types
            where = _redis_place(self.url)
            raise GuardError(f"replay store {where}: unreachable ({type(exc).__name__})") from None

    def add(self, key: str, *, ttl: float, now: float | None = None) -> bool:
        _check_ttl(ttl)
        return bool(self._redis.set(self.prefix + key, b"1", nx=True, px=max(1, int(ttl * 1000))))

    def discard(self, key: str) -> None:
        self._redis.delete(self.prefix + key)

    def purge(self, *, now: float | None = None) -> int:
        return 0  # Redis expires keys itself

    def close(self) -> None:
        self._redis.close()


def _redis_place(url: str | None) -> str:
    """``redis://host:port`` of a URL, without a password or path (safe in a message)."""
    if not url:
        return "redis"
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "redis"
    where = parts.path if parts.scheme == "unix" else f"{parts.hostname or ''}{port}"
    return f"{parts.scheme}://{where}"


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(//)?")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def open_store(spec: str) -> ReplayStore:
    """A store from a CLI spec: ``memory``, ``redis://…``/``rediss://…``/``unix://…`` (checked
    reachable now), ``sqlite:PATH`` or a SQLite path. Any other ``scheme://`` is refused rather
    than taken for a file name."""
    if spec == "memory":
        return MemoryReplayStore()
    scheme = _SCHEME.match(spec)
    if scheme and scheme[1].lower() in _REDIS_SCHEMES and scheme[2]:
        store = RedisReplayStore(spec)
        try:
            store.check()
        except GuardError:
            store.close()
            raise
        return store
    if scheme and scheme[1].lower() == "sqlite":
        return SQLiteReplayStore(spec[len("sqlite:") :])
    if scheme and scheme[2]:
        raise GuardError(
            f"replay store: unknown scheme '{scheme[1][:20]}://' "
            "(use memory, redis://, rediss://, unix://, sqlite:PATH or a file path)"
        )
    return SQLiteReplayStore(spec)
