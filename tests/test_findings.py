"""The shared Finding/Report model: exit codes and the four output formats."""

from __future__ import annotations

import json

import pytest

from tests.fakes import fake_key
from vsms_guard import keys
from vsms_guard.findings import (
    EXIT_CLEAN,
    EXIT_ERROR,
    EXIT_FINDINGS,
    Finding,
    Report,
    Severity,
    render,
)


def _finding(severity: Severity = Severity.ERROR, **kw) -> Finding:
    key = fake_key("findings")
    base = dict(
        rule_id="vsms-key",
        severity=severity,
        message="VirtualSMS API key",
        path="app/config.py",
        line=3,
        column=9,
        evidence=keys.mask(key),
        fingerprint=keys.fingerprint(key),
        help="rotate the key",
    )
    base.update(kw)
    return Finding(**base)


def test_exit_codes_follow_design() -> None:
    assert Report().exit_code() == EXIT_CLEAN
    assert Report([_finding(Severity.WARNING)]).exit_code() == EXIT_CLEAN
    assert Report([_finding(Severity.WARNING)]).exit_code(Severity.WARNING) == EXIT_FINDINGS
    assert Report([_finding()]).exit_code() == EXIT_FINDINGS
    # "could not check" outranks findings: it is never a pass, and never mistaken for one.
    assert Report([_finding()], ["git not found"]).exit_code() == EXIT_ERROR


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_no_format_prints_a_whole_key(fmt: str) -> None:
    key = fake_key("findings")
    out = render(Report([_finding()], ["one path unreadable"]), fmt)
    assert key not in out
    assert keys.mask(key) in out


def test_text_format_names_location_rule_and_fix() -> None:
    out = render(Report([_finding(commit="a" * 40)]), "text")
    assert "aaaaaaaaaaaa:app/config.py:3:9: error: vsms-key:" in out
    assert (
        f"[{keys.mask(fake_key('findings'))}, fingerprint {keys.fingerprint(fake_key('findings'))}]"
        in out
    )
    assert "fix: rotate the key" in out
    assert out.rstrip().endswith("1 finding")


def test_json_format_round_trips() -> None:
    data = json.loads(render(Report([_finding()], ["x"]), "json"))
    assert data["exit_code"] == EXIT_ERROR
    assert data["problems"] == ["x"]
    (f,) = data["findings"]
    assert f["severity"] == "error" and f["line"] == 3 and f["path"] == "app/config.py"


def test_sarif_is_2_1_0_with_levels_locations_and_fingerprints() -> None:
    report = Report([_finding(), _finding(Severity.INFO, rule_id="vsms-unpinned", line=None)])
    doc = json.loads(render(report, "sarif"))
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    assert run["tool"]["driver"]["name"] == "vsms-guard"
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {"vsms-key", "vsms-unpinned"}
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"vsms-key": "error", "vsms-unpinned": "note"}
    first = next(r for r in run["results"] if r["ruleId"] == "vsms-key")
    region = first["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 3, "startColumn": 9}
    assert first["partialFingerprints"]["vsmsGuard/v1"] == keys.fingerprint(fake_key("findings"))
    assert run["invocations"][0]["executionSuccessful"] is True


def test_github_annotations_escape_properties_and_newlines() -> None:
    report = Report([_finding(path="a,b:c.py", message="two\nlines")])
    (line,) = render(report, "github").splitlines()
    assert line.startswith("::error file=a%2Cb%3Ac.py,line=3,title=vsms-key::two%0Alines")


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render(Report(), "xml")
