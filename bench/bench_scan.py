"""Secret-scan speed against the peers of issue #2, all measured in the same run.

- Tree: a generated tree of >= 200 MB in 20,000 files with a few planted keys (under
  ``bench/out/``, reused between runs). ``vsms-guard scan`` vs ripgrep (same pattern), gitleaks
  ``dir`` with only a ``vsms_`` rule, and detect-secrets with only our plugin. detect-secrets is
  measured on a 1,000-file subset and extrapolated per MB (it needs minutes for the whole tree).
- Hook: ``vsms-guard scan --staged`` on 20 staged files vs ``detect-secrets-hook`` with our plugin
  on the same files; median wall time of several runs.
- History: ``vsms-guard scan --history`` on a 2,000-commit repository vs
  ``git log -p --all | rg PATTERN``.

Every tool runs as a program (wall time includes start-up) on a warm page cache. The tree scan
runs ``vsms-guard`` from a regular (non-editable) ``pip install`` of this checkout with the
``fast`` extra, built once into ``bench/out/scan/install/`` (and again when the sources change),
as users run it: the dev venv's editable install adds an import hook to every start-up.
Run: ``.venv/bin/python -m bench scan``; ``BENCH_SCAN_QUICK=1`` runs only the tree scan against
rg (for iterating; the full run is the reference).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.fakes import fake_key
from vsms_guard import keys

OUT = Path(__file__).resolve().parent / "out" / "scan"
BIN = Path(sys.executable).parent
PATTERN = keys.CANDIDATE_RE.pattern  # what rg and gitleaks look for: the same candidates
N_FILES = 20_000
FILES_PER_DIR = 100
TARGET_BYTES = 210 * 1024 * 1024
N_PLANTED = 6
SUBSET_DIRS = 10  # detect-secrets: 1,000 files
HOOK_FILES = 20
HOOK_RUNS = 7
N_COMMITS = 2_000
TREE_ROUNDS = 7
QUICK = os.environ.get("BENCH_SCAN_QUICK", "") not in ("", "0")
REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "vsms_guard", "scanners", "mcp_server", "policies")
TREE_VERSION = "1"

WORDS = (
    "order service country price balance phone number message status token session client "
    "request response handler config retry timeout webhook signature payload event customer "
    "verify expire cancel swap wait poll socket stream value index count total result error"
).split()
DECOYS = [
    "VIRTUALSMS_API_KEY=vsms_your_api_key_here",
    "vsms_enabled = True",
    "if settings.vsms_device_id is None:",
    'key = "vsms_xxxxxxxxxxxxxxxxxxxxxxxx"',
    "log.info('vsms_key_rotation_work_frequency=%s', freq)",
]


def _line(rng: random.Random) -> str:
    shape = rng.randrange(6)
    w = rng.sample(WORDS, 4)
    if shape == 0:
        return f"    {w[0]}_{w[1]} = {w[2]}.{w[3]}({rng.randrange(10**6)})"
    if shape == 1:
        return f'    "{w[0]}": "{w[1]} {w[2]} {rng.getrandbits(64):x}",'
    if shape == 2:
        return f"def {w[0]}_{w[1]}({w[2]}, {w[3]}=None):"
    if shape == 3:
        return f"# {' '.join(rng.choices(WORDS, k=9))}"
    if shape == 4:
        return f"    return {w[0]}[{rng.randrange(100)}] + {w[1]} * {rng.random():.6f}"
    return f"{w[0].upper()}_{w[1].upper()} = {rng.randrange(10**9)}"


def planted_keys() -> list[str]:
    return [fake_key(f"bench-{i}", length=40) for i in range(N_PLANTED)]


def build_tree(root: Path) -> None:
    """20,000 source-like files of ~10.5 KB, a few placeholder decoys, ``N_PLANTED`` keys."""
    marker = root / ".complete"
    if marker.is_file() and marker.read_text() == TREE_VERSION:
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(2)
    pool = [_line(rng) for _ in range(5000)]
    per_file = TARGET_BYTES // N_FILES
    lines_per_file = per_file // (sum(map(len, pool)) // len(pool) + 1)
    plant_at = dict(zip(rng.sample(range(N_FILES), N_PLANTED), planted_keys(), strict=True))
    for i in range(N_FILES):
        folder = root / f"pkg{i // FILES_PER_DIR:03d}"
        if i % FILES_PER_DIR == 0:
            folder.mkdir(parents=True)
        body = rng.choices(pool, k=lines_per_file)
        if i % 50 == 0:
            body[rng.randrange(len(body))] = rng.choice(DECOYS)
        if i in plant_at:
            body[rng.randrange(len(body))] = f'    api_key = "{plant_at[i]}"'
        (folder / f"mod{i:05d}.py").write_text("\n".join(body) + "\n")
    marker.write_text(TREE_VERSION)


def installed_guard() -> Path:
    """``vsms-guard`` of a regular ``pip install`` of this checkout into a venv under
    ``bench/out/`` (from a copy of the sources, so the checkout gets no build files); built
    once, reinstalled (without touching its dependencies) when the sources change."""
    where = OUT / "install"
    files = sorted(
        f
        for name in SOURCES
        for f in ([REPO / name] if (REPO / name).is_file() else (REPO / name).rglob("*"))
        if f.is_file() and "__pycache__" not in f.parts
    )
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes())
    stamp, marker = digest.hexdigest(), where / "stamp"
    venv = where / "venv"
    exe = venv / "bin" / "vsms-guard"
    if exe.is_file() and marker.is_file() and marker.read_text() == stamp:
        return exe
    src = where / "src"
    shutil.rmtree(src, ignore_errors=True)
    for f in files:
        (src / f.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, src / f.relative_to(REPO))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    pip.append("--disable-pip-version-check")
    if exe.is_file():
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(src)], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([*pip, f"{src}[fast]"], check=True)
    marker.write_text(stamp)
    return exe


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.py"))


def timed(cmd: list[str], cwd: Path | None = None, shell: bool = False) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, the program and its children) and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        " ".join(cmd) if shell else cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        shell=shell,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return elapsed, cpu, done.stdout


def keys_in(text: str, planted: list[str]) -> int:
    return sum(1 for key in planted if key in text)


def detect_secrets_args() -> list[str]:
    listed = subprocess.run(
        [str(BIN / "detect-secrets"), "scan", "--list-all-plugins"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    plugin = subprocess.run(
        [str(BIN / "vsms-guard"), "scan", "--print-plugin-path"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    args = ["--plugin", plugin]
    for name in listed:
        args += ["--disable-plugin", name]
    return args


def fingerprints_in(report: str) -> set[str]:
    return {f["fingerprint"] for f in json.loads(report)["findings"]}


def bench_tree() -> None:
    root = OUT / "tree"
    t0 = time.perf_counter()
    build_tree(root)
    size = tree_bytes(root)
    mb = size / 1e6
    n_files = sum(1 for _ in root.rglob("*.py"))
    print(f"tree: {n_files} files, {mb:.0f} MB, {N_PLANTED} planted keys "
          f"(ready in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
    planted = planted_keys()
    want = {keys.fingerprint(k) for k in planted}
    subprocess.run(["cat", *map(str, root.rglob("*.py"))], stdout=subprocess.DEVNULL, check=True)

    guard = str(installed_guard())
    print(f"vsms-guard: regular install, {guard}")
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "ours-j1": [], "rg": []}
    scan = [guard, "scan", str(root), "--format", "json"]
    for _ in range(TREE_ROUNDS):  # interleaved, so load from other processes hits all alike
        t, cpu, out = timed(scan)
        assert fingerprints_in(out) == want, "vsms-guard missed a planted key"
        runs["ours"].append((t, cpu))
        t, cpu, out = timed([*scan, "--jobs", "1"])
        assert fingerprints_in(out) == want, "vsms-guard --jobs 1 missed a planted key"
        runs["ours-j1"].append((t, cpu))
        t, cpu, out = timed(["rg", "-o", "--no-filename", PATTERN, str(root)])
        assert keys_in(out, planted) == N_PLANTED, "rg missed a planted key"
        runs["rg"].append((t, cpu))
    (t_ours, c_ours), (t_j1, c_j1), (t_rg, c_rg) = (min(runs[k]) for k in runs)
    med = {k: statistics.median(t for t, _ in v) for k, v in runs.items()}
    empty = OUT / "empty"
    empty.mkdir(exist_ok=True)
    t_start = min(timed([guard, "scan", str(empty)])[0] for _ in range(5))

    rows = [
        ("vsms-guard scan", t_ours, c_ours),
        ("vsms-guard scan --jobs 1", t_j1, c_j1),
        ("rg (same pattern)", t_rg, c_rg),
    ]
    if not QUICK:
        rule = OUT / "gitleaks-vsms.toml"
        rule.write_text(f"[[rules]]\nid = \"vsms-key\"\nregex = '''{PATTERN}'''\n")
        report = OUT / "gitleaks.json"
        t_gl, c_gl, _ = timed([str(BIN / "gitleaks"), "dir", str(root), "--config", str(rule),
                         "--no-banner", "--report-format", "json", "--report-path", str(report),
                         "--log-level", "error"])  # fmt: skip
        assert keys_in(report.read_text(), planted) == N_PLANTED, "gitleaks missed a planted key"
        rows.append(("gitleaks dir (1 rule)", t_gl, c_gl))

        subset = sorted(p for p in root.iterdir() if p.is_dir())[:SUBSET_DIRS]
        subset_mb = sum(f.stat().st_size for d in subset for f in d.iterdir()) / 1e6
        t_ds_sub, _, out = timed([str(BIN / "detect-secrets"), "scan", "--all-files",
                               *detect_secrets_args(), *map(str, subset)])  # fmt: skip
        in_subset = [
            k for k in planted if any(k in f.read_text() for d in subset for f in d.iterdir())
        ]
        found = {r["hashed_secret"] for rs in json.loads(out)["results"].values() for r in rs}
        assert len(found) >= len(in_subset), "detect-secrets missed a planted key"
        t_ds = t_ds_sub / subset_mb * mb

    print(f"  {'':24} {'wall':>8} {'CPU':>8} {'MB/s':>7}")
    for name, t, cpu in rows:
        print(f"  {name:24} {t:7.2f}s {cpu:7.2f}s {mb / t:7.0f}")
    if not QUICK:
        print(f"  {'detect-secrets + plugin':24} {t_ds:7.1f}s  (extrapolated from {t_ds_sub:.1f} s "
              f"on {subset_mb:.1f} MB, {len(subset) * FILES_PER_DIR} files)")  # fmt: skip
    print(f"  (wall: best of {TREE_ROUNDS} interleaved runs; CPU: user + system of that run)")
    if not QUICK:
        print(f"  ratio: {t_ds / t_ours:6.0f}x faster than detect-secrets (bar: >= 100x)")
        print(f"  ratio: {t_gl / t_ours:6.1f}x faster than gitleaks (bar: >= 5x)")
    print(f"  (vsms-guard start-up alone, an empty folder: {t_start:.3f} s)")
    print(f"  ratio: {t_ours / t_rg:6.2f}x rg's wall time (bar: <= 2x); "
          f"{c_ours / c_rg:.2f}x its CPU time")  # fmt: skip
    print(f"  (medians of the {TREE_ROUNDS} runs: {med['ours']:.3f} s vs rg {med['rg']:.3f} s, "
          f"{med['ours'] / med['rg']:.2f}x)")  # fmt: skip


def _git(repo: Path, *args: str, **kw) -> subprocess.CompletedProcess[bytes]:  # noqa: ANN003
    ident = ["-c", "user.name=Bench", "-c", "user.email=bench@example.invalid"]
    return subprocess.run(["git", *ident, *args], cwd=repo, check=True, capture_output=True, **kw)


def bench_hook() -> None:
    repo = OUT / "hook-repo"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    _git(repo, "init", "-q")
    source = sorted((OUT / "tree").glob("pkg00[0-1]/*.py"))[:HOOK_FILES]
    names = []
    for i, path in enumerate(source):
        body = path.read_text()
        if i == 7:
            body += f'KEY = "{fake_key("hook-bench", length=40)}"\n'
        name = f"src/file{i:02d}.py"
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_text(body)
        names.append(name)
    _git(repo, "add", "-A")
    kb = sum((repo / n).stat().st_size for n in names) / 1024
    ours_cmd = [str(BIN / "vsms-guard"), "scan", "--staged", *names]
    theirs_cmd = [str(BIN / "detect-secrets-hook"), *detect_secrets_args(), *names]
    ours, theirs = [], []
    for _ in range(HOOK_RUNS):
        t, _, out = timed(ours_cmd, cwd=repo)
        assert "vsms-key" in out
        ours.append(t)
        t, _, out = timed(theirs_cmd, cwd=repo)
        assert "VirtualSMS API key" in out
        theirs.append(t)
    m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
    print(f"hook: {HOOK_FILES} staged files ({kb:.0f} KB), median of {HOOK_RUNS} runs")
    print(f"  vsms-guard scan --staged          {m_ours * 1000:7.0f} ms")
    print(f"  detect-secrets-hook + our plugin  {m_theirs * 1000:7.0f} ms")
    print(f"  ratio: {m_theirs / m_ours:5.1f}x lower median (bar: >= 3x)")


def build_history(repo: Path) -> list[str]:
    """A repository of ``N_COMMITS`` commits via ``git fast-import``; some add keys that a
    later commit deletes."""
    marker = repo / ".git" / "bench-complete"
    planted = [fake_key(f"history-{i}", length=40) for i in range(5)]
    if marker.is_file():
        return planted
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    rng = random.Random(3)
    pool = [_line(rng) for _ in range(2000)]
    files = {f"src/m{i:03d}.py": rng.choices(pool, k=120) for i in range(200)}
    key_at = {200 + 350 * i: key for i, key in enumerate(planted)}
    stream = []
    for n in range(N_COMMITS):
        changed = rng.sample(sorted(files), 3)
        for name in changed:
            body = files[name]
            for _ in range(4):
                body[rng.randrange(len(body))] = rng.choice(pool)
            body.insert(rng.randrange(len(body)), rng.choice(pool))
        if n in key_at:
            files[changed[0]].insert(5, f'API_KEY = "{key_at[n]}"')
        if n - 40 in key_at:  # deleted again 40 commits later
            for body in files.values():
                body[:] = [ln for ln in body if key_at[n - 40] not in ln]
        stream.append(f"commit refs/heads/main\ncommitter Bench <b@example.invalid> "
                      f"{1_700_000_000 + n * 60} +0000\ndata 11\ncommit {n:04d}\n")  # fmt: skip
        for name in changed if n else sorted(files):
            data = ("\n".join(files[name]) + "\n").encode()
            stream.append(f"M 100644 inline {name}\ndata {len(data)}\n")
            stream.append(data.decode() + "\n")
        if n - 40 in key_at:
            for name in sorted(files):
                data = ("\n".join(files[name]) + "\n").encode()
                stream.append(f"M 100644 inline {name}\ndata {len(data)}\n{data.decode()}\n")
    _git(repo, "fast-import", "--quiet", input="".join(stream).encode())
    _git(repo, "reset", "-q", "--hard", "main")
    marker.write_text("1")
    return planted


def bench_history() -> None:
    repo = OUT / "history-repo"
    planted = build_history(repo)
    n = int(_git(repo, "rev-list", "--count", "--all").stdout)
    ours, theirs = [], []
    pipeline = ["git", "log", "-p", "--all", "|", "rg", "-o", "--no-filename", f"'{PATTERN}'"]
    for _ in range(3):
        t, _, out = timed([str(BIN / "vsms-guard"), "scan", "--history", "--format", "json"], repo)
        assert fingerprints_in(out) == {keys.fingerprint(k) for k in planted}
        ours.append(t)
        t, _, out = timed(pipeline, cwd=repo, shell=True)
        assert keys_in(out, planted) == len(planted)
        theirs.append(t)
    t_ours, t_theirs = min(ours), min(theirs)
    print(f"history: {n} commits, {len(planted)} keys added then deleted, best of 3")
    print(f"  vsms-guard scan --history        {t_ours:6.2f} s")
    print(f"  git log -p --all | rg PATTERN    {t_theirs:6.2f} s")
    print(f"  ratio: {t_ours / t_theirs:5.2f}x the pipeline's time "
          f"({t_theirs / t_ours:.2f}x as fast)")  # fmt: skip


def main() -> None:
    if shutil.which("rg") is None:
        raise SystemExit("ripgrep (rg) is needed: apt-get install ripgrep")
    os.environ.pop("VIRTUALSMS_API_KEY", None)
    bench_tree()
    if QUICK:
        return
    bench_hook()
    bench_history()


if __name__ == "__main__":
    main()
