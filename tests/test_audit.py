"""pip-audit gate: the real pip-audit against an OSV service served on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vsms_guard.audit import AuditSettings, Source, audit, sources, to_report
from vsms_guard.config import Config
from vsms_guard.errors import GuardError
from vsms_guard.findings import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS

CLI = str(Path(sys.executable).parent / "vsms-guard")

ADVISORY = {
    "id": "GHSA-test-0001",
    "aliases": ["CVE-2099-0001"],
    "summary": "Test advisory served by the local OSV stand-in",
    "affected": [
        {
            "package": {"name": "httpx", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.28.2"}]}],
        }
    ],
}


class OSV(BaseHTTPRequestHandler):
    """A minimal OSV ``/v1/query``: httpx<0.28.2 has one advisory, everything else none."""

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name, version = body["package"]["name"], body["version"]
        vulnerable = name == "httpx" and tuple(map(int, version.split("."))) < (0, 28, 2)
        payload = json.dumps({"vulns": [ADVISORY]} if vulnerable else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def osv_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OSV)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    server.shutdown()
    server.server_close()


def settings(osv_url: str, **extra: object) -> Config:
    base = {"service": "osv", "osv_url": osv_url, "resolve": False, "timeout": 5}
    return Config({"audit": {**base, **extra}}, Path("pyproject.toml"))


def project(tmp_path: Path, *requirements: str) -> Path:
    (tmp_path / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return tmp_path


def run(root: Path, config: Config):  # noqa: ANN201 - Report
    return audit(root, AuditSettings.from_config(config))


def test_clean_requirements_pass(tmp_path: Path, osv_url: str) -> None:
    report = run(project(tmp_path, "httpx==0.28.2", "idna==3.10"), settings(osv_url))
    assert (report.findings, report.problems, report.exit_code()) == ([], [], EXIT_CLEAN)


def test_vulnerable_dependency_is_a_finding(
    tmp_path: Path, osv_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # findings name files relative to the current folder
    report = run(project(tmp_path, "httpx==0.28.1", "idna==3.10"), settings(osv_url))
    assert report.exit_code() == EXIT_FINDINGS
    [finding] = report.findings
    assert finding.rule_id == "vsms-audit/vulnerable"
    assert finding.path == "requirements.txt"
    assert "GHSA-test-0001" in finding.message and "CVE-2099-0001" in finding.message
    assert "fixed in: 0.28.2" in finding.message


def test_pip_audit_itself_passes_skipped_dependencies(tmp_path: Path, osv_url: str) -> None:
    """The behaviour this gate exists for, shown with pip-audit alone."""
    root = project(tmp_path, "idna==3.10", "vendored @ https://127.0.0.1:9/vendored-1.0.whl")
    done = subprocess.run(
        [sys.executable, "-m", "pip_audit", "-r", str(root / "requirements.txt"), "--no-deps",
         "--disable-pip", "-s", "osv", "--osv-url", osv_url, "--progress-spinner", "off"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0
    assert "No known vulnerabilities found" in done.stdout + done.stderr


def test_skipped_dependencies_are_could_not_check(tmp_path: Path, osv_url: str) -> None:
    root = project(tmp_path, "idna==3.10", "vendored @ https://127.0.0.1:9/vendored-1.0.whl")
    report = run(root, settings(osv_url))
    assert report.exit_code() == EXIT_ERROR
    [problem] = report.problems
    assert "skipped 1 of 2 dependencies of requirements.txt" in problem
    assert problem.endswith(
        ": vendored; allow explicitly with --allow-skipped-audit or [audit] allow_skipped = true"
    )
    allowed = run(root, settings(osv_url, allow_skipped=True))
    assert allowed.problems == [] and allowed.exit_code() == EXIT_CLEAN
    [warning] = allowed.findings
    assert (warning.rule_id, warning.severity.value) == ("vsms-audit/skipped", "warning")


def test_unreachable_service_is_could_not_check(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1/query"
    report = run(project(tmp_path, "idna==3.10"), settings(dead))
    assert report.exit_code() == EXIT_ERROR
    assert report.problems[0].startswith("pip-audit of requirements.txt failed:")


def test_editable_packages_are_named_not_hidden() -> None:
    data = {
        "dependencies": [{"name": "vsms-guard", "skip_reason": "distribution marked as editable"}]
    }
    report = to_report(data, Source("python environment", (), None), AuditSettings())
    assert report.problems == []
    assert [f.rule_id for f in report.findings] == ["vsms-audit/editable-not-audited"]
    assert "vsms-guard" in report.findings[0].message


def test_settings_errors(tmp_path: Path) -> None:
    for bad in ({"allow_skipped": "yes"}, {"service": "nvd"}, {"colour": 1}):
        with pytest.raises(GuardError):
            AuditSettings.from_config(Config({"audit": bad}, tmp_path / "x.toml"))
    with pytest.raises(GuardError, match="requirements file not found"):
        run(tmp_path, Config({"audit": {"requirements": ["missing.txt"]}}))


def test_nothing_to_audit_is_clean_but_said(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{}", encoding="utf-8")
    report = run(tmp_path, Config())
    assert report.exit_code() == EXIT_CLEAN
    assert [f.rule_id for f in report.findings] == ["vsms-audit/nothing-to-audit"]


def test_cli_allow_flag_and_exit_codes(tmp_path: Path, osv_url: str) -> None:
    root = project(tmp_path, "idna==3.10", "vendored @ https://127.0.0.1:9/vendored-1.0.whl")
    base = [CLI, "audit", str(root), "--no-resolve", "--osv-url", osv_url]
    failed = subprocess.run(base, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2
    assert "could not check: pip-audit skipped 1 of 2" in failed.stdout
    allowed = subprocess.run(
        [*base, "--allow-skipped"], capture_output=True, text=True, timeout=300
    )
    assert allowed.returncode == 0
    assert "warning: vsms-audit/skipped" in allowed.stdout


def test_environment_findings_point_at_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "agent"\n', encoding="utf-8")
    [source] = sources(tmp_path, AuditSettings(environment=True))
    assert (source.path, source.args) == ("pyproject.toml", ("--local", "--skip-editable"))
    [project_source] = sources(tmp_path, AuditSettings())
    assert project_source.args == (str(tmp_path),)


def test_findings_of_a_subfolder_name_files_from_the_current_folder(
    tmp_path: Path, osv_url: str
) -> None:
    """Run from the parent folder (as CI does), audit names ``svc/requirements.txt`` like the
    secret scanner would, so SARIF/GitHub annotations point at a real file."""
    (tmp_path / "svc").mkdir()
    project(tmp_path / "svc", "httpx==0.28.1")
    cmd = [CLI, "audit", "svc", "--no-resolve", "--osv-url", osv_url, "--format", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == EXIT_FINDINGS, done.stderr
    [finding] = json.loads(done.stdout)["findings"]
    assert finding["path"] == "svc/requirements.txt"
    assert (tmp_path / finding["path"]).is_file()


def test_unresolvable_requirements_show_pips_reason(tmp_path: Path, osv_url: str) -> None:
    (tmp_path / "index").mkdir()  # an empty local package index: nothing resolves
    root = project(tmp_path, "vsms-guard-no-such-package==1.0")
    config = settings(osv_url, resolve=True, index_url=(tmp_path / "index").as_uri())
    report = run(root, config)
    assert report.exit_code() == EXIT_ERROR
    [problem] = report.problems
    assert problem.startswith("pip-audit of requirements.txt failed: ")
    assert "No matching distribution found for vsms-guard-no-such-package==1.0" in problem


def test_an_empty_requirements_file_says_nothing_was_audited(tmp_path: Path, osv_url: str) -> None:
    (tmp_path / "empty.txt").write_text("# nothing yet\n", encoding="utf-8")
    base = [CLI, "audit", str(tmp_path), "-r", "empty.txt", "--osv-url", osv_url]
    for extra in ([], ["--no-resolve"]):
        done = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=300)
        assert done.returncode == EXIT_CLEAN, done.stderr
        assert "vsms-audit/nothing-to-audit" in done.stdout
        assert "empty.txt: lists no dependencies: nothing was audited" in done.stdout
