"""The real pre-commit framework runs our ``vsms-secrets`` hook from a snapshot of this checkout:
a commit that adds a key is blocked, the fixed commit goes through.

``pre-commit try-repo`` builds the hook's environment (pip-installs this project) on every
run, so this test takes a while; it runs by default all the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import fake_key
from vsms_guard import keys

CHECKOUT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GIT_ID = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
pytestmark = pytest.mark.slow


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["git", *GIT_ID, *args], cwd=cwd, capture_output=True, text=True, check=check, env=env
    )


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed snapshot of the working checkout (try-repo only sees committed files)."""
    snapshot = tmp_path_factory.mktemp("hook-repo")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=CHECKOUT,
        capture_output=True,
        check=True,
    ).stdout
    for rel in filter(None, listed.decode().split("\0")):
        source = CHECKOUT / rel
        if source.is_file():  # files being rewritten by someone else may vanish for a moment
            (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, snapshot / rel)
    assert (snapshot / ".pre-commit-hooks.yaml").is_file()
    git(snapshot, "init", "-q")
    git(snapshot, "add", "-A")
    git(snapshot, "commit", "-q", "--no-verify", "-m", "snapshot")
    return snapshot


def test_try_repo_blocks_a_key_and_lets_the_fix_through(hook_repo: Path, tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    git(user, "init", "-q")
    hook = user / ".git/hooks/pre-commit"
    hook.write_text(f"#!/bin/sh\nexec pre-commit try-repo '{hook_repo}' vsms-secrets\n")
    hook.chmod(0o755)

    key = fake_key("pre-commit")
    (user / "app.py").write_text(f'API_KEY = "{key}"\n')
    (user / "README.md").write_text("Set VIRTUALSMS_API_KEY=vsms_your_key_here\n")
    git(user, "add", "-A")
    blocked = git(user, "commit", "-m", "add client", check=False)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert "vsms-key" in output and keys.mask(key) in output
    assert key not in output
    assert git(user, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0

    (user / "app.py").write_text('import os\n\nAPI_KEY = os.environ["VIRTUALSMS_API_KEY"]\n')
    git(user, "add", "-A")
    passed = git(user, "commit", "-m", "read the key from the environment", check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout + passed.stderr
    assert git(user, "log", "--format=%s").stdout.strip() == "read the key from the environment"
