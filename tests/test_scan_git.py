"""``vsms-guard scan --staged`` and ``--history`` on real git repositories built by the tests."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scanners import git
from tests.fakes import fake_key
from vsms_guard import keys
from vsms_guard.errors import GuardError

CLI = [str(Path(sys.executable).with_name("vsms-guard"))]


def sh(repo: Path, *args: str) -> str:
    env_args = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    done = subprocess.run(
        ["git", *env_args, *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    sh(repo, "add", "-A")
    sh(repo, "commit", "-q", "--no-verify", "-m", message)
    return sh(repo, "rev-parse", "HEAD")


def scan(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "scan", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    sh(path, "init", "-q", "-b", "main")
    return path


def findings(done: subprocess.CompletedProcess[str]) -> list[dict]:
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)["findings"]


def test_history_finds_a_key_added_then_deleted(repo: Path) -> None:
    deleted, branch_key, encoded = fake_key("deleted"), fake_key("branch"), fake_key("b64")
    (repo / "README.md").write_text("# demo\n")
    commit(repo, "initial")
    (repo / "app.py").write_text(f"import os\n\nKEY = '{deleted}'\n")
    added_at = commit(repo, "add client")
    (repo / "app.py").write_text("import os\n\nKEY = os.environ['VIRTUALSMS_API_KEY']\n")
    commit(repo, "read the key from the environment")
    sh(repo, "checkout", "-q", "-b", "feature")
    (repo / "deploy").mkdir()
    (repo / "deploy/secret.yaml").write_text(
        f"data:\n  KEY: {base64.b64encode(branch_key.encode()).decode()}\n"
    )
    (repo / "notes.txt").write_text(f"old: {encoded}  # pragma: allowlist secret\n")
    branch_commit = commit(repo, "deploy manifest")
    sh(repo, "checkout", "-q", "main")
    assert deleted not in (repo / "app.py").read_text()  # the working tree is clean

    done = scan("--history", "--format", "json", cwd=repo)
    assert done.returncode == 1
    got = {(f["commit"], f["path"], f["line"], f["evidence"]) for f in findings(done)}
    assert got == {
        (added_at, "app.py", 3, keys.mask(deleted)),
        (branch_commit, "deploy/secret.yaml", 2, keys.mask(branch_key)),
    }
    text = scan("--history", cwd=repo).stdout
    assert f"{added_at[:12]}:app.py:3:" in text
    for key in (deleted, branch_key, encoded):
        assert key not in done.stdout + text

    # A range limits the commits; a path argument names the repository.
    ranged = scan(
        repo, "--history", "--range", "main..feature", "--format", "json", cwd=repo.parent
    )
    assert [f["commit"] for f in findings(ranged)] == [branch_commit]
    assert scan("--history", "main~1..main", cwd=repo).returncode == 0


def test_history_takes_a_repository_path_and_an_explicit_range(repo: Path) -> None:
    """``--history PATH`` used to read PATH as a revision range (``git log /repo`` failed)."""
    (repo / "README.md").write_text("# demo\n")
    commit(repo, "initial")
    key = fake_key("history-path")
    (repo / "app.py").write_text(f"KEY = '{key}'\n")
    added_at = commit(repo, "add client")
    for args, cwd in (
        (["--history", str(repo)], repo.parent),
        (["--history", "."], repo),
        (["--history", "repo"], repo.parent),
        (["--history", "--range", "main~1..main", str(repo)], repo.parent),
        (["--range", "main~1..main"], repo),
        (["--history", "main~1..main"], repo),  # the older spelling still works
    ):
        found = findings(scan(*args, "--format", "json", cwd=cwd))
        assert [(f["commit"], f["path"]) for f in found] == [(added_at, "app.py")], args
    assert scan("--history", "--range", "main~1..main~1", cwd=repo).returncode == 0
    for args in (["--staged", "--range", "main"], ["--history", "nosuchdir", "--range", "main"]):
        done = scan(*args, cwd=repo)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, args
        assert "Traceback" not in done.stderr


def test_history_line_numbers_follow_hunks(repo: Path) -> None:
    first, second = fake_key("h1"), fake_key("h2")
    (repo / "a.txt").write_text("".join(f"line {i}\n" for i in range(1, 41)))
    commit(repo, "base")
    lines = (repo / "a.txt").read_text().splitlines(keepends=True)
    lines[9] = f"key {first}\n"  # line 10
    lines.insert(30, f"key {second}\n")  # line 31
    (repo / "a.txt").write_text("".join(lines))
    commit(repo, "two keys")
    got = {
        (f["line"], f["evidence"])
        for f in findings(scan("--history", "--format", "json", cwd=repo))
    }
    assert got == {(10, keys.mask(first)), (31, keys.mask(second))}


def test_history_bad_range_and_non_git_folder_exit_2(repo: Path, tmp_path: Path) -> None:
    (repo / "a.txt").write_text("x\n")
    commit(repo, "one")
    bad = scan("--history", "nosuchbranch..main", cwd=repo)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "git log failed" in bad.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    for args in (["--history"], ["--staged"]):
        done = scan(*args, cwd=plain)
        assert done.returncode == 2
        assert "not a git repository" in done.stderr and done.stderr.count("\n") == 1
        assert "Traceback" not in done.stderr


def test_staged_reads_the_index_not_the_working_tree(repo: Path) -> None:
    key = fake_key("staged")
    (repo / "config.py").write_text(f"KEY = '{key}'\n")
    sh(repo, "add", "config.py")  # staged in a repository without any commit yet
    (repo / "config.py").write_text("KEY = 'vsms_your_key_here'\n")  # fixed only on disk
    done = scan("--staged", "--format", "json", cwd=repo)
    assert [(f["path"], f["line"], f["evidence"]) for f in findings(done)] == [
        ("config.py", 1, keys.mask(key))
    ]
    assert key not in done.stdout + done.stderr
    # The reverse: fixed in the index, key only on disk, is clean for --staged.
    sh(repo, "add", "config.py")
    (repo / "config.py").write_text(f"KEY = '{key}'\n")
    assert scan("--staged", cwd=repo).returncode == 0


def test_staged_with_file_names_as_pre_commit_passes_them(repo: Path) -> None:
    (repo / "src").mkdir()
    keyed, other = fake_key("named"), fake_key("unnamed")
    (repo / "src/a.py").write_text(f"A = '{keyed}'\n")
    (repo / "src/b.py").write_text(f"B = '{other}'\n")
    (repo / "c.bin").write_bytes(b"\0\1" + keyed.encode())
    sh(repo, "add", "-A")
    only_a = findings(scan("--staged", "src/a.py", "c.bin", "--format", "json", cwd=repo))
    assert [f["evidence"] for f in only_a] == [keys.mask(keyed)]
    from_sub = findings(scan("--staged", "b.py", "--format", "json", cwd=repo / "src"))
    assert [(f["path"], f["evidence"]) for f in from_sub] == [("src/b.py", keys.mask(other))]
    every = findings(scan("--staged", "--format", "json", cwd=repo))
    assert {f["path"] for f in every} == {"src/a.py", "src/b.py"}
    missing = scan("--staged", "src/nope.py", cwd=repo)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_staged_changes_only_and_excludes(repo: Path) -> None:
    old = fake_key("committed")
    (repo / "old.py").write_text(f"K = '{old}'\n")
    commit(repo, "old key already in history")
    (repo / "fixtures").mkdir()
    (repo / "fixtures/sample.env").write_text(f"K={fake_key('fixture')}\n")
    (repo / "new.py").write_text(f"K = '{fake_key('fresh')}'\n")
    sh(repo, "add", "-A")
    (repo / ".vsms-guard.toml").write_text('[scan]\nexclude = ["fixtures/"]\n')
    got = findings(scan("--staged", "--format", "json", cwd=repo))
    assert [f["evidence"] for f in got] == [keys.mask(fake_key("fresh"))]


def test_collect_functions_raise_guard_errors(tmp_path: Path) -> None:
    with pytest.raises(GuardError, match="not a git repository"):
        git.collect_history(tmp_path)
    with pytest.raises(GuardError, match="no such folder"):
        git.repo_root(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x\n")
    with pytest.raises(GuardError, match="file.txt: not a folder"):
        git.repo_root(tmp_path / "file.txt")


def test_history_finds_keys_in_utf16_files_git_calls_binary(repo: Path) -> None:
    key, in_png = fake_key("utf16-history"), fake_key("png-history")
    (repo / "win settings.ini").write_bytes(f"[s]\r\nx=1\r\napi_key={key}\r\n".encode("utf-16"))
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0" + in_png.encode() + b"\0" * 16)
    added_at = commit(repo, "windows config")
    sh(repo, "mv", "win settings.ini", "settings.ini")
    commit(repo, "rename")
    (repo / "settings.ini").write_bytes(f"[s]\r\napi_key={key}\r\n".encode("utf-16"))
    commit(repo, "edit")  # the key is still there: not reported a second time
    (repo / "settings.ini").write_bytes("[s]\r\n".encode("utf-16"))
    commit(repo, "remove the key")
    done = scan("--history", "--format", "json", cwd=repo)
    got = [(f["commit"], f["path"], f["line"], f["properties"]["encoding"]) for f in findings(done)]
    assert got == [(added_at, "win settings.ini", 3, "utf-16")]  # the PNG is binary: skipped
    assert key not in done.stdout + done.stderr
    (repo / ".vsms-guard.toml").write_text('exclude = ["*.ini"]\n')
    assert findings(scan("--history", "--format", "json", cwd=repo)) == []


def test_history_added_lines_that_look_like_diff_headers(repo: Path) -> None:
    first, second = fake_key("plusplus-1"), fake_key("plusplus-2")
    (repo / "a.txt").write_text("".join(f"line {i}\n" for i in range(1, 41)))
    commit(repo, "base")
    lines = (repo / "a.txt").read_text().splitlines(keepends=True)
    lines[4] = "++ b/decoy.txt\n"  # shown as "+++ b/decoy.txt" in the diff
    lines[9] = f"++ {first}\n"
    lines[29] = f"key {second}\n"
    (repo / "a.txt").write_text("".join(lines))
    commit(repo, "lines starting with ++")
    got = {
        (f["path"], f["line"], f["evidence"])
        for f in findings(scan("--history", "--format", "json", cwd=repo))
    }
    assert got == {("a.txt", 10, keys.mask(first)), ("a.txt", 30, keys.mask(second))}


def test_commit_blocks_split_only_between_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    commits = [b"\0" + bytes([65 + i]) * 40 + b"\n\n" + b"+x\n" * (i * 7) for i in range(9)]
    stream = b"".join(commits)
    for size in range(1, 40):  # every chunk size, so boundaries fall at every offset
        monkeypatch.setattr(git, "READ_CHUNK", size)
        blocks = list(git._commit_blocks(io.BytesIO(stream)))
        assert b"".join(blocks) == stream
        assert all(b.startswith(b"\0") and b.count(b"\n\0") == b.count(b"\0") - 1 for b in blocks)


def test_history_finds_a_key_added_while_resolving_a_merge(repo: Path) -> None:
    key = fake_key("merge-resolution")
    (repo / "f.txt").write_text("".join(f"{i}\n" for i in range(1, 11)))
    commit(repo, "base")
    sh(repo, "checkout", "-q", "-b", "side")
    (repo / "f.txt").write_text((repo / "f.txt").read_text().replace("5\n", "five (side)\n"))
    commit(repo, "side")
    sh(repo, "checkout", "-q", "main")
    (repo / "f.txt").write_text((repo / "f.txt").read_text().replace("5\n", "five (main)\n"))
    commit(repo, "main")
    merged = subprocess.run(["git", "merge", "-q", "side"], cwd=repo, capture_output=True)
    assert merged.returncode != 0  # a conflict, resolved by hand with a key in it
    (repo / "f.txt").write_text("".join(f"{i}\n" for i in range(1, 5)) + f"KEY={key}\n")
    merge = commit(repo, "merge side")
    got = [
        (f["commit"], f["path"], f["line"])
        for f in findings(scan("--history", "--format", "json", cwd=repo))
    ]
    assert got == [(merge, "f.txt", 5)]


def test_history_finds_keys_in_text_that_gitattributes_marks_binary(repo: Path) -> None:
    key = fake_key("gitattributes")
    (repo / ".gitattributes").write_text("*.secret -diff\n")
    (repo / "prod.secret").write_text(f"a=1\nKEY={key}\n")
    added_at = commit(repo, "secrets file that git diff shows as binary")
    got = [
        (f["commit"], f["path"], f["line"])
        for f in findings(scan("--history", "--format", "json", cwd=repo))
    ]
    assert got == [(added_at, "prod.secret", 2)]
