"""Redactor core: masks keys, registered secrets, secret fields and SMS content.

One set of patterns, compiled for ``str`` and for ``bytes``, serves every caller (log adapters,
Sentry hooks, the stream filter, the MCP server), so they can never disagree on what is secret.
What a key is comes from ``vsms_guard.keys``; this module only adds the context around it:
header and query names, mapping fields, and SMS bodies and codes.
"""

from __future__ import annotations

import functools
import json
import os
import re
import string
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, AnyStr
from urllib.parse import quote, quote_plus

from vsms_guard import keys

ENV_KEY = keys.ENV_KEY
MIN_SECRET_LEN = 4  # shorter exact values would mask ordinary words
REDACTED = "[redacted]"
SMS_REDACTED = "[redacted:sms]"
MAX_DEPTH = 64  # deeper structures are cut rather than walked (cycles, hostile payloads)

# Field, header and query-parameter names whose values are secret. Compared normalised
# (lower case, ``-``/``_`` removed), so ``X-Api-Key``, ``x_api_key`` and ``apiKey`` all match.
SECRET_NAMES = frozenset(
    {
        "x-api-key",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "cookies",
        "api_key",
        "apiKey",
        "key",
        "token",
        "secret",
        "webhook_secret",
        "password",
    }
)
# Names ending like this are secret too: access_token, client_secret, db_password, my_api_key.
SECRET_SUFFIXES = ("token", "secret", "password", "passwd", "apikey")
# VirtualSMS payload fields holding SMS bodies or extracted codes (FACTS §1); ``content`` only
# inside ``messages[]`` and ``message`` only inside a WebSocket ``sms``/``sms_received`` push.
SMS_FIELDS = frozenset({"full_text", "sms_text", "sms_code", "code"})
SMS_PUSH_TYPES = frozenset({"sms", "sms_received"})
# Bare query strings (no ``?``), as Sentry and HTTP breadcrumbs store them.
QUERY_FIELDS = frozenset({"query_string", "querystring", "http.query"})
# What this module writes: a value already masked is left as it is (masking twice is a no-op).
_ALREADY_MASKED = re.compile(r"(?:vsms_|whsec_)?…\[redacted[^\]\s]*\]|\[redacted(?::sms)?\]")
# A ``code`` that looks like this is an error or status code, not an SMS code.
_NOT_SMS_CODE = re.compile(r"[A-Za-z_.-]+|-?\d{1,3}|-\d+")
_AUTH_SCHEME = re.compile(r"(?i)(bearer|basic|token|digest|apikey)(\s+)(\S+)")


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_SECRET_NORM = frozenset(map(_norm, SECRET_NAMES))


@functools.lru_cache(maxsize=1024)
def is_secret_name(name: str) -> bool:
    """True for a header, query or field name whose value must never be logged."""
    norm = _norm(name)
    return norm in _SECRET_NORM or norm.endswith(SECRET_SUFFIXES)


# A webhook secret by its shape (FACTS §4: ``whsec_…``, shown once at creation): masked like a
# key even when nobody registered it. 16+ token/base64 characters, so ``whsec_…`` in docs stays.
WEBHOOK_SECRET_PREFIX = "whsec_"
_WEBHOOK_SECRET = r"whsec_[A-Za-z0-9_+/=-]{16,}"
_WEBHOOK_SECRET_RE = re.compile(_WEBHOOK_SECRET)


@functools.lru_cache(maxsize=4096)
def masked(secret: str) -> str:
    """Replacement text for a secret: keeps the prefix and a short fingerprint, nothing else.
    Cached: a log repeats the same few keys."""
    head = next((p for p in (keys.PREFIX, WEBHOOK_SECRET_PREFIX) if secret.startswith(p)), "")
    return f"{head}…[redacted:{keys.fingerprint(secret, 8)}]"


@functools.lru_cache(maxsize=4096)
def _key_mask(candidate: str) -> str | None:
    """``masked(candidate)`` if it is a key, else None; cached, as a log repeats its keys."""
    return masked(candidate) if keys.is_key(candidate) else None


