"""pip-audit gate: known vulnerabilities fail; dependencies pip-audit could not check never pass.

pip-audit prints "No known vulnerabilities found" and exits 0 even when it skipped every
dependency (its service unreachable, URL requirements, packages not on PyPI). This gate reads
pip-audit's JSON, names every skipped dependency, and reports "could not check" (exit 2) unless
the user explicitly allows skips (``allow_skipped``), which turns them into a visible warning.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsms_guard.config import Config
from vsms_guard.errors import GuardError
from vsms_guard.findings import Finding, Report, Severity, display_path

RULE = "vsms-audit"
TIMEOUT_SECONDS = 1800
EDITABLE_REASONS = ("marked as editable",)


@dataclass
class AuditSettings:
    """``[tool.vsms-guard.audit]``; paths are relative to the checked root."""

    requirements: list[str] = field(default_factory=list)
    environment: bool = False  # audit the Python environment vsms-guard itself runs in
    resolve: bool = True  # False: requirements are fully pinned; no pip resolution
    allow_skipped: bool = False
    service: str = "pypi"
    osv_url: str | None = None
    index_url: str | None = None
    ignore: list[str] = field(default_factory=list)
    timeout: int = 15

    @classmethod
    def from_config(cls, config: Config) -> AuditSettings:
        section = dict(config.section("audit"))
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(section) - known)
        if unknown:
            raise GuardError(f"{config.source}: [audit] unknown setting(s): {', '.join(unknown)}")
        settings = cls(**section)
        for name in ("environment", "resolve", "allow_skipped"):
            if not isinstance(getattr(settings, name), bool):
                raise GuardError(f"{config.source}: [audit] {name} must be true or false")
        if not isinstance(settings.requirements, list) or not isinstance(settings.ignore, list):
            raise GuardError(f"{config.source}: [audit] requirements/ignore must be lists")
        if settings.service not in ("pypi", "osv"):
            raise GuardError(f"{config.source}: [audit] service must be pypi or osv")
        return settings


@dataclass(frozen=True)
class Source:
    """One thing pip-audit audits: a requirements file, a project folder, or the environment."""

    label: str
    args: tuple[str, ...]
    path: str | None  # as findings show it: see ``findings.display_path``


def sources(root: Path, settings: AuditSettings) -> list[Source]:
    """What to audit: configured requirements, else the environment if asked, else what the
    root holds (requirements.txt, then a pyproject project); empty when there is nothing."""
    base = root if root.is_dir() else root.parent
    pinned = () if settings.resolve else ("--no-deps", "--disable-pip")
    if settings.requirements:
        out = []
        for rel in settings.requirements:
            path = base / rel
            if not path.is_file():
                raise GuardError(f"{path}: requirements file not found")
            out.append(Source(rel, ("-r", str(path), *pinned), display_path(path)))
        return out
    if settings.environment:
        # Findings point at the file that declares the dependencies (SARIF needs a location).
        declared = base / "pyproject.toml"
        shown = display_path(declared) if declared.is_file() else None
        return [Source("python environment", ("--local", "--skip-editable"), shown)]
    if (base / "requirements.txt").is_file():
        return [
            Source(
                "requirements.txt",
                ("-r", str(base / "requirements.txt"), *pinned),
                display_path(base / "requirements.txt"),
            )
        ]
    pyproject = base / "pyproject.toml"
    if pyproject.is_file() and "[project]" in pyproject.read_text(
        encoding="utf-8", errors="replace"
    ):
        return [Source("pyproject.toml", (str(base),), display_path(pyproject))]
    return []


def run_pip_audit(source: Source, settings: AuditSettings) -> dict[str, Any]:
    """pip-audit's JSON report for one source; GuardError when pip-audit itself failed."""
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        *source.args,
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--timeout",
        str(settings.timeout),
        "--vulnerability-service",
        settings.service,
    ]
    if settings.osv_url:
        command += ["--osv-url", settings.osv_url]
    if settings.index_url:
        command += ["--index-url", settings.index_url]
    for vuln in settings.ignore:
        command += ["--ignore-vuln", vuln]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise GuardError(f"pip-audit of {source.label} did not finish in time") from None
    try:
        report = json.loads(done.stdout)
        if not isinstance(report, dict) or not isinstance(report.get("dependencies"), list):
            raise ValueError
    except ValueError:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = _error_line(lines) if lines else f"exit {done.returncode}, no output"
        raise GuardError(f"pip-audit of {source.label} failed: {reason}") from None
    return report


