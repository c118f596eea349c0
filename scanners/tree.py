"""Scan files and folders on disk (git repository or not), respecting ``.gitignore``.

A folder that is not a git repository is scanned like any other (detect-secrets silently scans
nothing there). Symlinks inside a tree are not followed, like git and ripgrep; a path given on
the command line that does not exist or is a broken symlink is an error, never a silent pass.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from scanners.files import FileReader, Hit
from scanners.leaks import Leak, build_report
from scanners.settings import scan_settings
from vsms_guard.config import Config
from vsms_guard.errors import GuardError
from vsms_guard.findings import Report

if TYPE_CHECKING:
    from pathlib import Path

    from pathspec import GitIgnoreSpec

PARALLEL_MIN_FILES = 512  # below this, forking workers costs more than it saves
MIN_FILES_PER_JOB = 64  # caps ``--jobs``: a huge value must not fork thousands of processes
STREAM_MIN_FILES = 1024  # from this many files on, workers scan while the tree is listed
MAX_STREAM_JOBS = 64  # caps ``--jobs`` for such trees
RUN_FILES = 256  # files of one folder read and prefiltered in one go, at most
PIPE_BYTES = 4096  # a worker's queue: small, so that little is left to wait for at the end
MESSAGE_FILES = 32  # file names sent to a worker at a time
_FS_ENC, _FS_ERR = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()

# Files of one folder: (folder path ending in a separator, its path as shown, file names);
# a file is opened as folder + name and shown as shown + name.
_Group = tuple[str, str, list[str]]


class _Ignore:
    """One ignore file: a path relative to the walk top applies as ``add + path[len(strip):]``
    when it starts with ``strip`` (the folder holding a nested ``.gitignore``). A plain class:
    a dataclass costs half a millisecond of start-up."""

    __slots__ = ("add", "spec", "strip")

    def __init__(self, strip: str, add: str, spec: GitIgnoreSpec) -> None:
        self.strip = strip
        self.add = add
        self.spec = spec


def _load_ignore(path: str, strip: str = "", add: str = "") -> _Ignore | None:
    import pathspec

    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    return _Ignore(strip, add, pathspec.GitIgnoreSpec.from_lines(lines)) if lines else None


def _ignored(ignores: Sequence[_Ignore], rel: str) -> bool:
    """Git's rule: the deepest ignore file with a matching pattern decides."""
    for ig in reversed(ignores):
        if rel.startswith(ig.strip):
            include = ig.spec.check_file(ig.add + rel[len(ig.strip) :]).include
            if include is not None:
                return include
    return False


class _Tracked:
    """Files git tracks under a folder, listed on first use: a tracked file is committed
    whatever ``.gitignore`` says (``git add -f``), so ignore rules never hide it."""

    def __init__(self, top: str) -> None:
        self._top = top
        self._files: set[str] | None = None
        self._dirs: set[str] = set()

    def __contains__(self, rel: str) -> bool:
        if self._files is None:
            import subprocess  # here, not at the top: most scans never need it

            try:
                out = subprocess.run(
                    ["git", "ls-files", "-z"], cwd=self._top, capture_output=True, check=True
                ).stdout
            except (OSError, subprocess.CalledProcessError):
                out = b""
            self._files = set(filter(None, out.decode(errors="surrogateescape").split("\0")))
            for name in self._files:
                parts = name.split("/")
                self._dirs.update("/".join(parts[: i + 1]) + "/" for i in range(len(parts) - 1))
        return rel in (self._dirs if rel.endswith("/") else self._files)


def _repository_rules(top: str) -> tuple[list[_Ignore], _Tracked | None]:
    """Ignore rules from above ``top`` (``.git/info/exclude``, parent ``.gitignore`` files)
    and its tracked files, when ``top`` is inside a git repository."""
    chain = []
    here = top
    while True:
        chain.append(here)
        if os.path.exists(os.path.join(here, ".git")):
            break
        parent = os.path.dirname(here)
        if parent == here:
            return [], None  # not in a git repository: only the tree's own .gitignore files
        here = parent
    git_top = chain[-1]
    add_of = {d: os.path.relpath(top, d).replace(os.sep, "/") + "/" for d in chain[1:]}
    found = [
        _load_ignore(os.path.join(git_top, ".git", "info", "exclude"), add=add_of.get(git_top, ""))
    ]
    found += [
        _load_ignore(os.path.join(d, ".gitignore"), add=add_of[d]) for d in reversed(chain[1:])
    ]
    ignores = [ig for ig in found if ig is not None]
    if len(chain) > 1 and _ignored(ignores, ""):
        ignores = []  # the folder itself is ignored but was asked for by name: scan it (like rg)
    return ignores, _Tracked(top)


