"""Streaming redaction of raw log bytes in constant memory (``vsms-guard redact``).

Input is read in chunks and cut at the last newline, so a secret is never split between two
chunks and memory stays bounded whatever the file size. A line longer than ``MAX_LINE`` is cut
after a separator byte, or else ``OVERLAP`` bytes before its end, moved back to the start of a
key that would straddle the cut: the held-back tail is longer than any key or registered secret
(up to ``OVERLAP`` characters) could be. Bytes are never decoded as a whole: a
non-UTF-8 line comes out byte for byte, apart from what is masked.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from vsms_guard import keys
from vsms_guard.redact.core import WEBHOOK_SECRET_PREFIX, Redactor

CHUNK_SIZE = 1 << 20
MAX_LINE = 1 << 20  # a longer line is cut at a separator byte (see _cut)
OVERLAP = 4096  # bytes held back when an overlong line is cut: longer than any key we mask
# Bytes that never occur inside a key, so cutting after one cannot split a key.
_SEPARATORS = (b" ", b"\t", b"\r", b",", b";", b"&", b'"', b"'", b"<", b">")
_TOKEN_BYTES = bytes(b for b in range(128) if re.fullmatch(rf"[{keys.TOKEN_CHARS}]", chr(b)))
_PREFIXES = (keys.PREFIX_BYTES, WEBHOOK_SECRET_PREFIX.encode())  # what starts a shaped secret


def _cut(data: bytes, keep: int) -> int:
    """Where to cut a line longer than ``MAX_LINE``, so that no key or secret is split: after its
    last separator byte when at most ``keep`` bytes follow it; else ``keep`` bytes before the end,
    moved back to the ``vsms_``/``whsec_`` of a candidate running across that point. 0: hold it
    all."""
    last = max(data.rfind(sep) for sep in _SEPARATORS)
    if last >= 0 and len(data) - last - 1 <= keep:
        return last + 1
    cut = len(data) - keep
    if cut <= 0:
        return 0
    run_start = len(data[:cut].rstrip(_TOKEN_BYTES))  # the key-charset run around the cut
    starts = [data.find(prefix, run_start, cut + len(prefix) - 1) for prefix in _PREFIXES]
    start = min((found for found in starts if found >= 0), default=-1)
    # A candidate starting the data is megabytes long: no key; cut it rather than grow.
    return start if start > 0 else cut


def redact_stream(
    source: BinaryIO, sink: BinaryIO | None, redactor: Redactor, chunk_size: int = CHUNK_SIZE
) -> bool:
    """Copy ``source`` to ``sink`` (None: only check) with secrets masked; True if any was."""
    read = getattr(source, "read1", None) or source.read  # read1: don't wait for a full chunk
    pending = b""
    changed = False
    keep = max(OVERLAP, redactor.longest_secret)
    while True:
        chunk = read(chunk_size)
        if not chunk:
            break
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < MAX_LINE:
                pending = data
                continue
            cut = _cut(data, keep)
            if cut == 0:
                pending = data
                continue
        changed |= _emit(data[:cut], sink, redactor)
        pending = data[cut:]
    if pending:
        changed |= _emit(pending, sink, redactor)
    return changed


def _emit(data: bytes, sink: BinaryIO | None, redactor: Redactor) -> bool:
    clean = redactor.bytes(data)
    if sink is not None:
        sink.write(clean)
        sink.flush()
    return clean is not data and clean != data