# --- patterns --------------------------------------------------------------------------------
# Written in the syntax Python's ``re`` and RE2 share (no look-around, no back-references): ``re``
# runs them on log messages, RE2 (linear time, one pass) on raw streams when installed.
# Names: case-insensitive; the surrounding pattern anchors them on both sides.
_NAMES = (
    r"(?i:[\w.-]*?(?:api[-_]?key|token|secret|password|passwd)|key"
    r"|(?:proxy[-_]?)?authorization|(?:set[-_]?)?cookie)"
)
_SMS_NAMES = r"(?i:full_text|sms_text|sms_code|code|content|message)"
_SMS_KV_NAMES = r"(?i:full_text|sms_text|sms_code|code)"  # ``content=`` is too common there
# A quoted ``"message"`` is an SMS body only in a push (``"type": "sms_received"``) nearby.
_SMS_PUSH_MARK = re.compile(
    r"""(?i)type\\*["']?[ \t]*[:=][ \t]*b?\\*["']sms(?:_received)?\\*["']"""
)
_PUSH_WINDOW = 512  # characters around a "message" field searched for its push type
_HEADER_NAMES = r"(?i:(?:x-)?api-key|(?:proxy-)?authorization|(?:set-)?cookie)"
# Quoted field in JSON, JSON inside a JSON string (escaped quotes) or a Python repr, with ``:``,
# ``,`` (a header pair tuple) or ``=`` after the name: "x-api-key": "…", (b'cookie', b'…').
_QUOTED = (
    rf"b?(?P<nq>\\*[\"'])(?P<qname>{_NAMES}|{_SMS_NAMES})\\*[\"'][ \t]*[:,=][ \t]*b?"
    r"(?:\\+\"(?P<qesc>(?:[^\"\\\n]|\\[^\"\n])*)\\+\""
    r"|\"(?P<qdq>(?:[^\"\\\n]|\\.)*)\""
    r"|'(?P<qsq>(?:[^'\\\n]|\\.)*)'"
    r"|(?P<qnum>-?\d+(?:\.\d+)?))"
)
# name=value: URL query parameters, logfmt, structlog's key=value, Python keyword reprs
# (``SmsResult(code='482913')``). An auth scheme before the value is taken with it, so the
# token of ``authorization=Bearer abc`` is masked, not only the word ``Bearer``.
_KV = (
    rf"(?:(?m:^)|[^\w.-])(?P<kname>{_NAMES}|{_SMS_KV_NAMES})="
    r"(?P<kval>\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
    r"|(?i:bearer|basic|token|digest|apikey)[ \t]+[^\s&;,#\"'<>(){}]+"  # [redacted] too
    r"|(?:vsms_|whsec_)?…\[redacted[^\]\s]*\]"  # already masked: taken whole (idempotent)
    r"|[^\s&;,#\"'<>()\[\]{}]*)"
)
# A header written as text ("> x-api-key: …" from websockets, "-H 'Authorization: …'").
_HEADER = (
    rf"(?:(?m:^)|[^\w-])(?P<hname>{_HEADER_NAMES})[ \t]*:[ \t]*"
    r"(?P<hval>\"[^\"\r\n]*\"|'[^'\r\n]*'|[^\r\n\"']*)"
)
_USERINFO = r"://(?P<user>[^\s/:@]+):(?P<pw>[^\s/@]+)@"
# Every match holds one of these (any case) or the start of a registered secret: the pattern is
# only tried next to them.
TRIGGER_WORDS = (
    keys.PREFIX,
    WEBHOOK_SECRET_PREFIX,
    "key",
    "token",
    "secret",
    "passw",
    "authoriz",
    "cookie",
    "code",
    "content",
    "message",
    "_text",
    "://",
)
_TRIGGER_BYTES = tuple(word.encode() for word in TRIGGER_WORDS)


_NEVER = r"\b\B"  # matches nothing: the secret group exists even with no secret registered


def _compile_full(secret_alt: str) -> str:
    return "|".join(
        (
            f"(?P<key>{keys.CANDIDATE_RE.pattern})",
            f"(?P<whsec>{_WEBHOOK_SECRET})",
            f"(?P<secret>{secret_alt or _NEVER})",
            _QUOTED,
            _KV,
            _HEADER,
            _USERINFO,
        )
    )


@functools.cache
def _re2() -> Any:
    """The google-re2 module, or None when it is not installed (then ``re`` does all work)."""
    try:
        import re2
    except ImportError:
        return None
    return re2