def _walk(
    top: str,
    shown: str,
    rules: tuple[list[_Ignore], _Tracked | None],
    excluded: GitIgnoreSpec | None,
    prefix: str | None,
    problems: list[str],
) -> Iterator[_Group]:
    """Regular files under ``top``, a folder at a time, skipping ignored ones."""
    base = "" if shown == "." else shown.rstrip("/") + "/"
    ignores, tracked = rules
    stack = [(top, "", ignores)]
    while stack:
        folder, rel, specs = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            problems.append(f"{(base + rel) or '.'}: cannot list: {exc.strerror}")
            continue
        if any(e.name == ".gitignore" for e in entries):
            own = _load_ignore(os.path.join(folder, ".gitignore"), strip=rel)
            if own is not None:
                specs = [*specs, own]
        matching = bool(specs) or (excluded is not None and prefix is not None)
        names = []
        for entry in entries:
            name = entry.name
            if name == ".git":
                continue
            if entry.is_file(follow_symlinks=False):
                if matching and _skipped(rel + name, specs, tracked, excluded, prefix):
                    continue
                names.append(name)
            elif entry.is_dir(follow_symlinks=False):
                path = rel + name + "/"
                if matching and _skipped(path, specs, tracked, excluded, prefix):
                    continue
                stack.append((entry.path, path, specs))
            # else: symlinks, sockets, fifos, devices: git stores no content for them
        if names:  # scandir's entry.path is the folder, one separator, the name
            yield (folder if folder.endswith(os.sep) else folder + os.sep), base + rel, names


def _skipped(
    path: str,
    specs: Sequence[_Ignore],
    tracked: _Tracked | None,
    excluded: GitIgnoreSpec | None,
    prefix: str | None,
) -> bool:
    """Whether ignore rules (unless git tracks it) or ``--exclude`` drop ``path``."""
    if specs and _ignored(specs, path) and (tracked is None or path not in tracked):
        return True
    return excluded is not None and prefix is not None and excluded.match_file(prefix + path)


def iter_files(
    paths: Sequence[str | os.PathLike[str]],
    root: str | os.PathLike[str],
    exclude: Sequence[str],
    problems: list[str],
) -> Iterator[tuple[str, str]]:
    """Files to scan under ``paths`` (lazily; listing problems go to ``problems``).
    ``exclude`` patterns are relative to ``root``. Bad paths raise ``GuardError`` at once."""
    return (
        (folder + name, shown + name)
        for folder, shown, names in _iter_groups(*_plan(paths, root, exclude), problems)
        for name in names
    )


def _plan(
    paths: Sequence[str | os.PathLike[str]],
    root: str | os.PathLike[str],
    exclude: Sequence[str],
) -> tuple[list[tuple[str, str, str | None]], GitIgnoreSpec | None]:
    """What to walk: (argument, absolute path, path relative to ``root`` or None when
    outside it) per path, and the ``exclude`` patterns. Bad paths raise ``GuardError``."""
    excluded = None
    if exclude:
        import pathspec

        excluded = pathspec.GitIgnoreSpec.from_lines(list(exclude))
    root_abs = os.path.abspath(root)
    plan = []
    for arg in map(os.fspath, paths):
        if not os.path.lexists(arg):
            raise GuardError(f"{arg}: no such file or directory")
        if not os.path.exists(arg):
            raise GuardError(f"{arg}: broken symlink (points to {os.readlink(arg)!r})")
        if not (os.path.isdir(arg) or os.path.isfile(arg)):
            raise GuardError(f"{arg}: not a regular file or folder")
        absolute = os.path.abspath(arg)
        rel = os.path.relpath(absolute, root_abs).replace(os.sep, "/")
        prefix = None if rel == ".." or rel.startswith("../") else ("" if rel == "." else rel)
        plan.append((arg, absolute, prefix))
    return plan, excluded


