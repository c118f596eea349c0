"""From bytes to key hits: plain text, UTF-16 text and base64 blobs; binary content is skipped.

A prefilter looks for the needles a key cannot hide without (``vsms_``, its base64 forms at the
three byte alignments, its UTF-16 forms) before any regex runs, so a file without a key costs
one pass (hyperscan) or a few memchr-speed ``find`` calls. The verdict is always ``keys.is_key``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vsms_guard import keys
from vsms_guard.errors import GuardError

SNIFF_BYTES = 8000  # git's heuristic: a NUL byte among the first 8000 bytes means binary
PRAGMA = b"pragma: allowlist secret"  # detect-secrets' inline allowlist, same spelling
PRAGMA_NEXTLINE = b"pragma: allowlist nextline secret"
UTF16_NEEDLES = {
    "utf-16-le": keys.PREFIX.encode("utf-16-le"),
    "utf-16-be": keys.PREFIX.encode("utf-16-be"),
}
MAX_BASE64_DEPTH = 1  # decoded blobs are searched for plain keys, not for more base64
_B64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{8,}={0,2}")
READ_BUFFER = 1 << 20
BATCH_ROOM = 1 << 18  # scan_many: prefilter the files read so far once less room than this is left
MAX_BATCH_MATCHES = 64  # more needles than this in a batch: scan each of its files on its own


@dataclass(frozen=True)
class Hit:
    """A key found in a buffer. Holds the whole key, so it stays inside the scanners: front
    ends turn it into a masked ``Finding`` before anything is shown or returned."""

    key: str
    offset: int  # byte offset of the key (or of the blob that encodes it) in the buffer
    line: int
    column: int
    encoding: str = "text"  # text, utf-16, base64


def line_col(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """1-based line and byte column of ``pos``."""
    line_start = data.rfind(b"\n", 0, pos) + 1
    return data.count(b"\n", 0, pos) + 1, pos - line_start + 1


def allowlisted(data: bytes | bytearray, pos: int, end: int | None = None) -> bool:
    """``pragma: allowlist secret`` on the line of ``pos`` (or ``… nextline …`` just above)."""
    end = len(data) if end is None else end
    start = data.rfind(b"\n", 0, pos) + 1
    stop = data.find(b"\n", pos, end)
    if data.find(PRAGMA, start, end if stop == -1 else stop) != -1:
        return True
    if start == 0:
        return False
    previous = data.rfind(b"\n", 0, start - 1) + 1
    return data.find(PRAGMA_NEXTLINE, previous, start) != -1


# Everything a key can hide behind; a buffer holding none of these holds no key.
NEEDLES = (keys.PREFIX_BYTES, *keys.BASE64_NEEDLES, *UTF16_NEEDLES.values())
_BASE64_IDS = frozenset(range(1, 1 + len(keys.BASE64_NEEDLES)))  # their places in NEEDLES
PREFILTER_ENV = "VSMS_GUARD_PREFILTER"  # "python" or "hyperscan"; default: hyperscan if installed


def find_any(data: bytes | bytearray, n: int) -> bool:
    """Pure-Python prefilter: one memchr-speed ``find`` per needle (~0.6 GB/s for all)."""
    return any(data.find(needle, 0, n) != -1 for needle in NEEDLES)


class HyperscanPrefilter:
    """The same question in one SIMD pass over the buffer (~5 GB/s), when the optional
    ``hyperscan`` package is installed (``pip install 'vsms-guard[fast]'``)."""

    def __init__(self) -> None:
        import hyperscan

        self._hs = hyperscan
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=["".join(f"\\x{b:02x}" for b in n).encode() for n in NEEDLES],
            ids=list(range(len(NEEDLES))),
            flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(NEEDLES),
        )
        self._scratch = hyperscan.Scratch(self._db)
        self._every = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)  # reports each match
        self._every.compile(
            expressions=["".join(f"\\x{b:02x}" for b in n).encode() for n in NEEDLES],
            ids=list(range(len(NEEDLES))),
        )
        self._every_scratch = hyperscan.Scratch(self._every)

    def ends(self, data: bytes | bytearray, n: int, limit: int) -> list[int] | None:
        """End offsets of every needle in ``data[:n]``, or None when there are over ``limit``."""
        found: list[int] = []

        def seen(_id: int, _start: int, end: int, _flags: int, _context: object) -> bool:
            found.append(end)
            return len(found) > limit

        try:
            self._every.scan(
                memoryview(data)[:n], match_event_handler=seen, scratch=self._every_scratch
            )
        except self._hs.ScanTerminated:
            return None
        return found

    def needles_in(self, data: bytes | bytearray, n: int) -> set[int]:
        """Which of ``NEEDLES`` (by index) are in ``data[:n]``."""
        found: set[int] = set()

        def seen(needle: int, *_: object) -> bool:
            found.add(needle)
            return False

        self._db.scan(memoryview(data)[:n], match_event_handler=seen, scratch=self._scratch)
        return found

    def __call__(self, data: bytes | bytearray, n: int) -> bool:
        try:
            self._db.scan(memoryview(data)[:n], match_event_handler=_stop, scratch=self._scratch)
        except self._hs.ScanTerminated:
            return True
        return False


def _stop(*_: object) -> bool:
    return True  # first match is enough: stop the scan


Prefilter = Callable[[bytes | bytearray, int], bool]
_prefilter: Prefilter | None = None


def prefilter() -> Prefilter:
    """The prefilter this process uses, chosen once: hyperscan when installed, else Python."""
    global _prefilter
    if _prefilter is None:
        choice = os.environ.get(PREFILTER_ENV, "")
        if choice not in ("", "python", "hyperscan"):
            raise GuardError(f"{PREFILTER_ENV} must be 'python' or 'hyperscan', not {choice!r}")
        _prefilter = find_any
        if choice != "python":
            try:
                _prefilter = HyperscanPrefilter()
            except ImportError:
                if choice == "hyperscan":
                    raise GuardError(f"{PREFILTER_ENV}=hyperscan but it is not installed") from None
    return _prefilter


def scan_bytes(data: bytes | bytearray, n: int | None = None) -> list[Hit]:
    """Hits in one file's contents ``data[:n]``: text, UTF-16 text; other binary gives none."""
    n = len(data) if n is None else n
    return _scan_file(data, n) if prefilter()(data, n) else []