_NAME_CHARS = string.ascii_letters + string.digits + "_.-"
_QUOTE_CHARS = "\\\"'b"  # what may stand before a quoted name: b'…', \"…\"
_MAX_NAME = 1024
_SCAN_TEXT = (_NAME_CHARS, _QUOTE_CHARS, "://")
_RE2_FROM = 4096  # bytes; below, the anchored scan is cheaper than RE2's per-call overhead
_SCAN_BYTES = tuple(chars.encode() for chars in _SCAN_TEXT)


def _holds_any(text: AnyStr, needles: Iterable[AnyStr]) -> bool:
    for needle in needles:  # a plain loop: measurably cheaper than any() on short texts
        if needle in text:
            return True
    return False


def _anchored_sub(
    text: AnyStr,
    words: Iterable[AnyStr],
    heads: Iterable[AnyStr],
    pattern: re.Pattern[AnyStr],
    replace: Callable[[re.Match[AnyStr]], AnyStr],
) -> AnyStr:
    """``pattern.sub(replace, text)``, trying the pattern only next to trigger words.

    Every match holds a trigger word (any case) or a registered secret's head (exact case), in
    a token it starts at most a quote or separator before. Trying those few offsets gives what a
    full scan gives (a test holds it to that), at a cost set by the triggers, not the length.
    """
    lowered = text.lower()
    if not _holds_any(lowered, words) and not _holds_any(text, heads):
        return text  # the common case, kept cheap: logging pays it on every record
    if len(lowered) != len(text):  # a few non-ASCII letters lower-case to two characters
        return pattern.sub(replace, text)
    positions: list[int] = []
    for needles, haystack in ((words, lowered), (heads, text)):
        for needle in needles:
            found = haystack.find(needle)
            while found >= 0:
                positions.append(found)
                found = haystack.find(needle, found + 1)
    name_chars, quote_chars, scheme = _SCAN_BYTES if isinstance(text, bytes) else _SCAN_TEXT
    out: list[AnyStr] = []
    done = 0
    tried = -1  # every start up to here failed to match: never try one twice (linear total)
    for position in sorted(set(positions)):
        while position >= done:
            first = position  # "://" only ever starts a match (userinfo); names never hold it
            if not text.startswith(scheme, position):
                low = max(done, position - _MAX_NAME)
                before = text[low:position].rstrip(name_chars).rstrip(quote_chars)
                first = max(done, low + len(before) - 1)
            match = None
            for start in range(max(first, tried + 1), position + 1):
                match = pattern.match(text, start)
                if match is not None:
                    break
            if match is None:
                tried = position
                break
            out.append(text[done : match.start()])
            out.append(replace(match))
            done = match.end()
    out.append(text[done:])
    return text[:0].join(out)


def _compile_re2(pattern: bytes) -> Any:
    """``pattern`` for RE2, or None: without google-re2, or if RE2 declines it (memory budget
    with very many secrets), ``re`` does the work with the same results."""
    re2 = _re2()
    if re2 is None:
        return None
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1  # byte-exact on non-UTF-8 logs
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error:
        return None


def _variants(secret: str) -> set[str]:
    """Spellings a secret takes in logs: as is, JSON-escaped (``/`` as ``\\/`` too, as PHP and
    some Java encoders write it), percent-encoded."""
    escaped = json.dumps(secret)[1:-1]
    found = {secret, escaped, escaped.replace("/", "\\/")}
    found.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    found |= {quote(secret, safe=""), quote_plus(secret, safe="")}
    return found


