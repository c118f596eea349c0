"""The real pre-commit framework runs our ``vsms-secrets`` hook from a snapshot of this checkout:
a commit that adds a key is blocked, the fixed commit goes through.

``pre-commit try-repo`` builds the hook's environment (pip-installs this project) on every
run, so this test takes a while; it runs by default all the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import fake_key
from tests.precommit_helpers import git
from vsms_guard import keys

pytestmark = pytest.mark.slow


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