def _iter_groups(
    plan: list[tuple[str, str, str | None]], excluded: GitIgnoreSpec | None, problems: list[str]
) -> Iterator[_Group]:
    for arg, absolute, prefix in plan:
        if os.path.isdir(absolute):
            dir_prefix = None if prefix is None else (prefix + "/" if prefix else "")
            rules = _repository_rules(absolute)
            yield from _walk(absolute, os.path.normpath(arg), rules, excluded, dir_prefix, problems)
        elif excluded is None or prefix is None or not excluded.match_file(prefix):
            shown = os.path.normpath(arg)
            name = os.path.basename(absolute)  # a file's: its name ends both paths
            yield absolute[: len(absolute) - len(name)], shown[: len(shown) - len(name)], [name]


def list_files(
    paths: Sequence[str | os.PathLike[str]], root: str | os.PathLike[str], exclude: Sequence[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """Every file ``iter_files`` yields, plus the listing problems."""
    problems: list[str] = []
    return list(iter_files(paths, root, exclude, problems)), problems


_reader: FileReader | None = None
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC


def _scan_chunk(chunk: Iterable[tuple[str, str]]) -> tuple[list[Leak], list[str]]:
    """Scan (open path, shown path) pairs. The files of a folder come in runs: they are opened
    relative to it (opened once per run) and read and prefiltered together."""
    global _reader
    if _reader is None:  # one buffer per process, reused by every batch it scans
        _reader = FileReader()
    leaks: list[Leak] = []
    problems: list[str] = []
    sep = os.sep
    folder = ""
    run: list[tuple[str, str]] = []
    for pair in chunk:
        where = pair[0].rpartition(sep)[0]
        if where != folder or len(run) >= RUN_FILES:
            if run:
                _scan_run(_reader, folder, run, leaks, problems)
            folder, run = where, []
        run.append(pair)
    if run:
        _scan_run(_reader, folder, run, leaks, problems)
    return leaks, problems


def _scan_run(
    reader: FileReader,
    folder: str,
    run: list[tuple[str, str]],
    leaks: list[Leak],
    problems: list[str],
) -> None:
    """Scan (path, shown) pairs of files in ``folder``."""
    names = [path.rpartition(os.sep)[2] for path, _ in run]
    _scan_in(reader, folder, names, lambda i: run[i][0], lambda i: run[i][1], leaks, problems)


def _scan_group(group: _Group, leaks: list[Leak], problems: list[str]) -> None:
    global _reader
    if _reader is None:  # one buffer per process, reused by every batch it scans
        _reader = FileReader()
    folder, shown, names = group
    _scan_in(_reader, folder[:-1] or folder, names,
             lambda i: folder + names[i], lambda i: shown + names[i], leaks, problems)  # fmt: skip


def _scan_in(
    reader: FileReader,
    folder: str,
    names: list[str],
    path: Callable[[int], str],
    shown: Callable[[int], str],
    leaks: list[Leak],
    problems: list[str],
) -> None:
    """Scan the files ``names`` of ``folder``, opened relative to it, or by ``path(i)`` if it
    cannot be opened (each file's own open then says what is wrong); ``shown(i)`` is how
    file ``i`` is shown."""
    dir_fd = None
    if folder:
        try:
            dir_fd = os.open(folder, _DIR_FLAGS)
        except OSError:
            dir_fd = None
    try:
        targets = [path(i) for i in range(len(names))] if dir_fd is None else names
        for i, result in reader.scan_many(targets, dir_fd):
            if isinstance(result, OSError):
                problems.append(f"{shown(i)}: cannot read: {result.strerror}")
            else:
                leaks.extend(Leak(shown(i), hit) for hit in result)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def scan_files(
    targets: Iterable[tuple[str, str]], jobs: int | None = None
) -> tuple[list[Leak], list[str]]:
    """Scan (open path, shown path) pairs, split over ``jobs`` processes when there are many.

    Each forked child scans every ``jobs``-th file and pickles its result into a pipe while
    this process scans its own share: no pool and no per-batch messages, which measured
    faster. (Threads do not help: the per-file Python work holds the GIL.)"""
    items = list(targets)
    jobs = min(jobs or os.cpu_count() or 1, len(items) // MIN_FILES_PER_JOB or 1)
    if jobs == 1 or len(items) < PARALLEL_MIN_FILES or not hasattr(os, "fork"):
        return _scan_chunk(items)
    import pickle  # only for big trees: keeps the pre-commit hook's start-up short

    children = [_fork_scan(items[i::jobs]) for i in range(1, jobs)]
    leaks, problems = _scan_chunk(items[0::jobs])
    for pid, pipe, count in children:
        with os.fdopen(pipe, "rb") as result:
            try:
                found, trouble = pickle.load(result)
            except (EOFError, pickle.UnpicklingError):
                found, trouble = [], [f"a scan worker died: {count} files not checked"]
        os.waitpid(pid, 0)
        leaks += found
        problems += trouble
    return leaks, problems


def _fork_scan(chunk: list[tuple[str, str]]) -> tuple[int, int, int]:
    """A child process that scans ``chunk``: its pid, the pipe to read from, the file count."""
    import pickle

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: scan, send the result, exit without running the parent's code
        os.close(read_end)
        status = 1
        try:
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(_scan_chunk(chunk), out, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, read_end, len(chunk)


def collect(
    paths: Sequence[str | os.PathLike[str]],
    root: str | os.PathLike[str],
    exclude: Sequence[str] = (),
    jobs: int | None = None,
) -> tuple[list[Leak], list[str]]:
    """Every leak under ``paths`` plus the problems that stopped part of the scan."""
    problems: list[str] = []
    groups = _iter_groups(*_plan(paths, root, exclude), problems)
    jobs = jobs or os.cpu_count() or 1
    head: list[_Group] = []
    if jobs > 1 and hasattr(os, "fork"):
        count = 0
        for group in groups:
            head.append(group)
            count += len(group[2])
            if count >= STREAM_MIN_FILES:
                leaks, trouble = _scan_streaming(itertools.chain(head, groups), jobs)
                return leaks, problems + trouble
    pairs = [(f + n, s + n) for f, s, names in itertools.chain(head, groups) for n in names]
    leaks, trouble = scan_files(pairs, jobs)
    return leaks, problems + trouble


def _scan_streaming(groups: Iterable[_Group], jobs: int) -> tuple[list[Leak], list[str]]:
    """``scan_files`` for big trees, overlapped with their listing: forked workers scan
    what this process sends them while it goes on listing.

    File names go a few at a time down a small pipe per worker; when every pipe is full
    this process scans them itself, so the work balances however fast each side is and at
    the end at most a pipe's worth is left to wait for."""
    global _reader
    if _reader is None:  # before forking: a bad prefilter setting fails here, once
        _reader = FileReader()
    workers: list[_Worker] = []
    try:
        for _ in range(min(jobs, MAX_STREAM_JOBS) - 1):
            workers.append(_Worker.start(workers))
        leaks, problems = _dispatch(groups, workers)
    finally:
        for worker in workers:
            worker.close_feed()
    for worker in workers:
        with os.fdopen(worker.results, "rb") as result:
            sent = result.read()
        os.waitpid(worker.pid, 0)
        try:
            found, trouble = _unpack(sent)
        except ValueError:  # nothing, or cut short: the worker died
            found, trouble = [], [f"a scan worker died: {worker.sent} files not checked"]
        leaks += found
        problems += trouble
    return leaks, problems


def _pack(leaks: list[Leak], problems: list[str]) -> bytes:
    """A worker's result as JSON (already imported, unlike pickle). Paths that are not
    UTF-8 come back intact: ``json`` escapes their lone surrogates."""
    import json

    rows = [[lk.path, lk.hit.key, lk.hit.offset, lk.hit.line, lk.hit.column, lk.hit.encoding]
            for lk in leaks]  # fmt: skip
    return json.dumps([rows, problems]).encode("ascii")


def _unpack(data: bytes) -> tuple[list[Leak], list[str]]:
    import json

    rows, problems = json.loads(data)
    leaks = [Leak(path, Hit(key, offset, line, column, encoding))
             for path, key, offset, line, column, encoding in rows]  # fmt: skip
    return leaks, [str(problem) for problem in problems]


def _dispatch(groups: Iterable[_Group], workers: list[_Worker]) -> tuple[list[Leak], list[str]]:
    """Send ``groups`` to the workers a few files at a time; scan them here when all are
    busy. A message is the folder, ``=`` and its shown path, the names, each ended by a NUL,
    then one more NUL (no field is empty)."""
    from select import PIPE_BUF

    leaks: list[Leak] = []
    problems: list[str] = []
    live = list(workers)
    turn = 0

    def send(folder: str, shown: str, names: list[str]) -> None:
        nonlocal turn
        data = ("\0".join([folder, "=" + shown, *names]) + "\0\0").encode(_FS_ENC, _FS_ERR)
        if len(data) > PIPE_BUF and len(names) > 1:  # could be split: send them one by one
            for name in names:
                send(folder, shown, [name])
            return
        if len(data) <= PIPE_BUF:  # else a name too long to send: scan it here
            for _ in range(len(live)):
                worker = live[turn % len(live)]
                turn += 1
                try:
                    os.write(worker.feed, data)
                except BlockingIOError:
                    continue  # its pipe is full: try the next one
                except BrokenPipeError:
                    live.remove(worker)  # it died; what it had is reported when collected
                    if not live:
                        break
                    continue
                worker.sent += len(names)
                return
        _scan_group((folder, shown, names), leaks, problems)

    for folder, shown, names in groups:
        for start in range(0, len(names), MESSAGE_FILES):
            send(folder, shown, names[start : start + MESSAGE_FILES])
    return leaks, problems


class _Worker:
    """A forked process that scans the files whose names are written to its feed pipe and
    writes its leaks and problems to its results pipe when the feed is closed."""

    def __init__(self, pid: int, feed: int, results: int) -> None:
        self.pid = pid
        self.feed = feed
        self.results = results
        self.sent = 0

    @classmethod
    def start(cls, others: Sequence[_Worker]) -> _Worker:
        feed_read, feed = os.pipe()
        results_read, results = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: scan what comes, send the result, exit without returning
            status = 1
            try:
                os.close(feed)
                os.close(results_read)
                for other in others:
                    other.close_feed()
                    os.close(other.results)
                leaks: list[Leak] = []
                problems: list[str] = []
                for group in _received(feed_read):
                    _scan_group(group, leaks, problems)
                with os.fdopen(results, "wb") as out:
                    out.write(_pack(leaks, problems))
                status = 0
            finally:
                os._exit(status)
        os.close(feed_read)
        os.close(results)
        try:
            import fcntl

            fcntl.fcntl(feed, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except (ImportError, AttributeError, OSError):
            pass  # a bigger pipe only makes the end less even
        os.set_blocking(feed, False)
        return cls(pid, feed, results_read)

    def close_feed(self) -> None:
        if self.feed != -1:
            os.close(self.feed)
            self.feed = -1


def _received(feed: int) -> Iterator[_Group]:
    """The messages ``_dispatch`` wrote to ``feed``, as groups."""
    rest = b""
    while chunk := os.read(feed, 1 << 16):
        data = rest + chunk
        cut = data.rfind(b"\0\0") + 2  # after the last whole message (NULs are never
        rest = data[cut:]  # inside a multi-byte character)
        for message in data[:cut].decode(_FS_ENC, _FS_ERR).split("\0\0")[:-1]:
            folder, shown, *names = message.split("\0")
            yield folder, shown[1:], names


def check(root: Path, config: Config) -> Report:
    """The ``secrets`` checker of ``vsms-guard check``: the tree scan with the config's
    excludes and baselines."""
    from scanners import baseline

    settings = scan_settings(config, root)
    accepted = baseline.load(settings.baselines)  # a bad baseline fails before the scan
    leaks, problems = collect([root], root, settings.exclude)
    return build_report(leaks, problems, accepted=accepted)