class _Compiled:
    """Everything derived from the registered secrets, swapped as one object (thread-safe)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        ordered = sorted(secrets, key=len, reverse=True)
        full = _compile_full("|".join(map(re.escape, ordered)))
        self.text = re.compile(full)
        # surrogateescape keeps the non-UTF-8 bytes of a registered secret exactly
        self.bytes = re.compile(full.encode("utf-8", "surrogateescape"))
        self.stream = _compile_re2(full.encode("utf-8", "surrogateescape"))
        self.heads = tuple({secret[:8] for secret in ordered})
        self.heads_bytes = tuple(h.encode("utf-8", "surrogateescape") for h in self.heads)
        self.longest = max((len(s.encode("utf-8", "surrogateescape")) for s in ordered), default=0)


class Redactor:
    """Masks anything ``keys`` calls a key, exact secret values registered with it, the values of
    secret headers / query parameters / fields, and (unless ``mask_sms=False``) SMS content."""

    def __init__(self, secrets: Iterable[str] = (), *, mask_sms: bool = True) -> None:
        self.mask_sms = mask_sms
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}  # spelling -> the secret it spells
        self._compiled = _Compiled(())
        for secret in secrets:
            self.add_secret(secret)

    # --- registration ------------------------------------------------------------------------
    def add_secret(self, value: str | bytes | None) -> None:
        """Register an exact value (env key, webhook secret, …) to mask whatever its shape.

        Values that ``keys.is_key`` accepts are masked by pattern already and are not stored, so
        registering every per-request key costs nothing and the set does not grow.
        """
        if isinstance(value, bytes):
            value = value.decode("utf-8", "surrogateescape")
        if not value or len(value) < MIN_SECRET_LEN or _key_mask(value) is not None:
            return
        with self._lock:
            if value in self._secrets:
                return
            for spelling in _variants(value):
                if len(spelling) >= MIN_SECRET_LEN:
                    self._secrets.setdefault(spelling, value)
            self._compiled = _Compiled(self._secrets)

    @property
    def longest_secret(self) -> int:
        """Bytes in the longest registered secret spelling (a stream must not split one)."""
        return self._compiled.longest

    def knows(self, value: str) -> bool:
        """True when ``value`` is exactly a key or a registered secret (or one of its spellings)."""
        return (
            value in self._secrets
            or _key_mask(value) is not None
            or _WEBHOOK_SECRET_RE.fullmatch(value) is not None
        )

    # --- text and bytes ----------------------------------------------------------------------
    def text(self, text: str) -> str:
        """``text`` with every key, registered secret, secret field/header/query value masked."""
        compiled = self._compiled
        return _anchored_sub(text, TRIGGER_WORDS, compiled.heads, compiled.text, self._replace)

    def text_changes(self, text: str) -> tuple[str, dict[str, str]]:
        """``text(text)`` plus what it replaced (original span -> masked span), so a caller can
        mask the same spans in the pieces the text was built from (a log record's args)
        without scanning each piece again."""
        changes: dict[str, str] = {}

        def replace(match: re.Match[str]) -> str:
            new = self._replace(match)
            if new != match.group(0):
                changes[match.group(0)] = new
            return new

        compiled = self._compiled
        clean = _anchored_sub(text, TRIGGER_WORDS, compiled.heads, compiled.text, replace)
        return clean, changes

    def bytes(self, data: bytes) -> bytes:
        """Like ``text`` for raw bytes; bytes outside the masked spans are kept exactly (non-UTF-8
        included). With google-re2 installed, one linear pass however many triggers occur."""
        compiled = self._compiled
        if compiled.stream is not None and len(data) > _RE2_FROM:
            return compiled.stream.sub(self._replace_bytes, data)
        return _anchored_sub(
            data, _TRIGGER_BYTES, compiled.heads_bytes, compiled.bytes, self._replace_bytes
        )

    def url(self, url: object) -> str:
        """A URL (``str`` or e.g. ``httpx.URL``) with secret query values, userinfo passwords
        and keys anywhere in it masked; the rest stays as written."""
        return self.text(str(url))

    def query(self, query: str) -> str:
        """A bare query string (``a=1&api_key=…``, no ``?``) with secret parameter values masked."""
        return self.text("?" + query)[1:]

    def headers(self, headers: Any) -> Any:
        """Headers as a mapping (-> ``dict``) or as ``(name, value)`` pairs (-> ``list``, e.g.
        ASGI's bytes pairs); secret headers masked, keys masked in every other value."""
        if isinstance(headers, Mapping):
            return {name: self._header(name, value) for name, value in headers.items()}
        return [(name, self._header(name, value)) for name, value in headers]

    def _header(self, name: str | bytes, value: Any) -> Any:
        text_name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        if is_secret_name(text_name):
            return self._secret_value(value)
        return self.value(value)

    # --- structures --------------------------------------------------------------------------
    def value(self, obj: Any) -> Any:
        """A deep copy of ``obj`` (mappings -> dict, lists, tuples, sets) with strings and bytes
        redacted, secret-named fields masked at any depth and SMS fields masked (``mask_sms``).
        Other objects are returned as they are."""
        return self._value(obj, 0)

    def _value(self, obj: Any, depth: int) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, bytes | bytearray):
            return self.bytes(bytes(obj))
        if depth >= MAX_DEPTH and isinstance(obj, Mapping | list | tuple | set | frozenset):
            return REDACTED
        if isinstance(obj, Mapping):
            return self._mapping(obj, depth + 1, in_messages=False)
        if isinstance(obj, list | tuple | set | frozenset):
            items = [self._value(item, depth + 1) for item in obj]
            if isinstance(obj, list):
                return items
            if hasattr(obj, "_fields"):  # namedtuple
                return type(obj)(*items)
            return type(obj)(items)
        return obj

    def _mapping(self, obj: Mapping, depth: int, in_messages: bool) -> dict:
        sms_push = self.mask_sms and str(obj.get("type", "")) in SMS_PUSH_TYPES
        result = {}
        for name, item in obj.items():
            text_name = name.decode("latin-1") if isinstance(name, bytes) else name
            new_name = self._value(name, depth) if isinstance(name, str | bytes) else name
            if not isinstance(text_name, str):
                result[new_name] = self._value(item, depth)
            elif is_secret_name(text_name):
                result[new_name] = self._secret_value(item)
            elif self.mask_sms and (
                text_name in SMS_FIELDS
                or (in_messages and text_name == "content")
                or (sms_push and text_name == "message")
            ):
                result[new_name] = self._sms_value(text_name, item)
            elif text_name in QUERY_FIELDS and isinstance(item, str):
                result[new_name] = self.query(item)
            elif text_name == "messages" and isinstance(item, list) and depth < MAX_DEPTH:
                result[new_name] = [
                    self._mapping(m, depth + 1, in_messages=True)
                    if isinstance(m, Mapping)
                    else self._value(m, depth + 1)
                    for m in item
                ]
            else:
                result[new_name] = self._value(item, depth)
        return result

    # --- masks ---------------------------------------------------------------------------------
    def _secret_value(self, value: Any) -> Any:
        """The mask for the value of a secret field/header: a fingerprint when the value is a
        known key or secret (tells keys apart), else a plain marker (a hash of a weak password
        or cookie would be guessable)."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, bytes):
            return self._secret_text(value.decode("utf-8", "surrogateescape")).encode()
        if isinstance(value, str):
            return self._secret_text(value)
        return REDACTED

    def _secret_text(self, value: str) -> str:
        stripped = value.strip().strip("\"'")
        if self.knows(stripped):
            return masked(self._secrets.get(stripped, stripped))
        if not stripped or _ALREADY_MASKED.fullmatch(stripped):
            return value
        scheme = _AUTH_SCHEME.fullmatch(stripped)
        if scheme:
            return f"{scheme[1]}{scheme[2]}{self._secret_text(scheme[3])}"
        return REDACTED

    def _sms_value(self, name: str, value: Any) -> Any:
        if value is None or isinstance(value, bool) or value == "":
            return value
        if name == "code" and _NOT_SMS_CODE.fullmatch(str(value)):
            return value
        return SMS_REDACTED

    def _replacement(self, kind: str, name: str, value: str, sms: bool = True) -> str | None:
        """What a matched span becomes, or None to keep it (``sms=False``: not SMS content)."""
        if kind == "key":
            return _key_mask(value)
        if kind == "secret" or kind == "whsec":
            return masked(self._secrets.get(value, value))
        if kind == "pw":
            return REDACTED
        if is_secret_name(name):
            return self._secret_text(value)
        if not self.mask_sms or not sms:
            return None
        if value == "" or (name.lower() == "code" and _NOT_SMS_CODE.fullmatch(value)):
            return None
        return SMS_REDACTED

    def _name(self, name: str) -> str:
        """A field name as shown: a key or secret glued into it is masked too."""
        if (
            keys.PREFIX in name
            or WEBHOOK_SECRET_PREFIX in name
            or _holds_any(name, self._compiled.heads)
        ):
            return self.text(name)
        return name

    def _replace(self, match: re.Match[str]) -> str:
        return _substitute(match, self, str, str)

    def _replace_bytes(self, match: re.Match[bytes]) -> bytes:
        return _substitute(
            match,
            self,
            lambda b: b.decode("utf-8", "surrogateescape"),
            lambda s: s.encode("utf-8", "surrogateescape"),
        )


# Group numbers are the same for every set of secrets (the secret alternative adds no group) and
# in both engines; RE2's bytes matches only accept numbers, so numbers it is.
_GROUP = re.compile(_compile_full("")).groupindex
# The value group of each alternative closes last, so ``match.lastindex`` names it:
# value group -> (group holding its name or 0, kind of value).
_VALUE_GROUPS = {
    _GROUP[value]: (_GROUP[name] if name else 0, kind)
    for value, name, kind in (
        ("key", None, "key"),
        ("whsec", None, "whsec"),
        ("secret", None, "secret"),
        ("qdq", "qname", "field"),
        ("qesc", "qname", "field"),
        ("qsq", "qname", "field"),
        ("qnum", "qname", "number"),
        ("kval", "kname", "quotable"),
        ("hval", "hname", "quotable"),
        ("pw", None, "pw"),
    )
}
_NAME_QUOTE = _GROUP["nq"]


def _near_sms_push(match: re.Match[AnyStr], decode: Callable[[AnyStr], str]) -> bool:
    """Does a WebSocket SMS push's ``type`` stand near this (``"message"``) field, on the same
    line? A push on an earlier log line says nothing about this record's ``message``."""
    text = match.string
    newline = "\n" if isinstance(text, str) else b"\n"
    low, high = max(0, match.start() - _PUSH_WINDOW), match.end() + _PUSH_WINDOW
    low = text.rfind(newline, low, match.start()) + 1 or low
    end = text.find(newline, match.end(), high)
    high = high if end < 0 else end
    return _SMS_PUSH_MARK.search(decode(text[low:high])) is not None


def _substitute(
    match: re.Match[AnyStr],
    redactor: Redactor,
    decode: Callable[[AnyStr], str],
    encode: Callable[[str], AnyStr],
) -> AnyStr:
    """Rebuild ``match`` with its value (and a key glued into its name) masked, keeping the rest:
    names, quotes, separators."""
    whole = match.group(0)
    group = match.lastindex
    name_group, kind = _VALUE_GROUPS[group]
    name = decode(match.group(name_group)) if name_group else ""
    value = decode(match.group(group))
    sms = name.lower() != "message" or _near_sms_push(match, decode)
    if kind == "quotable" and len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
        inner = redactor._replacement("field", name, value[1:-1], sms)  # keep quotes: name='…'
        new = None if inner is None else value[0] + inner + value[-1]
    elif kind == "number":  # a masked number becomes a string, quoted like its name
        new = redactor._replacement("field", name, value, sms)
        quote_char = decode(match.group(_NAME_QUOTE))
        new = None if new is None else f"{quote_char}{new}{quote_char}"
    else:
        new = redactor._replacement("field" if kind == "quotable" else kind, name, value, sms)
    if new is None and name_group:
        # A value kept as it is (SMS kept by ``mask_sms=False``, an error ``code``, a message
        # that is no SMS) may still hold a key or a registered secret.
        inner = redactor.text(value)
        new = None if inner == value else inner
    base = match.start(0)
    start, end = match.start(group) - base, match.end(group) - base
    if name_group and redactor._name(name) != name:  # rare: a key glued into the name
        name_start, name_end = match.start(name_group) - base, match.end(name_group) - base
        value_part = whole[start:end] if new is None else encode(new)
        return (
            whole[:name_start]
            + encode(redactor._name(name))
            + whole[name_end:start]
            + value_part
            + whole[end:]
        )
    if new is None:
        return whole
    return whole[:start] + encode(new) + whole[end:]


_default: Redactor | None = None
_default_env: str | None = None  # the VIRTUALSMS_API_KEY value last registered on it
_default_lock = threading.Lock()


def default_redactor() -> Redactor:
    """The process-wide redactor; it always knows the current ``VIRTUALSMS_API_KEY``.

    Adapters call this per record or event, so a value already registered costs one lookup.
    """
    global _default, _default_env
    env = os.environ.get(ENV_KEY)
    with _default_lock:
        if _default is None:
            _default = Redactor()
        if env != _default_env:
            _default.add_secret(env)
            _default_env = env
        return _default
