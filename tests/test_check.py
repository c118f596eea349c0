"""``vsms-guard check``: every checker over one tree, one report, one exit code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fakes import fake_key
from vsms_guard import checks
from vsms_guard.config import Config
from vsms_guard.errors import GuardError

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "vsms-guard")
SEMGREP = os.environ.get("VSMS_GUARD_SEMGREP") or str(ROOT / ".tools/semgrep/bin/semgrep")


def exploding_checker(root: Path, config: Config) -> checks.Report:
    raise RuntimeError(f"checker bug while reading {root} with {fake_key('boom')}")


@pytest.fixture
def env() -> dict[str, str]:
    if not os.access(SEMGREP, os.X_OK):
        pytest.skip("semgrep is not installed (run: make tools)")
    return {**os.environ, "VSMS_GUARD_SEMGREP": SEMGREP}


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "check", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An agent project with one problem for each checker (no Python dependencies to audit)."""
    (tmp_path / "src").mkdir()
    (tmp_path / ".env.example").write_text(f"VIRTUALSMS_API_KEY={fake_key('leak')}\n")
    (tmp_path / "package.json").write_text('{"dependencies": {"virtualsms-mcp": "1.0.3"}}\n')
    shutil.copy(ROOT / "tests/semgrep_cases/js_bad.ts", tmp_path / "src/server.ts")
    return tmp_path


def test_one_report_from_every_checker(project: Path, env: dict[str, str]) -> None:
    done = cli(".", "--format", "json", env=env, cwd=project)
    assert done.returncode == 1, done.stderr
    body = json.loads(done.stdout)
    assert body["problems"] == []
    checkers = {f["checker"] for f in body["findings"]}
    assert {"versions", "semgrep"} <= checkers
    paths = {f["path"] for f in body["findings"]}
    assert {".env.example", "package.json", "src/server.ts"} <= paths
    assert fake_key("leak") not in done.stdout  # a key is never printed whole


def test_sarif_output_file_and_github_annotations(project: Path, env: dict[str, str]) -> None:
    done = cli(".", "--format", "sarif", "-o", "out.sarif", "--github", env=env, cwd=project)
    assert done.returncode == 1
    sarif = json.loads((project / "out.sarif").read_text())
    run = sarif["runs"][0]
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    }
    assert {"package.json", "src/server.ts", ".env.example"} <= uris
    assert run["invocations"][0]["executionSuccessful"] is True
    text, _, annotations = done.stdout.partition(" findings\n")
    assert "package.json:1: error: vsms-versions/unsupported" in text  # readable log
    assert "::error file=package.json,line=1,title=vsms-versions/unsupported::" in annotations
    assert all(
        line.startswith(("::error", "::warning", "::notice")) for line in annotations.splitlines()
    )


def test_clean_project_passes(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "package.json").write_text('{"dependencies": {"virtualsms-mcp": "1.2.3"}}\n')
    done = cli(str(tmp_path), env=env, cwd=tmp_path)
    # a JS-only project: nothing for pip-audit, said as an info line, not a failure
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "1 finding" and "info: vsms-audit/nothing-to-audit" in lines[0]


def test_missing_semgrep_is_could_not_check_but_others_still_report(
    project: Path, env: dict[str, str]
) -> None:
    broken = {**env, "VSMS_GUARD_SEMGREP": str(project / "no-such-semgrep")}
    done = cli(".", env=broken, cwd=project)
    assert done.returncode == 2
    assert "could not check: semgrep: VSMS_GUARD_SEMGREP=" in done.stdout
    assert "package.json:1: error: vsms-versions/unsupported" in done.stdout


def test_bad_config_is_could_not_check(project: Path, env: dict[str, str]) -> None:
    (project / ".vsms-guard.toml").write_text('[versions]\nproduction = "yes"\n')
    done = cli(".", "--only", "versions", env=env, cwd=project)
    assert done.returncode == 2
    assert "could not check: versions:" in done.stdout and "production" in done.stdout


def test_only_skip_and_production(project: Path, env: dict[str, str]) -> None:
    (project / "package.json").write_text('{"dependencies": {"virtualsms-mcp": "^1.2.0"}}\n')
    relaxed = cli(".", "--only", "versions", env=env, cwd=project)
    assert (relaxed.returncode, relaxed.stdout) == (0, "0 findings\n")
    strict = cli(
        ".", "--only", "versions", "--production", "--fail-on", "warning", env=env, cwd=project
    )
    assert strict.returncode == 1 and "vsms-versions/not-pinned" in strict.stdout
    nothing = cli(".", "--only", "versions", "--skip", "versions", env=env, cwd=project)
    assert nothing.returncode == 2 and "no checker to run" in nothing.stderr


def test_a_crashing_checker_is_could_not_check(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(checks.CHECKERS, "boom", "tests.test_check:exploding_checker")
    report = checks.run(project, Config(), ["boom", "versions"])
    assert report.exit_code() == 2
    [problem] = report.problems
    assert problem.startswith("boom: internal error: RuntimeError: checker bug")
    assert fake_key("boom") not in problem
    assert [f.rule_id for f in report.findings] == ["vsms-versions/unsupported"]
    with pytest.raises(GuardError, match="unknown checker"):
        checks.run(project, Config(), ["nope"])


def test_missing_path_is_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    done = cli("does-not-exist", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "vsms-guard: error: does-not-exist: no such file or directory\n"


def test_action_check_step_writes_sarif_and_exit_code(project: Path, env: dict[str, str]) -> None:
    """The composite action's own Check step script, run by bash as the runner would."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "check")
    runner_temp = project / "runner"
    (runner_temp / "guard-env/bin").mkdir(parents=True)
    (runner_temp / "guard-env/bin/vsms-guard").symlink_to(CLI)
    output = project / "github_output"
    step_env = {
        **env,
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_OUTPUT": str(output),
        "CHECK_PATH": ".",
        "CHECK_ARGS": "--skip audit --production",
        "SARIF_FILE": "vsms-guard.sarif",
    }
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=project, env=step_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr  # the step records the code; a later step fails
    assert output.read_text() == "exit-code=1\n"
    sarif = json.loads((project / "vsms-guard.sarif").read_text())
    assert sarif["runs"][0]["results"]
    assert "::error file=package.json" in done.stdout
