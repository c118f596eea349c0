"""Key-shaped test data built at run time, so the repository itself never holds a key literal
(and ``vsms-guard check`` on this project stays clean)."""

from __future__ import annotations

import random
import string

from vsms_guard import keys

ALPHABET = string.ascii_letters + string.digits


def fake_key(seed: int | str = 0, length: int = 32) -> str:
    """A deterministic string that ``keys.is_key`` accepts; different seeds give different keys."""
    rng = random.Random(f"vsms-guard-test-{seed}")
    while True:
        key = keys.PREFIX + "".join(rng.choice(ALPHABET) for _ in range(length))
        if keys.is_key(key):
            return key
