"""``vsms-guard scan PATH``: the real console script on real trees (git repository or not)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scanners import tree
from tests.fakes import fake_key
from tests.test_scan_fixtures import build_leaky_tree
from vsms_guard import keys
from vsms_guard.config import load_config

CLI = [str(Path(sys.executable).with_name("vsms-guard"))]


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "scan", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False
    )


def assert_no_whole_key(output: str, planted: dict[str, str] | list[str]) -> None:
    values = planted.values() if isinstance(planted, dict) else planted
    for key in values:
        assert key not in output
        assert key[len(keys.PREFIX) + 3 :] not in output  # not even the token after the mask


def test_text_report_masks_every_key_and_says_what_to_do(tmp_path: Path) -> None:
    planted = build_leaky_tree(tmp_path)
    done = run(tmp_path)
    assert done.returncode == 1, done.stderr
    assert_no_whole_key(done.stdout + done.stderr, planted)
    for rel, key in planted.items():
        assert f"{tmp_path}/{rel}:" in done.stdout
        assert keys.mask(key) in done.stdout
        assert f"fingerprint {keys.fingerprint(key)}]" in done.stdout
    assert done.stdout.count("rotate the key in the VirtualSMS dashboard") == len(planted)
    assert f"{len(planted)} findings" in done.stdout


def test_json_and_sarif_carry_fingerprints_not_keys(tmp_path: Path) -> None:
    planted = build_leaky_tree(tmp_path)
    as_json = run(tmp_path, "--format", "json", cwd=tmp_path)
    body = json.loads(as_json.stdout)
    assert body["exit_code"] == 1
    assert {f["fingerprint"] for f in body["findings"]} == {
        keys.fingerprint(k) for k in planted.values()
    }
    assert {f["path"] for f in body["findings"]} == {f"{tmp_path}/{rel}" for rel in planted}
    sarif_path = tmp_path / "report.sarif"
    as_sarif = run(tmp_path, "--format", "sarif", "-o", sarif_path)
    # the file gets SARIF; stdout still gets the readable report, as for every command
    assert as_sarif.returncode == 1 and as_sarif.stdout.endswith(f"{len(planted)} findings\n")
    sarif = json.loads(sarif_path.read_text())
    results = sarif["runs"][0]["results"]
    assert len(results) == len(planted)
    assert all(r["ruleId"] == "vsms-key" and r["partialFingerprints"] for r in results)
    assert_no_whole_key(as_json.stdout + as_sarif.stdout + sarif_path.read_text(), planted)


def test_keys_in_file_names_are_masked_too(tmp_path: Path) -> None:
    in_folder, in_name, inside = fake_key("folder"), fake_key("name"), fake_key("inside")
    (tmp_path / in_folder).mkdir()
    (tmp_path / in_folder / f"{in_name}.json").write_text(f'{{"key": "{inside}"}}\n')
    done = run(".", "--format", "json", cwd=tmp_path)
    assert done.returncode == 1
    assert_no_whole_key(done.stdout + done.stderr, [in_folder, in_name, inside])
    [finding] = json.loads(done.stdout)["findings"]
    assert finding["path"] == f"{keys.mask(in_folder)}/{keys.mask(in_name)}.json"


def test_relative_paths_when_scanning_the_current_folder(tmp_path: Path) -> None:
    planted = build_leaky_tree(tmp_path)
    body = json.loads(run(".", "--format", "json", cwd=tmp_path).stdout)
    assert {f["path"] for f in body["findings"]} == set(planted)


def test_clean_tree_exits_0(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("export VIRTUALSMS_API_KEY=vsms_your_key_here\n")
    done = run(tmp_path)
    assert (done.returncode, done.stdout) == (0, "0 findings\n")


def test_nested_gitignore_negation_and_parent_ignores(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("*.secret\nvendor/\n")
    sub = tmp_path / "app"
    sub.mkdir()
    (sub / ".gitignore").write_text("!kept.secret\nlocal/\n")
    (tmp_path / "top.secret").write_text(fake_key("top"))
    (sub / "other.secret").write_text(fake_key("other"))
    (sub / "kept.secret").write_text(fake_key("kept"))
    (sub / "local").mkdir()
    (sub / "local/x.txt").write_text(fake_key("local"))
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor/lib.js").write_text(fake_key("vendor"))
    (tmp_path / ".git/info/exclude").write_text("scratch.txt\n")
    (sub / "scratch.txt").write_text(fake_key("scratch"))
    (sub / "main.py").write_text(f"K = '{fake_key('main')}'\n")
    expected = {fake_key("kept"), fake_key("main")}
    for target in (tmp_path, sub):  # a subfolder still obeys the repository's ignore files
        leaks, problems = tree.collect([target], target)
        assert problems == []
        assert {leak.hit.key for leak in leaks} == expected
    # A file named on the command line is scanned even when ignored, like ripgrep does.
    assert run(tmp_path / "top.secret").returncode == 1
    # An ignored file that git tracks anyway (git add -f) is committed: it is scanned.
    subprocess.run(["git", "add", "-f", "vendor/lib.js"], cwd=tmp_path, check=True)
    for target in (tmp_path, sub):
        leaks, _ = tree.collect([target], target)
        want = expected | ({fake_key("vendor")} if target == tmp_path else set())
        assert {leak.hit.key for leak in leaks} == want


def test_config_excludes_from_pyproject_and_own_file(tmp_path: Path) -> None:
    planted = build_leaky_tree(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.vsms-guard]\nexclude = ["config/"]\n[tool.vsms-guard.scan]\nexclude = ["*.ipynb"]\n'
    )
    body = json.loads(run(".", "--format", "json", cwd=tmp_path).stdout)
    shown = {f["path"] for f in body["findings"]}
    assert shown == {p for p in planted if not p.startswith("config/") and ".ipynb" not in p}
    (tmp_path / ".vsms-guard.toml").write_text('exclude = ["k8s/", "static/*.js"]\n')
    body = json.loads(run(".", "--format", "json", cwd=tmp_path).stdout)
    shown = {f["path"] for f in body["findings"]}
    assert shown == {p for p in planted if not p.startswith(("k8s/", "static/"))}
    root_config = load_config(tmp_path)
    report = tree.check(tmp_path, root_config)
    assert {Path(f.path).relative_to(tmp_path).as_posix() for f in report.findings} == shown


def test_own_baseline_accepts_keys_and_does_not_churn(tmp_path: Path) -> None:
    planted = build_leaky_tree(tmp_path)
    baseline = tmp_path / "accepted.json"
    done = run(tmp_path, "--write-baseline", baseline)
    assert done.returncode == 0, done.stderr
    text = baseline.read_text()
    assert_no_whole_key(text + done.stderr, planted)
    assert set(json.loads(text)["accepted"]) == {keys.fingerprint(k) for k in planted.values()}
    assert run(tmp_path, "--baseline", baseline).returncode == 0
    settings = tmp_path / "src/settings.py"  # lines move: still accepted
    settings.write_text("# a new header\n\n\n" + settings.read_text())
    assert run(tmp_path, "--baseline", baseline).returncode == 0
    new_key = fake_key("new")
    (tmp_path / "src/new.py").write_text(f"K = '{new_key}'\n")
    done = run(tmp_path, "--baseline", baseline, "--format", "json")
    assert done.returncode == 1
    assert [f["evidence"] for f in json.loads(done.stdout)["findings"]] == [keys.mask(new_key)]
    (tmp_path / ".vsms-guard.toml").write_text('[scan]\nbaseline = "accepted.json"\n')
    assert len(json.loads(run(tmp_path, "--format", "json").stdout)["findings"]) == 1


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"format": "vsms-guard-baseline", "accepted": []}', '{"results": {"a": [1]}}',
     '["x"]', '{"results": {"a.py": [{"hashed_secret": "not hex!"}]}}'],
)  # fmt: skip
def test_malformed_baseline_is_one_line_and_exit_2(tmp_path: Path, content: str) -> None:
    (tmp_path / "a.py").write_text(f"K = '{fake_key('a')}'\n")
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    done = run(tmp_path, "--baseline", bad)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("vsms-guard: error:") and done.stderr.count("\n") == 1
    assert "malformed baseline" in done.stderr and "Traceback" not in done.stderr


def test_a_key_pasted_into_a_baseline_is_not_echoed(tmp_path: Path) -> None:
    key = fake_key("pasted-into-baseline")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "vsms-guard-baseline", "accepted": {key: {}}}))
    done = run(tmp_path, "--baseline", bad)
    assert done.returncode == 2 and "is not a hex hash" in done.stderr
    assert key[: len(keys.PREFIX) + 4] not in done.stderr


def test_bad_paths_are_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = run(tmp_path / "nope")
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "gone")
    broken = run(link)
    assert broken.returncode == 2 and "broken symlink" in broken.stderr
    missing_baseline = run(tmp_path, "--baseline", tmp_path / "none.json")
    assert missing_baseline.returncode == 2 and "baseline not found" in missing_baseline.stderr
    for done in (missing, broken, missing_baseline):
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_unreadable_file_is_never_a_silent_pass(tmp_path: Path) -> None:
    base = Path(
        subprocess.run(["mktemp", "-d", "/tmp/vsms-unreadable-XXXXXX"], capture_output=True,
                       text=True, check=True).stdout.strip()
    )  # fmt: skip
    try:
        base.chmod(0o755)
        (base / "ok.py").write_text("x = 1\n")
        secret = base / "locked.env"
        secret.write_text(f"KEY={fake_key('locked')}\n")
        secret.chmod(0o000)
        cmd = [*CLI, "scan", str(base)]
        if os.geteuid() == 0:  # root reads anything: drop to nobody for this run
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"could not check: {base}/locked.env: cannot read: Permission denied" in done.stdout
    finally:
        shutil.rmtree(base)


def test_read_failures_become_problems(tmp_path: Path) -> None:
    leaks, problems = tree.scan_files([(str(tmp_path), "a-folder"), (str(tmp_path / "x"), "x")])
    assert leaks == []
    assert problems == [
        "a-folder: cannot read: Is a directory",
        "x: cannot read: No such file or directory",
    ]


def test_parallel_scan_finds_the_same_as_one_process(tmp_path: Path) -> None:
    planted = {}
    for i in range(tree.PARALLEL_MIN_FILES + 100):
        folder = tmp_path / f"d{i % 13}"
        folder.mkdir(exist_ok=True)
        body = f"line = {i}\n" * 20
        if i % 97 == 0:
            planted[f"d{i % 13}/f{i}.txt"] = fake_key(f"par-{i}")
            body += f"key = {planted[f'd{i % 13}/f{i}.txt']}\n"
        (folder / f"f{i}.txt").write_text(body)
    results = []
    for jobs in (1, 2):
        leaks, problems = tree.collect([tmp_path], tmp_path, jobs=jobs)
        assert problems == []
        results.append(
            {(Path(lk.path).relative_to(tmp_path).as_posix(), lk.hit.key) for lk in leaks}
        )
    assert results[0] == results[1] == set(planted.items())
    # An absurd --jobs is capped (one process per 64 files here), not a fork bomb.
    leaks, problems = tree.collect([tmp_path], tmp_path, jobs=10**6)
    assert problems == [] and {lk.hit.key for lk in leaks} == set(planted.values())


def test_a_dead_worker_is_a_problem_not_a_silent_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(tree.PARALLEL_MIN_FILES):
        (tmp_path / f"f{i}.txt").write_text(f"K = '{fake_key(i)}'\n" if i % 2 else "x\n")
    parent, scan_chunk = os.getpid(), tree._scan_chunk

    def die_in_children(chunk: list[tuple[str, str]]) -> tuple[list, list[str]]:
        if os.getpid() != parent:
            raise MemoryError("a worker ran out of memory")
        return scan_chunk(chunk)

    monkeypatch.setattr(tree, "_scan_chunk", die_in_children)
    leaks, problems = tree.collect([tmp_path], tmp_path, jobs=2)
    assert problems == [f"a scan worker died: {tree.PARALLEL_MIN_FILES // 2} files not checked"]
    assert 0 < len(leaks) < tree.PARALLEL_MIN_FILES // 2  # only the parent's share was scanned


def test_no_traceback_on_bad_options(tmp_path: Path) -> None:
    for args in (["--jobs", "0", str(tmp_path)], ["--format", "xml", str(tmp_path)]):
        done = run(*args)
        assert done.returncode == 2 and "Traceback" not in done.stderr


def test_print_plugin_path_points_at_the_plugin_file() -> None:
    done = run("--print-plugin-path")
    assert done.returncode == 0
    path = Path(done.stdout.strip())
    assert path.name == "detect_secrets_plugin.py" and path.is_file()
    assert "class VirtualSMSKeyDetector" in path.read_text()


@pytest.mark.parametrize("prefilter", ["python", "hyperscan"])
def test_both_prefilters_find_the_same(tmp_path: Path, prefilter: str) -> None:
    planted = build_leaky_tree(tmp_path)
    done = subprocess.run(
        [*CLI, "scan", ".", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "VSMS_GUARD_PREFILTER": prefilter},
    )
    assert done.returncode == 1, done.stderr
    found = {(f["path"], f["fingerprint"]) for f in json.loads(done.stdout)["findings"]}
    assert found == {(rel, keys.fingerprint(key)) for rel, key in planted.items()}


def test_prefilters_agree_on_every_needle_and_offset() -> None:
    from scanners import files

    fast = files.HyperscanPrefilter()
    buf = bytearray(b"x" * 300)
    assert not fast(buf, 300) and not files.find_any(buf, 300)
    for needle in files.NEEDLES:
        for at in (0, 1, 150, 300 - len(needle)):
            data = bytearray(b"x" * 300)
            data[at : at + len(needle)] = needle
            assert fast(data, 300) and files.find_any(data, 300)
            # beyond the length limit ``n`` the needle does not count
            assert fast(data, at) == files.find_any(data, at) is False


def test_unknown_prefilter_choice_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello\n")
    done = subprocess.run(
        [*CLI, "scan", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "VSMS_GUARD_PREFILTER": "simd"},
    )
    assert done.returncode == 2 and "VSMS_GUARD_PREFILTER" in done.stderr


def test_files_larger_than_the_read_buffer(tmp_path: Path) -> None:
    from scanners.files import READ_BUFFER

    key = fake_key("big")
    filler = "x = 1\n" * (READ_BUFFER // 6 + 1000)
    (tmp_path / "big.py").write_text(filler + f"KEY = '{key}'\n")
    leaks, problems = tree.collect([tmp_path], tmp_path)
    assert problems == []
    assert [(leak.hit.key, leak.hit.line) for leak in leaks] == [(key, filler.count("\n") + 1)]


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    for args in (["--staged", "--history"], ["--format", "xml"], ["--no-such-option"]):
        done = run(*args, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.startswith("vsms-guard scan: error:") and done.stderr.count("\n") == 1
