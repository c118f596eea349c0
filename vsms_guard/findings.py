"""The Finding model every checker returns, the Report that gathers them, and its output formats.

Exit codes (shared by every command): 0 clean, 1 findings at or above the failing severity,
2 usage error or "could not check". A problem that stopped a check is never a silent pass.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vsms_guard import __version__

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

INFORMATION_URI = "https://github.com/vsms-guard/vsms-guard"


def display_path(path: str | os.PathLike[str]) -> str:
    """A finding's path as every checker reports it: relative to the current folder when inside
    it, absolute otherwise, always with ``/`` (so SARIF and GitHub annotations name real files)."""
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:  # another drive (Windows)
        return Path(absolute).as_posix()
    inside = relative != os.pardir and not relative.startswith(os.pardir + os.sep)
    return Path(relative if inside else absolute).as_posix()


class Severity(enum.StrEnum):
    """How bad a finding is; ``error`` fails a run by default, ``warning`` with ``--strict``."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]

    @property
    def sarif_level(self) -> str:
        return {"error": "error", "warning": "warning", "info": "note"}[self.value]


@dataclass(frozen=True)
class Finding:
    """One problem found by a checker. ``evidence`` is always masked, never a whole secret."""

    rule_id: str
    severity: Severity
    message: str
    path: str | None = None
    line: int | None = None
    column: int | None = None
    evidence: str = ""
    fingerprint: str = ""
    commit: str | None = None
    help: str = ""
    checker: str = ""
    properties: dict[str, Any] = field(default_factory=dict)

    def location(self) -> str:
        where = self.path or "-"
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        if self.commit:
            where = f"{self.commit[:12]}:{where}"
        return where

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return {k: v for k, v in data.items() if v not in (None, "", {})}


@dataclass
class Report:
    """Findings plus the problems that stopped part of a check ("could not check")."""

    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def extend(self, other: Report) -> None:
        self.findings.extend(other.findings)
        self.problems.extend(other.problems)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def could_not_check(self, message: str) -> None:
        self.problems.append(message)

    def exit_code(self, fail_on: Severity = Severity.ERROR) -> int:
        if self.problems:
            return EXIT_ERROR
        if any(f.severity.rank >= fail_on.rank for f in self.findings):
            return EXIT_FINDINGS
        return EXIT_CLEAN

    def sorted_findings(self) -> list[Finding]:
        return sorted(
            self.findings,
            key=lambda f: (f.commit or "", f.path or "", f.line or 0, f.column or 0, f.rule_id),
        )


def _evidence(f: Finding) -> str:
    """`` [vsms_AbC…(40), fingerprint 1a2b3c4d5e6f]``: enough to act on, never the secret."""
    parts = [p for p in (f.evidence, f.fingerprint and f"fingerprint {f.fingerprint}") if p]
    return f" [{', '.join(parts)}]" if parts else ""


def format_text(report: Report) -> str:
    lines = []
    for f in report.sorted_findings():
        lines.append(f"{f.location()}: {f.severity.value}: {f.rule_id}: {f.message}{_evidence(f)}")
        if f.help:
            lines.append(f"    fix: {f.help}")
    for problem in report.problems:
        lines.append(f"could not check: {problem}")
    n = len(report.findings)
    lines.append(
        f"{n} finding{'s' if n != 1 else ''}"
        + (f", {len(report.problems)} could not be checked" if report.problems else "")
    )
    return "\n".join(lines) + "\n"


def format_json(report: Report) -> str:
    body = {
        "version": __version__,
        "findings": [f.to_dict() for f in report.sorted_findings()],
        "problems": report.problems,
        "exit_code": report.exit_code(),
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _sarif_rules(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:
        rules.setdefault(
            f.rule_id,
            {
                "id": f.rule_id,
                "shortDescription": {"text": f.rule_id},
                "help": {"text": f.help or f.message},
                "defaultConfiguration": {"level": f.severity.sarif_level},
            },
        )
    return list(rules.values())


def format_sarif(report: Report) -> str:
    """SARIF 2.1.0, as GitHub code scanning and most CI dashboards read it."""
    findings = report.sorted_findings()
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.rule_id,
            "level": f.severity.sarif_level,
            "message": {"text": f.message + (f" ({f.evidence})" if f.evidence else "")},
        }
        if f.path:
            region = {"startLine": f.line} if f.line else {}
            if f.line and f.column:
                region["startColumn"] = f.column
            physical: dict[str, Any] = {"artifactLocation": {"uri": f.path}}
            if region:
                physical["region"] = region
            result["locations"] = [{"physicalLocation": physical}]
        if f.fingerprint:
            result["partialFingerprints"] = {"vsmsGuard/v1": f.fingerprint}
        props = dict(f.properties)
        if f.commit:
            props["commit"] = f.commit
        if props:
            result["properties"] = props
        results.append(result)
    notifications = [
        {"level": "error", "message": {"text": problem}} for problem in report.problems
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "vsms-guard",
                "version": __version__,
                "informationUri": INFORMATION_URI,
                "rules": _sarif_rules(findings),
            }
        },
        "results": results,
        "invocations": [
            {
                "executionSuccessful": not report.problems,
                "toolExecutionNotifications": notifications,
            }
        ],
    }
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_github(report: Report) -> str:
    """GitHub Actions workflow commands (``::error file=…,line=…::message``)."""
    out = []
    for f in report.sorted_findings():
        kind = {"error": "error", "warning": "warning", "info": "notice"}[f.severity.value]
        params = []
        if f.path:
            params.append(f"file={_gh_escape(f.path, prop=True)}")
        if f.line:
            params.append(f"line={f.line}")
        params.append(f"title={_gh_escape(f.rule_id, prop=True)}")
        text = f.message + _evidence(f)
        out.append(f"::{kind} {','.join(params)}::{_gh_escape(text)}")
    for problem in report.problems:
        out.append(f"::error title=could-not-check::{_gh_escape(problem)}")
    return "\n".join(out) + ("\n" if out else "")


FORMATS = {
    "text": format_text,
    "json": format_json,
    "sarif": format_sarif,
    "github": format_github,
}


def render(report: Report, fmt: str = "text") -> str:
    try:
        return FORMATS[fmt](report)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})") from None
