"""Scan what git holds: the index (``--staged``) and history (``--history``).

Both run ``git`` as a subprocess. Staged content is read from the index with one
``git cat-file --batch``, never from the working tree. History streams ``git log -p -U0`` and
looks only at added lines, so every key ever committed is reported once, with the commit and
path that added it, even when a later commit deleted it.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from scanners.files import prefilter, scan_ascii, scan_bytes
from scanners.leaks import Leak
from vsms_guard.errors import GuardError

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

GITLINK = "160000"  # a submodule entry: no content here
READ_CHUNK = 1 << 22
_HUNK_RE = re.compile(rb"@@ -\d+(?:,\d+)? \+(\d+)")


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
        raise GuardError(f"{cwd}: no such folder")
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


def _leaks_in_block(block: bytes, excluded: GitIgnoreSpec | None) -> list[Leak]:
    """Leaks on the added lines of a run of whole commits from ``git log -p -U0``."""
    leaks = []
    for hit in scan_ascii(block):
        line_start = block.rfind(b"\n", 0, hit.offset) + 1
        if block[line_start : line_start + 1] != b"+" or block.startswith(b"+++ ", line_start):
            continue  # removed line, file header or commit message
        commit_at = block.rfind(b"\n\0", 0, line_start) + 1  # blocks start with a marker
        commit = block[commit_at + 1 : block.index(b"\n", commit_at)].decode()
        header = block.rfind(b"\n+++ ", commit_at, line_start)
        hunk = block.rfind(b"\n@@ ", header, line_start)
        if header == -1 or hunk == -1:
            continue
        name = block[header + 5 : block.index(b"\n", header + 1)]
        path = _unquote(name)
        path = path[2:] if path.startswith("b/") else path
        if excluded is not None and excluded.match_file(path):
            continue
        start = _HUNK_RE.match(block, hunk + 1)
        if start is None:
            continue
        added_before = block.count(b"\n+", block.index(b"\n", hunk + 1), line_start - 1)
        line = int(start.group(1)) + added_before
        leaks.append(Leak(path, replace(hit, line=line, column=hit.column - 1), commit))
    return leaks


def collect_history(
    cwd: Path, rev_range: str | None = None, exclude: Sequence[str] = ()
) -> tuple[list[Leak], list[str]]:
    """Leaks added by any commit in ``rev_range`` (default: every ref)."""
    top = repo_root(cwd)
    revs = [rev_range] if rev_range else ["--all"]
    if rev_range and rev_range.startswith("-"):
        raise GuardError(f"{rev_range}: not a revision range")
    cmd = [
        "git", "-c", "core.quotePath=false", "log", "-p", "-U0", "--no-color", "--no-ext-diff",
        "--no-textconv", "--format=%x00%H", *revs, "--",
    ]  # fmt: skip
    excluded = _excluder(exclude)
    worth = prefilter()
    leaks: list[Leak] = []
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty git cannot block us
    with errors, subprocess.Popen(cmd, cwd=top, stdout=subprocess.PIPE, stderr=errors) as proc:
        assert proc.stdout is not None
        pending = b""
        while chunk := proc.stdout.read(READ_CHUNK):
            pending += chunk
            cut = pending.rfind(b"\n\0")
            if cut <= 0:
                continue
            block, pending = pending[: cut + 1], pending[cut + 1 :]
            if worth(block, len(block)):
                leaks.extend(_leaks_in_block(block, excluded))
        if pending and worth(pending, len(pending)):
            leaks.extend(_leaks_in_block(pending, excluded))
        proc.wait()
        errors.seek(0)
        why = errors.read().decode(errors="replace").strip().splitlines()
    if proc.returncode != 0:
        raise GuardError(f"git log failed: {why[-1] if why else proc.returncode}")
    return leaks, []
