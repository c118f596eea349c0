"""Supported-version gate: every finder on realistic files, range semantics, lockfile precedence."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fakes import fake_key
from vsms_guard.config import Config
from vsms_guard.errors import GuardError
from vsms_guard.findings import Severity
from vsms_guard.versions import Options, check, check_paths, iter_candidate_files, load_policy

CLI = str(Path(sys.executable).parent / "vsms-guard")


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def gate(root: Path, **options: object) -> list[tuple[str, str, int | None, str]]:
    """(rule suffix, path, line, severity) of every finding, sorted; run from ``root``, as
    ``vsms-guard versions .`` would be, so paths are relative to it."""
    with contextlib.chdir(root):
        report = check_paths([Path(".")], Path("."), Options(**options))  # type: ignore[arg-type]
    return sorted(
        (f.rule_id.split("/")[1], f.path or "", f.line, f.severity.value) for f in report.findings
    )


# --- policy and range semantics --------------------------------------------------------------


def test_policy_table_matches_the_security_policy() -> None:
    mcp = load_policy().packages["virtualsms-mcp"]
    assert [mcp.status_of(v) for v in ("1.2.0", "1.3.7", "1.1.4", "1.0.9", "0.9.0")] == [
        "supported",
        "supported",
        "critical-fixes-only",
        "unsupported",
        "unsupported",
    ]


@pytest.mark.parametrize(
    ("spec", "statuses"),
    [
        ("^1.2.0", {"supported"}),
        ("~1.1.3", {"critical-fixes-only"}),
        (">=1.1.5", {"supported", "critical-fixes-only"}),
        ("^1.0.0", {"supported", "critical-fixes-only", "unsupported"}),
        ("1.x", {"supported", "critical-fixes-only", "unsupported"}),
        ("*", {"supported", "critical-fixes-only", "unsupported"}),
        (">1.1.9 <1.2.0", {"critical-fixes-only"}),
        ("^1.2.1 || ^0.4", {"supported", "unsupported"}),
    ],
)
def test_ranges_are_evaluated_with_npm_semver(spec: str, statuses: set[str]) -> None:
    assert load_policy().packages["virtualsms-mcp"].admitted(spec) == statuses


def test_pypi_package_uses_pep440() -> None:
    guard = load_policy().packages["vsms-guard"]
    assert guard.admitted("~=0.1") == {"supported"}
    assert guard.admitted(">=0.0.5") == {"supported", "unsupported"}


def test_a_new_policy_release_is_a_data_change(tmp_path: Path) -> None:
    policy = write(
        tmp_path,
        "policy.toml",
        """
        [[package]]
        name = "virtualsms-mcp"
        support = [
            { range = ">=1.3.0", status = "supported" },
            { range = "<1.3.0", status = "unsupported" },
        ]
        """,
    )
    write(tmp_path, "app/package.json", '{"dependencies": {"virtualsms-mcp": "1.2.3"}}')
    assert gate(tmp_path / "app", policy=load_policy(policy)) == [
        ("unsupported", "package.json", 1, "error")
    ]
    assert gate(tmp_path / "app") == []


@pytest.mark.parametrize(
    "body",
    [
        "[[package]]\nname = 'x'\nsupport = [{ range = '>=1', status = 'great' }]\n",
        "[[package]]\nname = 'x'\nsupport = [{ range = 'not a range', status = 'supported' }]\n",
        "[[package]]\nname = 'x'\n",
        "package = [",
    ],
)
def test_a_broken_policy_is_a_clear_error(tmp_path: Path, body: str) -> None:
    with pytest.raises(GuardError):
        load_policy(write(tmp_path, "p.toml", body))


# --- package.json and lockfiles --------------------------------------------------------------


def test_package_json_every_section_and_overrides(tmp_path: Path) -> None:
    write(
        tmp_path,
        "package.json",
        """
        {
          "name": "agent",
          "dependencies": {"virtualsms-mcp": "1.0.4", "left-pad": "^1.3.0"},
          "devDependencies": {"virtualsms-mcp": "^1.2.0"},
          "optionalDependencies": {"sms-alias": "npm:virtualsms-mcp@~1.1.0"},
          "peerDependencies": {"virtualsms-mcp": ">=1.0.0"},
          "overrides": {"some-agent-kit": {"virtualsms-mcp": "1.1.2"}},
          "scripts": {"mcp": "npx -y virtualsms-mcp@1.0.1"}
        }
        """,
    )
    assert gate(tmp_path) == [
        ("critical-fixes-only", "package.json", 7, "warning"),
        ("range-admits-critical-fixes-only", "package.json", 5, "warning"),
        ("range-admits-unsupported", "package.json", 6, "error"),
        ("unsupported", "package.json", 3, "error"),
        ("unsupported", "package.json", 8, "error"),
    ]


def test_lockfile_decides_over_a_range(tmp_path: Path) -> None:
    write(tmp_path, "package.json", '{"dependencies": {"virtualsms-mcp": "^1.0.0"}}')
    assert gate(tmp_path) == [("range-admits-unsupported", "package.json", 1, "error")]
    lock = {
        "name": "agent",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {"name": "agent", "dependencies": {"virtualsms-mcp": "^1.0.0"}},
            "node_modules/virtualsms-mcp": {
                "version": "1.2.3",
                "resolved": "https://registry.npmjs.org/virtualsms-mcp/-/virtualsms-mcp-1.2.3.tgz",
            },
        },
    }
    write(tmp_path, "package-lock.json", json.dumps(lock, indent=2))
    assert gate(tmp_path) == []
    lock["packages"]["node_modules/virtualsms-mcp"]["version"] = "1.0.2"
    write(tmp_path, "package-lock.json", json.dumps(lock, indent=2))
    assert gate(tmp_path) == [("unsupported", "package-lock.json", 12, "error")]


def test_workspace_root_lockfile_resolves_member_ranges(tmp_path: Path) -> None:
    write(tmp_path, "packages/bot/package.json", '{"dependencies": {"virtualsms-mcp": "*"}}')
    lock = {
        "lockfileVersion": 2,
        "packages": {
            "": {"workspaces": ["packages/*"]},
            "packages/bot/node_modules/virtualsms-mcp": {"version": "1.2.5"},
        },
    }
    write(tmp_path, "package-lock.json", json.dumps(lock))
    assert gate(tmp_path) == []


def test_package_lock_v1_nested_dependencies(tmp_path: Path) -> None:
    lock = {
        "lockfileVersion": 1,
        "dependencies": {
            "agent-kit": {
                "version": "2.0.0",
                "dependencies": {"virtualsms-mcp": {"version": "1.1.0"}},
            },
            "sms": {"version": "npm:virtualsms-mcp@0.9.1"},
        },
    }
    write(tmp_path, "npm-shrinkwrap.json", json.dumps(lock, indent=2))
    assert gate(tmp_path) == [
        ("critical-fixes-only", "npm-shrinkwrap.json", 7, "warning"),
        ("unsupported", "npm-shrinkwrap.json", 12, "error"),
    ]


@pytest.mark.parametrize(
    ("lock_text", "line"),
    [
        (  # pnpm v5
            """
            lockfileVersion: 5.4
            specifiers:
              virtualsms-mcp: ^1.0.0
            dependencies:
              virtualsms-mcp: 1.0.7
            packages:
              /virtualsms-mcp/1.0.7:
                resolution: {integrity: sha512-AAAA}
                dev: false
            """,
            7,
        ),
        (  # pnpm v6
            """
            lockfileVersion: '6.0'
            dependencies:
              virtualsms-mcp:
                specifier: ^1.0.0
                version: 1.0.7
            packages:
              /virtualsms-mcp@1.0.7:
                resolution: {integrity: sha512-AAAA}
            """,
            7,
        ),
        (  # pnpm v9
            """
            lockfileVersion: '9.0'
            importers:
              .:
                dependencies:
                  virtualsms-mcp:
                    specifier: ^1.0.0
                    version: 1.0.7(zod@3.23.8)
            packages:
              virtualsms-mcp@1.0.7:
                resolution: {integrity: sha512-AAAA}
            snapshots:
              virtualsms-mcp@1.0.7(zod@3.23.8):
                dependencies: {}
            """,
            9,
        ),
    ],
)
def test_pnpm_lock_versions(tmp_path: Path, lock_text: str, line: int) -> None:
    write(tmp_path, "package.json", '{"dependencies": {"virtualsms-mcp": "^1.0.0"}}')
    write(tmp_path, "pnpm-lock.yaml", lock_text)
    assert gate(tmp_path) == [("unsupported", "pnpm-lock.yaml", line, "error")]


def test_yarn_classic_and_berry(tmp_path: Path) -> None:
    write(
        tmp_path,
        "classic/yarn.lock",
        """
        # THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
        # yarn lockfile v1


        left-pad@^1.3.0:
          version "1.3.0"

        virtualsms-mcp@^1.1.0, virtualsms-mcp@~1.1.2:
          version "1.1.3"
          resolved "https://registry.yarnpkg.com/virtualsms-mcp/-/virtualsms-mcp-1.1.3.tgz"
        """,
    )
    write(
        tmp_path,
        "berry/yarn.lock",
        """
        __metadata:
          version: 8
          cacheKey: 10c0

        "virtualsms-mcp@npm:^1.0.0":
          version: 1.0.5
          resolution: "virtualsms-mcp@npm:1.0.5"
          languageName: node
          linkType: hard
        """,
    )
    assert gate(tmp_path) == [
        ("critical-fixes-only", "classic/yarn.lock", 8, "warning"),
        ("unsupported", "berry/yarn.lock", 5, "error"),
    ]


# --- MCP client configurations ---------------------------------------------------------------


def test_claude_desktop_jsonc_with_bom_comments_and_trailing_commas(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """
        {
          // Claude Desktop
          "mcpServers": {
            "virtualsms": {
              "command": "npx",
              "args": ["-y", "virtualsms-mcp@1.0.2",],
              "env": {"VIRTUALSMS_API_KEY": "vsms_your_key_here"},
            },
          },
        }
        """
    ).lstrip()
    write(tmp_path, "claude_desktop_config.json", "\ufeff".encode() + text.encode())
    assert gate(tmp_path) == [("unsupported", "claude_desktop_config.json", 6, "error")]


def test_cursor_unpinned_npx_floats_info_then_warning_in_production(tmp_path: Path) -> None:
    write(
        tmp_path,
        ".cursor/mcp.json",
        '{"mcpServers": {"sms": {"command": "npx", "args": ["virtualsms-mcp"]}}}',
    )
    assert gate(tmp_path) == [("floating", ".cursor/mcp.json", 1, "info")]
    assert gate(tmp_path, production=True) == [("floating", ".cursor/mcp.json", 1, "warning")]


def test_windows_cmd_wrapper_and_caret_range(tmp_path: Path) -> None:
    write(
        tmp_path,
        ".mcp.json",
        """
        {"mcpServers": {
          "sms": {"command": "cmd", "args": ["/c", "npx", "-y", "virtualsms-mcp@^1.2.0"]}
        }}
        """,
    )
    assert gate(tmp_path) == []
    assert gate(tmp_path, production=True) == [("not-pinned", ".mcp.json", 2, "warning")]


def test_vscode_servers_and_hosted_endpoint(tmp_path: Path) -> None:
    write(
        tmp_path,
        ".vscode/mcp.json",
        """
        {
          "inputs": [{"type": "promptString", "id": "vsms-key", "password": true}],
          "servers": {
            "virtualsms": {"type": "stdio", "command": "npx", "args": ["virtualsms-mcp@~1.1.0"]},
            "hosted": {"type": "http", "url": "https://mcp.virtualsms.io/mcp"}
          }
        }
        """,
    )
    assert gate(tmp_path) == [
        ("hosted", ".vscode/mcp.json", 5, "info"),
        ("range-admits-critical-fixes-only", ".vscode/mcp.json", 4, "warning"),
    ]


def test_windsurf_server_url_is_hosted(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mcp_config.json",
        '{"mcpServers": {"sms": {"serverUrl": "https://virtualsms.io/mcp"}}}',
    )
    assert gate(tmp_path) == [("hosted", "mcp_config.json", 1, "info")]


def test_zed_context_servers_both_shapes(tmp_path: Path) -> None:
    write(
        tmp_path,
        ".zed/settings.json",
        """
        // Zed settings
        {
          "theme": "One Dark",
          "context_servers": {
            "virtualsms": {
              "command": {"path": "npx", "args": ["-y", "virtualsms-mcp@1.1.1"], "env": {}}
            },
            "vsms2": {"source": "custom", "command": "npx", "args": ["virtualsms-mcp@0.8.0"]},
          },
        }
        """,
    )
    assert gate(tmp_path) == [
        ("critical-fixes-only", ".zed/settings.json", 6, "warning"),
        ("unsupported", ".zed/settings.json", 8, "error"),
    ]


def test_codex_config_toml(tmp_path: Path) -> None:
    write(
        tmp_path,
        ".codex/config.toml",
        """
        model = "gpt-5"

        [mcp_servers.virtualsms]
        command = "npx"
        args = ["-y", "virtualsms-mcp@1.0.0"]

        [mcp_servers.virtualsms.env]
        VIRTUALSMS_API_KEY = "vsms_your_key_here"
        """,
    )
    assert gate(tmp_path, critical_severity=Severity.ERROR) == [
        ("unsupported", ".codex/config.toml", 5, "error")
    ]


@pytest.mark.parametrize(
    "text",
    [
        '{"mcpServers": {"sms": {"command": "npx", "args": ["virtualsms-mcp@1.0.0"]}',
        '{"mcpServers": {"sms": {"command": "npx" "args": ["virtualsms-mcp"]}}}',
    ],
)
def test_unparsable_config_is_a_finding_not_a_crash(tmp_path: Path, text: str) -> None:
    write(tmp_path, "mcp.json", text)
    write(tmp_path, "other/.mcp.json", '{"mcpServers": {"a": {"url": "https://virtualsms.io"}}}')
    assert gate(tmp_path) == [
        ("hosted", "other/.mcp.json", 1, "info"),
        ("parse-error", "mcp.json", None, "error"),
    ]


def test_unrelated_broken_json_is_not_read(tmp_path: Path) -> None:
    write(tmp_path, "broken.json", '{"name": ')
    assert gate(tmp_path) == []


# --- Dockerfiles and scripts -----------------------------------------------------------------


def test_dockerfile_and_ci_scripts(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Dockerfile",
        """
        FROM node:20-slim
        # we used to run virtualsms-mcp@0.9.0 here
        RUN npm install -g \\
              virtualsms-mcp@1.1.4 && npm cache clean --force
        CMD ["virtualsms-mcp"]
        """,
    )
    write(
        tmp_path,
        ".github/workflows/agent.yml",
        """
        jobs:
          e2e:
            runs-on: ubuntu-latest
            steps:
              - run: npx --yes virtualsms-mcp@latest --help
              - run: |
                  pnpm dlx virtualsms-mcp@">=1.0.0 <1.1.0" --version
        """,
    )
    write(tmp_path, "scripts/start.sh", "#!/bin/sh\nexec npx virtualsms-mcp@1.2.3\n")
    assert gate(tmp_path) == [
        ("critical-fixes-only", "Dockerfile", 4, "warning"),
        ("floating", ".github/workflows/agent.yml", 5, "info"),
        ("range-admits-unsupported", ".github/workflows/agent.yml", 7, "error"),
    ]


def test_own_package_in_requirements_and_pip_install(tmp_path: Path) -> None:
    write(tmp_path, "requirements.txt", "httpx>=0.28\nvsms-guard>=0.0.1  # gate\n")
    write(tmp_path, "ci.sh", "pip install 'vsms-guard==0.1.0'\npipx install vsms-guard\n")
    assert gate(tmp_path) == [
        ("floating", "ci.sh", 2, "info"),
        ("range-admits-unsupported", "requirements.txt", 2, "error"),
    ]


def test_excluded_and_dependency_folders_are_skipped(tmp_path: Path) -> None:
    bad = '{"dependencies": {"virtualsms-mcp": "1.0.0"}}'
    write(tmp_path, "node_modules/x/package.json", bad)
    write(tmp_path, "fixtures/package.json", bad)
    config = Config({"exclude": ["fixtures/"]}, tmp_path / "pyproject.toml")
    assert check(tmp_path, config).findings == []
    assert len(check(tmp_path, Config()).findings) == 1


def test_config_section_and_its_errors(tmp_path: Path) -> None:
    write(tmp_path, "package.json", '{"dependencies": {"virtualsms-mcp": "1.1.0"}}')
    strict = Config({"versions": {"critical_fixes_only": "error"}}, tmp_path / "x.toml")
    assert [f.severity for f in check(tmp_path, strict).findings] == [Severity.ERROR]
    for bad in ({"critical_fixes_only": "fatal"}, {"production": "yes"}, {"colour": 1}):
        with pytest.raises(GuardError):
            check(tmp_path, Config({"versions": bad}, tmp_path / "x.toml"))


# --- the command line and the pre-commit hook ------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_exit_codes_and_formats(tmp_path: Path) -> None:
    write(tmp_path, "ok/package.json", '{"dependencies": {"virtualsms-mcp": "1.2.3"}}')
    write(
        tmp_path,
        "bad/.mcp.json",
        '{"mcpServers": {"s": {"command": "npx", "args": ["virtualsms-mcp@1.0.0"]}}}',
    )
    ok = run_cli("versions", "ok", cwd=tmp_path)
    assert (ok.returncode, ok.stdout) == (0, "0 findings\n")
    bad = run_cli("versions", "bad", "--format", "json", cwd=tmp_path)
    assert bad.returncode == 1
    body = json.loads(bad.stdout)
    assert [f["rule_id"] for f in body["findings"]] == ["vsms-versions/unsupported"]
    assert body["findings"][0]["path"] == "bad/.mcp.json"  # as seen from the current folder
    missing = run_cli("versions", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("vsms-guard: error: nope: no such file")


def test_pre_commit_hook_passes_file_names(tmp_path: Path) -> None:
    hooks = (Path(__file__).parents[1] / ".pre-commit-hooks.yaml").read_text()
    assert "id: vsms-versions" in hooks
    write(tmp_path, "a/package.json", '{"dependencies": {"virtualsms-mcp": "0.9.0"}}')
    write(tmp_path, "b/Dockerfile", "RUN npm i -g virtualsms-mcp@1.2.3\n")
    result = run_cli("versions", "a/package.json", "b/Dockerfile", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("a/package.json:1: error: vsms-versions/unsupported")


def test_cline_vscode_user_settings_and_mcp_remote(tmp_path: Path) -> None:
    write(
        tmp_path,
        "cline_mcp_settings.json",
        """
        {"mcpServers": {"virtualsms": {
          "command": "npx", "args": ["-y", "virtualsms-mcp@1.1.0"],
          "disabled": false, "autoApprove": ["virtualsms_get_balance"]}}}
        """,
    )
    write(
        tmp_path,
        ".vscode/settings.json",
        """
        {
          "editor.tabSize": 2,
          "mcp": {"servers": {"sms": {"command": "npx", "args": ["virtualsms-mcp@1.0.0"]}}},
        }
        """,
    )
    write(
        tmp_path,
        "claude/claude_desktop_config.json",
        '{"mcpServers": {"sms": {"command": "npx", '
        '"args": ["mcp-remote", "https://virtualsms.io/mcp"]}}}',
    )
    assert gate(tmp_path) == [
        ("critical-fixes-only", "cline_mcp_settings.json", 2, "warning"),
        ("hosted", "claude/claude_desktop_config.json", 1, "info"),
        ("unsupported", ".vscode/settings.json", 3, "error"),
    ]


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path: Path) -> None:
    not_a_folder = write(tmp_path, "package.json", "{}")
    unreadable: list[str] = []
    assert list(iter_candidate_files(not_a_folder, (), unreadable)) == []
    assert unreadable == [f"{not_a_folder}: cannot list folder: Not a directory"]


@pytest.mark.parametrize(
    ("version", "status"),
    [("1.2.0-beta.1", None), ("1.3.0-rc.1", None), ("1.1.0-alpha.2", None), ("1.2.0", "supported")],
)
def test_prereleases_follow_npm_and_are_not_covered_by_the_policy(version, status) -> None:
    """npm's rule: a prerelease is in a range only if a comparator names its own
    major.minor.patch with a prerelease. 1.2.0-beta.1 precedes 1.2.0; it is no supported
    release (node-semver's include_prerelease mode ranked it equal to 1.2.0)."""
    mcp = load_policy().packages["virtualsms-mcp"]
    assert mcp.status_of(version) == status
    assert mcp.status_of("1.2.0-beta.1") is None  # the same answer whatever was asked before


def test_a_pinned_prerelease_is_an_unknown_version_warning(tmp_path: Path) -> None:
    write(tmp_path, "package.json", '{"dependencies": {"virtualsms-mcp": "1.2.0-beta.1"}}\n')
    assert gate(tmp_path) == [("unknown-version", "package.json", 1, "warning")]


def test_an_oversized_file_is_reported_not_skipped_silently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vsms_guard.versions as versions

    write(tmp_path, "package-lock.json", '{"packages": {}}' + " " * 2048)
    monkeypatch.setattr(versions, "MAX_FILE_BYTES", 1024)
    assert gate(tmp_path) == [("too-large", "package-lock.json", None, "warning")]


# --- acceptance fixes: one path base, lockfiles for a lone manifest, garbage, PyPI wording ---


def test_paths_are_as_seen_from_the_current_folder(tmp_path: Path) -> None:
    """Every checker names files from the same base, so SARIF/annotations point at real files
    when `versions`/`check` is given a subfolder (the secret scanner shows `svc/k.py`)."""
    repo = tmp_path / "repo"
    config = '{"mcpServers": {"s": {"command": "npx", "args": ["virtualsms-mcp@1.0.0"]}}}'
    write(repo, "svc/.mcp.json", config)
    write(repo, "svc/k.py", f"KEY = {fake_key('paths')!r}\n")
    done = run_cli("versions", "svc", "--format", "json", cwd=repo)
    assert [f["path"] for f in json.loads(done.stdout)["findings"]] == ["svc/.mcp.json"]
    both = run_cli(
        "check", "svc", "--only", "versions", "--only", "secrets", "--format", "json", cwd=repo
    )
    paths = {f["checker"]: f["path"] for f in json.loads(both.stdout)["findings"]}
    assert paths == {"versions": "svc/.mcp.json", "secrets": "svc/k.py"}, both.stdout
    assert fake_key("paths") not in both.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = run_cli("versions", str(repo / "svc"), "--format", "json", cwd=elsewhere)
    [finding] = json.loads(outside.stdout)["findings"]
    assert finding["path"] == (repo / "svc/.mcp.json").as_posix()


def npm_lock(version: str, key: str = "node_modules/virtualsms-mcp") -> str:
    return json.dumps(
        {"lockfileVersion": 3, "packages": {"": {}, key: {"version": version}}}, indent=2
    )


def test_a_manifest_given_alone_is_decided_by_its_lockfile(tmp_path: Path) -> None:
    """`versions package.json` (what the pre-commit hook passes) agrees with `versions .`."""
    write(tmp_path, "package.json", '{"dependencies": {"virtualsms-mcp": "^1.0.0"}}')
    write(tmp_path, "package-lock.json", npm_lock("1.2.3"))
    assert run_cli("versions", ".", cwd=tmp_path).stdout == "0 findings\n"
    alone = run_cli("versions", "package.json", cwd=tmp_path)
    assert (alone.returncode, alone.stdout) == (0, "0 findings\n")
    write(tmp_path, "package-lock.json", npm_lock("1.0.2"))
    stale = run_cli("versions", "package.json", "package-lock.json", cwd=tmp_path)
    assert stale.returncode == 1
    assert stale.stdout.splitlines()[0].startswith("package-lock.json:")
    assert stale.stdout.splitlines()[-1] == "1 finding"  # given twice, reported once


@pytest.mark.parametrize("lock_name", ["pnpm-lock.yaml", "yarn.lock"])
def test_a_workspace_member_manifest_uses_the_root_lockfile(tmp_path: Path, lock_name: str) -> None:
    write(tmp_path, "packages/bot/package.json", '{"dependencies": {"virtualsms-mcp": "*"}}')
    lock = {
        "pnpm-lock.yaml": "lockfileVersion: '9.0'\npackages:\n  virtualsms-mcp@1.2.5:\n"
        "    resolution: {integrity: sha512-AAAA}\n",
        "yarn.lock": 'virtualsms-mcp@*:\n  version "1.2.5"\n',
    }[lock_name]
    write(tmp_path, lock_name, lock)
    done = run_cli("versions", "packages/bot/package.json", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "0 findings\n")


GARBAGE = "this is not a config file {[\n"


@pytest.mark.parametrize(
    "rel",
    [
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "pnpm-lock.yaml",
        "yarn.lock",
        ".mcp.json",
        "mcp.json",
        "claude_desktop_config.json",
        ".cursor/mcp.json",
        ".vscode/mcp.json",
        ".codex/config.toml",
        ".zed/settings.json",
    ],
)
def test_a_garbage_marked_file_is_a_parse_warning(tmp_path: Path, rel: str) -> None:
    write(tmp_path, rel, GARBAGE)
    assert gate(tmp_path) == [("parse-error", rel, None, "warning")]
    write(tmp_path, rel, "")
    expected = [("parse-error", rel, None, "warning")] if rel == "package.json" else []
    assert gate(tmp_path) == expected  # an empty package.json breaks npm; others are no-ops


@pytest.mark.parametrize(
    ("rel", "body"),
    [
        (".mcp.json", '["virtualsms-mcp@1.2.3"]'),  # valid JSON, not an MCP config
        ("claude_desktop_config.json", b"\xff\xfe{\x00}"),  # UTF-16 cut mid-character
    ],
)
def test_a_marked_file_of_the_wrong_shape_is_a_parse_error(
    tmp_path: Path, rel: str, body: str | bytes
) -> None:
    write(tmp_path, rel, body)
    [(rule, path, _, _)] = gate(tmp_path)
    assert (rule, path) == ("parse-error", rel)


def test_unrelated_garbage_is_still_not_read(tmp_path: Path) -> None:
    write(tmp_path, "tsconfig.json", GARBAGE)
    write(tmp_path, "settings.json", "")
    write(tmp_path, "pyproject.toml", GARBAGE)
    assert gate(tmp_path) == []


def test_json_escapes_are_matched_after_parsing(tmp_path: Path) -> None:
    escaped = "virtualsms\\u002dmcp"
    write(tmp_path, "a/package.json", f'{{"dependencies": {{"{escaped}": "1.0.4"}}}}')
    server = f'{{"{{key}}": {{"s": {{"command": "npx", "args": ["{escaped}@1.0.1"]}}}}}}'
    write(tmp_path, "b/.mcp.json", server.replace("{key}", "mcpServers"))
    write(tmp_path, "c/.vscode/settings.json", f'{{"mcp": {server.replace("{key}", "servers")}}}')
    assert [(rule, path) for rule, path, _, _ in gate(tmp_path)] == [
        ("unsupported", "a/package.json"),
        ("unsupported", "b/.mcp.json"),
        ("unsupported", "c/.vscode/settings.json"),
    ]


def test_pypi_findings_use_pip_wording(tmp_path: Path) -> None:
    write(tmp_path, "requirements.txt", "vsms-guard==0.0.9\n")
    write(tmp_path, "package.json", '{"dependencies": {"virtualsms-mcp": "1.0.4"}}')
    with contextlib.chdir(tmp_path):
        report = check_paths([Path(".")], Path("."), Options())
    text = {f.path: (f.message, f.help) for f in report.findings}
    assert text["requirements.txt"] == (
        "pinned vsms-guard==0.0.9 is not supported (requirements)",
        "upgrade to a supported release and pin it exactly (e.g. vsms-guard==0.1.0)",
    )
    assert text["package.json"] == (
        "pinned virtualsms-mcp@1.0.4 is not supported (dependencies)",
        "upgrade to a supported release and pin it exactly (e.g. virtualsms-mcp@1.2.3)",
    )
