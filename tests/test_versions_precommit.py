"""The real pre-commit framework runs our ``vsms-versions`` hook (from .pre-commit-hooks.yaml) on
a commit: an unsupported virtualsms-mcp pin is blocked, the upgrade goes through, and files the
hook's ``files`` pattern does not name are never passed to it.

``pre-commit try-repo`` pip-installs this project into the hook's environment, so this is slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.precommit_helpers import git

pytestmark = pytest.mark.slow


def test_hook_blocks_unsupported_pin_and_passes_the_upgrade(
    hook_repo: Path, tmp_path: Path
) -> None:
    user = tmp_path / "agent"
    user.mkdir()
    git(user, "init", "-q")
    hook = user / ".git/hooks/pre-commit"
    hook.write_text(f"#!/bin/sh\nexec pre-commit try-repo '{hook_repo}' vsms-versions\n")
    hook.chmod(0o755)

    config = '{"mcpServers": {"sms": {"command": "npx", "args": ["-y", "virtualsms-mcp@1.0.4"]}}}'
    (user / ".cursor").mkdir()
    (user / ".cursor/mcp.json").write_text(config)
    (user / "NOTES.md").write_text("we run virtualsms-mcp@0.9.0 somewhere\n")  # not a hook file
    git(user, "add", "-A")
    blocked = git(user, "commit", "-m", "add MCP config", check=False)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert ".cursor/mcp.json:1: error: vsms-versions/unsupported" in output
    assert "NOTES.md" not in output

    (user / ".cursor/mcp.json").write_text(config.replace("1.0.4", "1.2.3"))
    git(user, "add", "-A")
    passed = git(user, "commit", "-m", "pin a supported release", check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout + passed.stderr
