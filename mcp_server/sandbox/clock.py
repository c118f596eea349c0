"""A clock tests move by hand, to reach the hold's end or an order's expiry without waiting."""

from __future__ import annotations

import threading
import time


class ManualClock:
    """Callable like ``time.time``; starts at ``start`` (default: now) and moves only on
    ``advance``."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now