def _scan_file(data: bytes | bytearray, n: int, *, base64_needles: bool = True) -> list[Hit]:
    """``scan_bytes`` once the prefilter has said yes (``base64_needles=False``: and that no
    base64 needle is in ``data[:n]``)."""
    if data.find(b"\0", 0, min(n, SNIFF_BYTES)) != -1:
        return _scan_utf16(data, n)
    return scan_ascii(data, n, base64_needles=base64_needles)


def scan_ascii(
    data: bytes | bytearray, n: int | None = None, *, depth: int = 0, base64_needles: bool = True
) -> list[Hit]:
    """Hits in ASCII-compatible text (UTF-8, Latin-1, diffs, …): plain keys and base64 blobs.
    ``base64_needles=False`` says that none of ``keys.BASE64_NEEDLES`` is in ``data[:n]``."""
    n = len(data) if n is None else n
    hits: list[Hit] = []
    if data.find(keys.PREFIX_BYTES, 0, n) != -1:
        for match in keys.CANDIDATE_RE_BYTES.finditer(data, 0, n):
            key = bytes(match.group()).decode("ascii")
            if keys.is_key(key) and not allowlisted(data, match.start(), n):
                hits.append(Hit(key, match.start(), *line_col(data, match.start())))
    if (
        base64_needles
        and depth < MAX_BASE64_DEPTH
        and any(data.find(x, 0, n) != -1 for x in keys.BASE64_NEEDLES)
    ):
        hits.extend(_scan_base64(data, n, depth))
    return hits


def _scan_base64(data: bytes | bytearray, n: int, depth: int) -> list[Hit]:
    """Decode each base64 run that holds a needle and look for keys inside it."""
    hits: list[Hit] = []
    done: set[int] = set()  # start offsets of runs already decoded
    for needle in keys.BASE64_NEEDLES:
        pos = data.find(needle, 0, n)
        while pos != -1:
            run = _run_at(data, pos, n)
            resume = pos + 1
            if run is not None:
                resume = max(resume, run.end())
                if run.start() not in done and not allowlisted(data, run.start(), n):
                    done.add(run.start())
                    where = line_col(data, run.start())
                    found = {
                        inner.key
                        for decoded in _decodings(bytes(run.group()))
                        for inner in scan_ascii(decoded, depth=depth + 1)
                    }
                    hits.extend(Hit(key, run.start(), *where, "base64") for key in sorted(found))
            pos = data.find(needle, resume, n)
    return hits


def _run_at(data: bytes | bytearray, pos: int, n: int) -> re.Match[bytes] | None:
    """The base64 run (within its line) that covers ``pos``."""
    line_start = data.rfind(b"\n", 0, pos) + 1
    line_end = data.find(b"\n", pos, n)
    for run in _B64_RUN.finditer(data, line_start, n if line_end == -1 else line_end):
        if run.end() > pos:
            return run if run.start() <= pos else None
    return None


def _decodings(blob: bytes) -> list[bytes]:
    """``blob`` decoded at each of the four alignments it may start at (standard or URL-safe)."""
    blob = blob.rstrip(b"=")
    altchars = b"-_" if b"-" in blob or b"_" in blob else None
    out = []
    for shift in range(4):
        part = blob[shift:]
        rest = len(part) % 4
        part = part[:-1] if rest == 1 else part + b"=" * ((4 - rest) % 4)
        try:
            out.append(base64.b64decode(part, altchars=altchars, validate=True))
        except (binascii.Error, ValueError):
            continue
    return out


