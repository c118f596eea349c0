"""Streaming redaction of raw log bytes in constant memory (``vsms-guard redact``).

Input is read in chunks and cut at the last newline, so a secret is never split between two
chunks and memory stays bounded whatever the file size. Bytes are never decoded as a whole: a
non-UTF-8 line comes out byte for byte, apart from what is masked.
"""

from __future__ import annotations

from typing import BinaryIO

from vsms_guard.redact.core import Redactor

CHUNK_SIZE = 1 << 20
MAX_LINE = 1 << 20  # a longer line is cut at a separator byte (see _cut)
# Bytes that never occur inside a key, so cutting after one cannot split a key.
_SEPARATORS = (b" ", b"\t", b"\r", b",", b";", b"&", b'"', b"'", b"<", b">")


def _cut(data: bytes) -> int:
    """Where to cut a line longer than ``MAX_LINE``: after its last separator byte."""
    last = max(data.rfind(sep) for sep in _SEPARATORS)
    return last + 1 if last >= 0 else len(data)


def redact_stream(
    source: BinaryIO, sink: BinaryIO | None, redactor: Redactor, chunk_size: int = CHUNK_SIZE
) -> bool:
    """Copy ``source`` to ``sink`` (None: only check) with secrets masked; True if any was."""
    read = getattr(source, "read1", None) or source.read  # read1: don't wait for a full chunk
    pending = b""
    changed = False
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
            cut = _cut(data)
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
