"""The real detect-secrets CLI loading our plugin file: same verdicts as ``vsms-guard scan``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scanners import tree
from tests.fakes import fake_key
from tests.test_scan_fixtures import NOT_KEYS, build_leaky_tree

BIN = Path(sys.executable).parent
PLUGIN_TYPE = "VirtualSMS API key"
# detect-secrets' own heuristic drops any secret on a line like ``c = Client(api_key="…")``,
# whatever the plugin says; with it off, detect-secrets and our scanner report the same keys.
INDIRECT_FILTER = "detect_secrets.filters.heuristic.is_indirect_reference"
pytestmark = pytest.mark.slow


def plugin_path() -> str:
    done = subprocess.run(
        [str(BIN / "vsms-guard"), "scan", "--print-plugin-path"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def only_our_plugin() -> list[str]:
    """detect-secrets arguments that load our plugin and disable every built-in one."""
    listed = subprocess.run(
        [str(BIN / "detect-secrets"), "scan", "--list-all-plugins"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    args = ["--plugin", plugin_path()]
    for name in listed:
        args += ["--disable-plugin", name]
    return args


def detect_secrets(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "detect-secrets"), "scan", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def reported(done: subprocess.CompletedProcess[str]) -> set[tuple[str, str, int]]:
    """(file, SHA-1 of the key, line) of every key detect-secrets reported with our plugin."""
    results = json.loads(done.stdout)["results"]
    return {
        (name, r["hashed_secret"], r["line_number"])
        for name, found in results.items()
        for r in found
        if r["type"] == PLUGIN_TYPE
    }


def git_repo(path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)


def test_plugin_agrees_with_our_scanner_on_the_fixture_tree(tmp_path: Path) -> None:
    planted = build_leaky_tree(tmp_path)
    git_repo(tmp_path)  # detect-secrets only scans files git knows about
    done = detect_secrets(tmp_path, *only_our_plugin(), "--disable-filter", INDIRECT_FILTER)
    assert done.returncode == 0, done.stderr
    theirs = reported(done)
    leaks, _ = tree.collect([tmp_path], tmp_path)
    ours = {
        (
            Path(leak.path).relative_to(tmp_path).as_posix(),
            hashlib.sha1(leak.hit.key.encode()).hexdigest(),
            leak.hit.line,
        )
        for leak in leaks
        if leak.hit.encoding != "utf-16"  # detect-secrets cannot read UTF-16 files
    }
    assert theirs == ours
    assert len(ours) == len(planted) - 1
    for value in NOT_KEYS:  # no placeholder was reported by either
        assert hashlib.sha1(value.encode()).hexdigest() not in {h for _, h, _ in theirs}
    # With its default filters, detect-secrets loses the notebook's ``Client(api_key=…)`` line.
    default = reported(detect_secrets(tmp_path, *only_our_plugin()))
    assert {name for name, _, _ in theirs - default} == {"notebooks/try.ipynb"}


def test_detect_secrets_baseline_is_read_as_accepted_findings(tmp_path: Path) -> None:
    build_leaky_tree(tmp_path)
    git_repo(tmp_path)
    done = detect_secrets(tmp_path, *only_our_plugin(), "--disable-filter", INDIRECT_FILTER)
    (tmp_path / ".secrets.baseline").write_text(done.stdout)
    scan = [str(BIN / "vsms-guard"), "scan", "."]
    accepted = subprocess.run(
        [*scan, "--baseline", ".secrets.baseline", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    # Everything detect-secrets saw is accepted; only the UTF-16 file it cannot read remains.
    paths = [f["path"] for f in json.loads(accepted.stdout)["findings"]]
    assert (accepted.returncode, paths) == (1, ["windows/settings.ini"])
    new_key = fake_key("after-baseline")
    (tmp_path / "late.py").write_text(f"K = '{new_key}'\n")
    later = subprocess.run(
        [*scan, "--baseline", ".secrets.baseline", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sorted(f["path"] for f in json.loads(later.stdout)["findings"]) == [
        "late.py",
        "windows/settings.ini",
    ]


def test_outside_git_detect_secrets_scans_nothing_and_we_do(tmp_path: Path) -> None:
    planted = build_leaky_tree(tmp_path)
    theirs = detect_secrets(tmp_path, *only_our_plugin(), ".")
    assert theirs.returncode == 0 and json.loads(theirs.stdout)["results"] == {}
    ours = subprocess.run(
        [str(BIN / "vsms-guard"), "scan", "."], cwd=tmp_path, capture_output=True, check=False
    )
    assert ours.returncode == 1
    assert len(planted) == 12


def test_plugin_verdict_on_single_strings(tmp_path: Path) -> None:
    key = fake_key("string")
    for value, expected in ((f"api_key = '{key}'", "True"), ("vsms_your_key_here", "False")):
        done = detect_secrets(tmp_path, *only_our_plugin(), "--string", value)
        assert done.returncode == 0, done.stderr
        line = next(ln for ln in done.stdout.splitlines() if "VirtualSMS" in ln)
        assert line.split(":")[-1].split()[0] == expected
