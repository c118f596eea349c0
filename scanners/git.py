"""Scan what git holds: the index (``--staged``) and history (``--history``).

Both run ``git`` as a subprocess. Staged content is read from the index with one
``git cat-file --batch``, never from the working tree. History streams ``git log -p -U0`` and
looks only at added lines, so every key ever committed is reported once, with the commit and
path that added it, even when a later commit deleted it. Files that git calls binary have no
lines in that diff; their blobs are read with ``git cat-file`` and scanned like files on disk,
which finds keys in UTF-16 text (and skips real binaries).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from scanners.files import Hit, prefilter, scan_ascii, scan_bytes
from scanners.leaks import Leak
from vsms_guard.errors import GuardError

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

GITLINK = "160000"  # a submodule entry: no content here
READ_CHUNK = 1 << 22
_HUNK_RE = re.compile(rb"@@ -\d+(?:,\d+)? \+(\d+)")
_INDEX_RE = re.compile(rb"\nindex ([0-9a-f]+)\.\.([0-9a-f]+)")


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotePath=false", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise GuardError("git is not installed (needed for --staged and --history)") from None
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise GuardError(f"git {args[0]} failed: {why[-1] if why else done.returncode}")
    return done.stdout


def repo_root(cwd: Path) -> Path:
    """Top folder of the repository holding ``cwd``; a ``GuardError`` when there is none."""
    if not cwd.is_dir():
        raise GuardError(f"{cwd}: {'not a folder' if cwd.exists() else 'no such folder'}")
    try:
        return Path(_git(cwd, "rev-parse", "--show-toplevel").decode().strip())
    except GuardError:
        raise GuardError(
            f"{cwd}: not a git repository (--staged and --history need one; "
            "scan a plain folder with 'vsms-guard scan PATH')"
        ) from None


def _excluder(exclude: Sequence[str]) -> GitIgnoreSpec | None:
    if not exclude:
        return None
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(list(exclude))


def _read_blobs(cwd: Path, shas: Sequence[str]) -> list[bytes]:
    """Contents of ``shas`` in order, through one ``git cat-file --batch``."""
    if not shas:
        return []
    out = _git(cwd, "cat-file", "--batch", stdin="".join(f"{s}\n" for s in shas).encode())
    blobs, pos = [], 0
    for _ in shas:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        if len(header) != 3:
            raise GuardError(f"git cat-file: unexpected answer {out[pos:header_end][:80]!r}")
        size = int(header[2])
        blobs.append(out[header_end + 1 : header_end + 1 + size])
        pos = header_end + 1 + size + 1
    return blobs


def collect_staged(
    cwd: Path, paths: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[Leak], list[str]]:
    """Leaks in the staged (index) content of ``paths``, or of every staged change."""
    top = repo_root(cwd)
    entries: list[tuple[str, str]] = []  # (blob sha, repo-relative path)
    if paths:
        for path in paths:
            if not os.path.lexists(cwd / path) and not _in_index(cwd, path):
                raise GuardError(f"{path}: no such file or directory")
        raw = _git(cwd, "ls-files", "-s", "-z", "--full-name", "--", *paths)
        for record in filter(None, raw.split(b"\0")):
            meta, _, name = record.partition(b"\t")
            mode, sha, _stage = meta.decode().split()
            if mode != GITLINK:
                entries.append((sha, name.decode(errors="surrogateescape")))
    else:
        raw = _git(cwd, "diff", "--cached", "--raw", "-z", "--no-renames", "--diff-filter=d")
        fields = raw.split(b"\0")
        for meta, name in zip(fields[0::2], fields[1::2], strict=False):
            if not meta:
                continue
            _old_mode, new_mode, _old, new_sha, _status = meta.decode().lstrip(":").split()
            if new_mode != GITLINK:
                entries.append((new_sha, name.decode(errors="surrogateescape")))
    excluded = _excluder(exclude)
    entries = [(sha, p) for sha, p in entries if excluded is None or not excluded.match_file(p)]
    blobs = _read_blobs(top, [sha for sha, _ in entries])
    leaks = [
        Leak(path, hit)
        for (_, path), blob in zip(entries, blobs, strict=True)
        for hit in scan_bytes(blob)
    ]
    return leaks, []


def _in_index(cwd: Path, path: str) -> bool:
    return bool(_git(cwd, "ls-files", "-z", "--", path))


def _unquote(path: bytes) -> str:
    """A path as ``git diff`` prints it (C-quoted when it holds odd characters)."""
    if path.startswith(b'"') and path.endswith(b'"'):
        path = path[1:-1].decode("unicode_escape").encode("latin-1")
    return path.decode(errors="surrogateescape")


def _commit_of(block: bytes, pos: int) -> str:
    """The commit whose ``git log`` output holds ``pos`` (each starts with NUL + its hash)."""
    marker = block.rfind(b"\n\0", 0, pos) + 1  # a block starts with a marker
    return block[marker + 1 : block.index(b"\n", marker)].decode()


def _leaks_in_block(block: bytes, excluded: GitIgnoreSpec | None) -> list[Leak]:
    """Leaks on the added lines of a run of whole commits from ``git log -p -U0``."""
    leaks = []
    for hit in scan_ascii(block):
        line_start = block.rfind(b"\n", 0, hit.offset) + 1
        if block[line_start : line_start + 1] != b"+":
            continue  # a removed line or git's own text
        commit_at = block.rfind(b"\n\0", 0, line_start) + 1
        section = block.rfind(b"\ndiff --git ", commit_at, line_start)
        hunk = block.rfind(b"\n@@ ", max(section, 0), line_start)
        if section == -1 or hunk == -1:
            continue  # the ``+++ b/…`` header of a file, not an added line
        header = block.find(b"\n+++ ", section, hunk)  # a file's header precedes its hunks
        start = _HUNK_RE.match(block, hunk + 1)
        if header == -1 or start is None:
            continue
        path = _unquote(block[header + 5 : block.index(b"\n", header + 1)])
        path = path[2:] if path.startswith("b/") else path
        if excluded is not None and excluded.match_file(path):
            continue
        added_before = block.count(b"\n+", block.index(b"\n", hunk + 1), line_start - 1)
        line = int(start.group(1)) + added_before
        where = replace(hit, line=line, column=hit.column - 1)
        leaks.append(Leak(path, where, _commit_of(block, line_start)))
    return leaks


def _binary_changes(block: bytes) -> list[tuple[str, str, str, str]]:
    """(commit, path, old blob, new blob) of each change to a file that ``git log -p`` calls
    binary and shows no lines of (UTF-16 text is one): its blobs are scanned on their own."""
    found = []
    pos = block.find(b"\nBinary files ")
    while pos != -1:
        end = block.find(b"\n", pos + 1)
        end = len(block) if end == -1 else end
        section = block.rfind(b"\ndiff --git ", 0, pos)
        index = _INDEX_RE.search(block, section, pos) if section != -1 else None
        if index is not None and index.group(2).strip(b"0"):  # all zeros: a deleted file
            rename = block.rfind(b"\nrename to ", section, pos)
            names = block[pos + 14 : end].removesuffix(b" differ")
            if rename != -1:
                path = _unquote(block[rename + 11 : block.index(b"\n", rename + 1)])
            else:  # "/dev/null and b/PATH", or "a/PATH and b/PATH" (halves of equal length)
                new = (
                    names[14:]
                    if names.startswith(b"/dev/null and ")
                    else names[len(names) // 2 + 3 :]
                )
                path = _unquote(new).removeprefix("b/")
            old, new_blob = index.group(1).decode(), index.group(2).decode()
            found.append((_commit_of(block, pos), path, old, new_blob))
        pos = block.find(b"\nBinary files ", end)
    return found


def _leaks_in_blobs(top: Path, changes: Sequence[tuple[str, str, str, str]]) -> list[Leak]:
    """Keys that a binary change added: in its new blob but not in its old one. UTF-16 text
    is where they are found; other binary content holds none (``scan_bytes`` skips it)."""
    if not changes:
        return []
    shas = list(dict.fromkeys(sha for c in changes for sha in c[2:] if sha.strip("0")))
    hits: dict[str, list[Hit]] = {}
    with tempfile.TemporaryFile() as wanted:  # a file, not a pipe: no deadlock on big lists
        wanted.write("".join(f"{sha}\n" for sha in shas).encode())
        wanted.seek(0)
        with subprocess.Popen(
            ["git", "cat-file", "--batch"], cwd=top, stdin=wanted, stdout=subprocess.PIPE
        ) as proc:
            assert proc.stdout is not None
            for sha in shas:  # one blob in memory at a time
                header = proc.stdout.readline().split()
                if header[1:2] == [b"missing"]:
                    continue  # the automatic merge of a --remerge-diff is not stored
                if len(header) != 3:
                    proc.kill()
                    raise GuardError(f"git cat-file: unexpected answer for blob {sha}")
                hits[sha] = scan_bytes(proc.stdout.read(int(header[2]) + 1)[:-1])
    leaks = []
    for commit, path, old, new in changes:
        if new not in hits:
            raise GuardError(f"git cat-file: blob {new} of {path} is missing")
        before = {hit.key for hit in hits.get(old, ())}
        leaks.extend(Leak(path, hit, commit) for hit in hits[new] if hit.key not in before)
    return leaks


def _commit_blocks(stream: IO[bytes]) -> Iterator[bytes]:
    """``git log`` output as runs of whole commits (each block ends where a commit ends)."""
    parts: list[bytes] = []
    last = b""  # the previous chunk's last byte: a boundary may straddle two chunks
    while chunk := stream.read(READ_CHUNK):
        found = (last + chunk).rfind(b"\n\0")
        cut = found + 1 - len(last)  # where the next commit starts in ``chunk``
        last = chunk[-1:]
        if found == -1 or (cut == 0 and not parts):
            parts.append(chunk)
            continue
        parts.append(chunk[:cut])
        yield b"".join(parts)
        parts = [chunk[cut:]]
    if parts:
        yield b"".join(parts)


def _merge_diff(top: Path) -> list[str]:
    """``--remerge-diff`` where git has it (2.36+): a merge commit then shows what it added
    beyond the automatic merge (conflict resolutions, "evil" merges). Older git shows no diff
    for merges at all."""
    found = re.search(rb"(\d+)\.(\d+)", _git(top, "version"))
    version = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    return ["--remerge-diff"] if version >= (2, 36) else []


def collect_history(
    cwd: Path, rev_range: str | None = None, exclude: Sequence[str] = ()
) -> tuple[list[Leak], list[str]]:
    """Leaks added by any commit in ``rev_range`` (default: every ref): on added lines of text
    files, and in the blobs of files git calls binary (UTF-16 text)."""
    top = repo_root(cwd)
    revs = [rev_range] if rev_range else ["--all"]
    if rev_range and rev_range.startswith("-"):
        raise GuardError(f"{rev_range}: not a revision range")
    cmd = [
        "git", "-c", "core.quotePath=false", "log", "-p", "-U0", "--full-index", "--no-color",
        "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/",
        *_merge_diff(top), "--format=%x00%H", *revs, "--",
    ]  # fmt: skip
    excluded = _excluder(exclude)
    worth = prefilter()
    leaks: list[Leak] = []
    binary: list[tuple[str, str, str, str]] = []
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty git cannot block us
    with errors, subprocess.Popen(cmd, cwd=top, stdout=subprocess.PIPE, stderr=errors) as proc:
        assert proc.stdout is not None
        for block in _commit_blocks(proc.stdout):
            if worth(block, len(block)):
                leaks.extend(_leaks_in_block(block, excluded))
            binary.extend(_binary_changes(block))
        proc.wait()
        errors.seek(0)
        why = errors.read().decode(errors="replace").strip().splitlines()
    if proc.returncode != 0:
        raise GuardError(f"git log failed: {why[-1] if why else proc.returncode}")
    binary = [c for c in binary if excluded is None or not excluded.match_file(c[1])]
    return leaks + _leaks_in_blobs(top, binary), []