def _scan_utf16(data: bytes | bytearray, n: int) -> list[Hit]:
    """UTF-16 text (Windows editors, PowerShell output) holding the prefix; else binary: none."""
    for codec, needle in UTF16_NEEDLES.items():
        pos = data.find(needle, 0, n)
        if pos == -1:
            continue
        parity = pos % 2
        stop = n - (n - parity) % 2
        text = bytes(data[parity:stop]).decode(codec, errors="replace").lstrip("\ufeff")
        utf8 = text.encode("utf-8", errors="replace")
        return [
            Hit(h.key, h.offset, h.line, h.column, "utf-16" if h.encoding == "text" else h.encoding)
            for h in scan_ascii(utf8)
        ]
    return []


class FileReader:
    """Reads whole files with one open, one read and one close into a reused buffer, so a
    20,000-file tree costs three syscalls per file and no per-file allocation."""

    def __init__(self, size: int = READ_BUFFER) -> None:
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._worth = prefilter()

    def scan(self, path: str | os.PathLike[str], dir_fd: int | None = None) -> list[Hit]:
        """Hits in the file at ``path`` (relative to the folder ``dir_fd`` when given, which
        spares the kernel a lookup of every folder on the way); raises ``OSError`` when it
        cannot be read."""
        buf = self._buf
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            n = os.readv(fd, [buf])
            if n < len(buf):  # the common case: the whole file is in the buffer
                return _scan_file(buf, n) if self._worth(buf, n) else []
            chunks = [bytes(buf)]
            while chunk := os.read(fd, 1 << 24):
                chunks.append(chunk)
        finally:
            os.close(fd)
        return scan_bytes(b"".join(chunks))

    def scan_many(
        self, paths: Sequence[str], dir_fd: int | None = None
    ) -> list[tuple[int, list[Hit] | OSError]]:
        """``scan`` for each of ``paths``: (index, hits) for each file with hits and (index,
        error) for each that cannot be read, in order. With hyperscan, small files are read
        one after another into the buffer and prefiltered in one pass; only a file holding
        a needle's end is then scanned on its own (a needle across two files is no key)."""
        hs = self._worth if isinstance(self._worth, HyperscanPrefilter) else None
        out: list[tuple[int, list[Hit] | OSError]] = []
        if hs is None:
            for i, path in enumerate(paths):
                self._scan_alone(i, path, dir_fd, out)
            return out
        view, size = self._view, len(self._buf)
        starts: list[int] = []  # where each file of the pending batch starts in the buffer
        index: list[int] = []  # and its place in ``paths``
        at = 0
        for i, path in enumerate(paths):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    n = os.readv(fd, [view[at:]])
                finally:
                    os.close(fd)
            except OSError as exc:
                out.append((i, exc))
                continue
            if at + n == size:  # it may be longer than the room left: read it again, alone
                self._check(hs, starts, index, at, out)
                starts, index, at = [], [], 0
                self._scan_alone(i, path, dir_fd, out)
                continue
            starts.append(at)  # all of it is in the buffer
            index.append(i)
            at += n
            if size - at < BATCH_ROOM:
                self._check(hs, starts, index, at, out)
                starts, index, at = [], [], 0
        self._check(hs, starts, index, at, out)
        out.sort(key=lambda item: item[0])
        return out

    def _scan_alone(
        self,
        i: int,
        path: str | os.PathLike[str],
        dir_fd: int | None,
        out: list[tuple[int, list[Hit] | OSError]],
    ) -> None:
        """Scan one file by itself, recording its hits or the error that stopped it."""
        try:
            hits = self.scan(path, dir_fd)
        except OSError as exc:
            out.append((i, exc))
            return
        if hits:
            out.append((i, hits))

    def _check(
        self,
        hs: HyperscanPrefilter,
        starts: list[int],
        index: list[int],
        stop: int,
        out: list[tuple[int, list[Hit] | OSError]],
    ) -> None:
        """Scan the files of a batch (``buf[:stop]``) that hold the end of a needle."""
        if not starts:
            return
        found = hs.ends(self._buf, stop, MAX_BATCH_MATCHES)
        suspects = (
            range(len(starts))
            if found is None
            else sorted({bisect.bisect_right(starts, end - 1) - 1 for end in found})
        )
        for k in suspects:
            data = bytes(self._view[starts[k] : starts[k + 1] if k + 1 < len(starts) else stop])
            present = hs.needles_in(data, len(data))
            if present:
                base64_needles = not present.isdisjoint(_BASE64_IDS)
                hits = _scan_file(data, len(data), base64_needles=base64_needles)
                if hits:
                    out.append((index[k], hits))
