"""What a VirtualSMS API key is: the one definition every checker and the redactor share.

No public key shows the exact length or alphabet, so a key is ``vsms_`` (case-sensitive)
followed by a *random-looking* token of at least 20 characters from ``[A-Za-z0-9_-]``.
Randomness (mixed character classes, entropy, no word structure) is what separates a key from
identifiers such as ``vsms_key_rotation_work_frequency`` and from documentation placeholders.
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from collections.abc import Iterator

PREFIX = "vsms_"
PREFIX_BYTES = PREFIX.encode()
MIN_TOKEN_LEN = 20

# Where keys and secrets live (FACTS §1, §4, §5): one definition for every front end.
ENV_KEY = "VIRTUALSMS_API_KEY"
ENV_BASE_URL = "VIRTUALSMS_BASE_URL"
ENV_WEBHOOK_SECRET = "VIRTUALSMS_WEBHOOK_SECRET"
DEFAULT_BASE_URL = "https://virtualsms.io"
TOKEN_CHARS = "A-Za-z0-9_-"

# Candidate shape only; ``is_key`` decides. No left boundary on purpose: keys pasted after
# escapes (``\nvsms_…``), URL-encoded ``%3D`` or an identifier prefix must still be found.
CANDIDATE_RE = re.compile(rf"vsms_[{TOKEN_CHARS}]{{{MIN_TOKEN_LEN},}}")
CANDIDATE_RE_BYTES = re.compile(rf"vsms_[{TOKEN_CHARS}]{{{MIN_TOKEN_LEN},}}".encode())

# FACTS §5: seen in public configs and docs; none is a key.
PLACEHOLDERS = frozenset(
    {
        "vsms_your_api_key_here",
        "vsms_your_key_here",
        "vsms_xxx",
        "vsms_xxxxx",
        "vsms_...",
        "vsms_test",
        "vsms_test_key",
        "vsms_new",
    }
)
# FACTS §5: identifiers that merely start with the prefix.
IDENTIFIERS = frozenset(
    {
        "vsms_id",
        "vsms_user",
        "vsms_enabled",
        "vsms_device_id",
        "vsms_csrf",
        "VSMS_MESSAGE_QUERY_RES",
        "vSMS_R_System",
        "vsms_key_rotation_work_frequency",
    }
)
# A token containing one of these is written by a person, not a generator.
PLACEHOLDER_MARKERS = (
    "your",
    "example",
    "placeholder",
    "xxxx",
    "dummy",
    "changeme",
    "redacted",
    "sample",
    "insert",
    "replace",
    "demo",
    "fake",
)

MIN_ENTROPY_BITS = 3.0  # per character; random base62 tokens of 20+ chars score about 4
MAX_MEAN_WORD_RUN = 4.0  # camelCase/snake_case words have long letter runs; random tokens don't
_WORD_RUN_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_SEPARATOR_RE = re.compile(r"[_-]")
_WORD_SEGMENT_RE = re.compile(r"[A-Za-z]+[0-9]*|[0-9]+")  # a word, maybe numbered, or a number
_DIGIT_RUN_RE = re.compile(r"[0-9]+")
# Names carry digits in one or two places (a version, a count); random tokens scatter them, so
# a lowercase+digits key (letter runs ~3.6 long) is not mistaken for words.
MAX_NAME_DIGIT_GROUPS = 2
# camelCase words, each capitalised, maybe a number at the end: ``MyVirtualSmsKeyForProd2024``.
_CAMEL_WORDS_RE = re.compile(r"[a-z]*(?:[A-Z][a-z]+)+[0-9]{0,4}")
# A person typing a fake key walks the keyboard: ``abcde``, ``12345``, ``aBcDeF``, ``1a2b3c4d5e``.
# Five ascending characters in a row come up by chance in about 1 random 32-char key in 30,000.
MAX_ASCENDING_RUN = 4


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text`` (0 for empty)."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _looks_like_words(token: str) -> bool:
    """snake_case / kebab-case names (each segment a word or a number), or camelCase whose
    letter runs are word-long and whose digits sit in at most two places."""
    segments = [s for s in _SEPARATOR_RE.split(token) if s]
    if len(segments) > 1 and all(_WORD_SEGMENT_RE.fullmatch(s) for s in segments):
        return True
    runs = _WORD_RUN_RE.findall(token)
    if not runs or sum(map(len, runs)) / len(runs) < MAX_MEAN_WORD_RUN:
        return False
    return len(_DIGIT_RUN_RE.findall(token)) <= MAX_NAME_DIGIT_GROUPS


def _has_ascending_run(token: str) -> bool:
    """A run of more than ``MAX_ASCENDING_RUN`` ascending characters (any case), in the token
    or in either of its interleaved halves."""
    lowered = token.lower()
    for text in (lowered, lowered[0::2], lowered[1::2]):
        run = 1
        for a, b in zip(text, text[1:], strict=False):
            run = run + 1 if ord(b) == ord(a) + 1 else 1
            if run > MAX_ASCENDING_RUN:
                return True
    return False


def is_key(candidate: str) -> bool:
    """True when ``candidate`` (``vsms_`` + token) looks generated: not a name or placeholder."""
    if not candidate.startswith(PREFIX) or candidate in PLACEHOLDERS or candidate in IDENTIFIERS:
        return False
    token = candidate[len(PREFIX) :]
    if len(token) < MIN_TOKEN_LEN or not CANDIDATE_RE.fullmatch(candidate):
        return False
    lowered = token.lower()
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return False
    classes = sum(
        (
            any(c.islower() for c in token),
            any(c.isupper() for c in token),
            any(c.isdigit() for c in token),
        )
    )
    if classes < 2:
        return False
    if shannon_entropy(token) < MIN_ENTROPY_BITS:
        return False
    if _CAMEL_WORDS_RE.fullmatch(token) or _has_ascending_run(token):
        return False
    return not _looks_like_words(token)


def find_keys(text: str) -> Iterator[re.Match[str]]:
    """Matches of real keys in ``text``."""
    for match in CANDIDATE_RE.finditer(text):
        if is_key(match.group()):
            yield match


def find_keys_bytes(data: bytes) -> Iterator[re.Match[bytes]]:
    """Matches of real keys in ASCII-compatible ``data`` (UTF-8, Latin-1, …)."""
    if PREFIX_BYTES not in data:
        return
    for match in CANDIDATE_RE_BYTES.finditer(data):
        if is_key(match.group().decode("ascii")):
            yield match


def contains_key(text: str) -> bool:
    """Cheap yes/no: does ``text`` hold a real key?"""
    return PREFIX in text and next(find_keys(text), None) is not None


def _base64_needles() -> tuple[bytes, ...]:
    """The base64 text that ``vsms_`` becomes at each of the three byte alignments.

    Only the characters fully determined by the prefix are kept, so a needle matches whatever
    follows the prefix; standard and URL-safe alphabets agree on these characters.
    """
    needles = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + PREFIX_BYTES + b"\0\0\0")
        start = (offset * 8 + 5) // 6 if offset else 0
        stable = (offset + len(PREFIX_BYTES)) * 8 // 6
        needles.append(encoded[start:stable])
    return tuple(needles)


BASE64_NEEDLES = _base64_needles()


def mask(key: str) -> str:
    """Display form that never shows a key whole: ``vsms_AbC…(40)`` (3 token chars, length)."""
    token = key[len(PREFIX) :] if key.startswith(PREFIX) else key
    head = PREFIX if key.startswith(PREFIX) else ""
    return f"{head}{token[:3]}…({len(key)})"


def fingerprint(secret: str | bytes, length: int = 12) -> str:
    """Stable, non-reversible short id of a secret (hex of SHA-256), to tell keys apart."""
    import hashlib  # here, not at the top: a scan without findings never needs it

    raw = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(raw).hexdigest()[:length]