def _error_line(lines: list[str]) -> str:
    """The most telling part of a pip-audit failure: pip's own ``ERROR: …`` lines (why it
    could not resolve), else pip-audit's message, else the last line."""
    from_pip = [line for line in lines if line.startswith("ERROR: ")]
    if from_pip:
        return " / ".join(" ".join(line[7:].split())[:200] for line in from_pip[-2:])
    for line in reversed(lines):
        if line.startswith(("ERROR:", "pip_audit", "requests.", "urllib3.")) or "Error" in line:
            return " ".join(line.split())[:240]
    return " ".join(lines[-1].split())[:240]


def to_report(data: dict[str, Any], source: Source, settings: AuditSettings) -> Report:
    """Vulnerabilities as errors; skipped dependencies as "could not check" unless allowed."""
    report = Report()
    if not data.get("dependencies"):  # e.g. an empty requirements file: never a silent pass
        report.add(
            Finding(
                rule_id=f"{RULE}/nothing-to-audit",
                severity=Severity.INFO,
                message=f"{source.label}: lists no dependencies: nothing was audited",
                path=source.path,
                checker="audit",
            )
        )
    skipped: list[str] = []
    editable: list[str] = []
    for dep in data.get("dependencies", []):
        name = str(dep.get("name", "?"))
        reason = dep.get("skip_reason")
        if reason:
            (editable if any(r in reason for r in EDITABLE_REASONS) else skipped).append(name)
            continue
        for vuln in dep.get("vulns", []):
            ids = [vuln.get("id", "?"), *vuln.get("aliases", [])]
            fixes = ", ".join(vuln.get("fix_versions", [])) or "none yet"
            report.add(
                Finding(
                    rule_id=f"{RULE}/vulnerable",
                    severity=Severity.ERROR,
                    message=f"{name} {dep.get('version')}: {' / '.join(ids)} (fixed in: {fixes})",
                    path=source.path,
                    help=" ".join(str(vuln.get("description", "")).split())[:300],
                    checker="audit",
                    properties={"package": name, "version": dep.get("version"), "id": ids[0]},
                )
            )
    if editable:
        report.add(
            Finding(
                rule_id=f"{RULE}/editable-not-audited",
                severity=Severity.INFO,
                message=f"{source.label}: editable (local) packages are not audited: "
                + ", ".join(sorted(editable)),
                path=source.path,
                checker="audit",
            )
        )
    if skipped:
        names = ", ".join(sorted(skipped))
        text = (
            f"pip-audit skipped {len(skipped)} of {len(data.get('dependencies', []))} "
            f"dependencies of {source.label} (not checked for vulnerabilities): {names}"
        )
        if settings.allow_skipped:
            report.add(
                Finding(
                    rule_id=f"{RULE}/skipped",
                    severity=Severity.WARNING,
                    message=text + " [allowed by allow_skipped]",
                    path=source.path,
                    checker="audit",
                    properties={"skipped": sorted(skipped)},
                )
            )
        else:
            report.could_not_check(
                text
                + "; allow explicitly with --allow-skipped-audit or [audit] allow_skipped = true"
            )
    return report


def audit(root: Path, settings: AuditSettings) -> Report:
    report = Report()
    found = sources(root, settings)
    if not found:  # not a failure (a JS-only project), but never a silent pass either
        report.add(
            Finding(
                rule_id=f"{RULE}/nothing-to-audit",
                severity=Severity.INFO,
                message="no Python dependencies found (requirements.txt, pyproject project, or "
                "[audit] requirements/environment): nothing was audited",
                path=display_path(root),
                checker="audit",
            )
        )
    for source in found:
        try:
            report.extend(to_report(run_pip_audit(source, settings), source, settings))
        except GuardError as exc:
            report.could_not_check(str(exc))
    return report


def check(root: Path, config: Config) -> Report:
    """Checker entry for ``vsms-guard check``."""
    return audit(root, AuditSettings.from_config(config))
