"""Run the vsms-guard semgrep policies (``policies/semgrep/``) with the real semgrep program.

semgrep pins an older ``mcp`` and so lives in its own tool environment: we call it as a program,
found through ``VSMS_GUARD_SEMGREP``, ``semgrep`` on PATH, or ``./.tools/semgrep/bin/semgrep``
under the current folder (where ``make tools`` puts it). Missing semgrep, a broken rule or a
crash is "could not check" (exit 2), never a pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from policies import policy_path
from vsms_guard import keys
from vsms_guard.config import Config
from vsms_guard.errors import GuardError
from vsms_guard.findings import Finding, Report, Severity, display_path

ENV_BINARY = "VSMS_GUARD_SEMGREP"
LOCAL_BINARY = Path(".tools/semgrep/bin/semgrep")  # under the current folder: ``make tools``
RULE_PREFIX = "vsms-semgrep"
TIMEOUT_SECONDS = 900
SEVERITIES = {"ERROR": Severity.ERROR, "WARNING": Severity.WARNING, "INFO": Severity.INFO}
# semgrep's built-in ignore list (used when a project has no .semgrepignore) skips tests/, test/
# and build/, exactly where hard-coded keys and bad webhook handlers hide. We switch semgrep's
# ignore files off and apply only these folders plus the user's ``exclude`` patterns.
DEFAULT_EXCLUDES = (".git", "node_modules", ".venv", "venv", ".tox", "__pycache__", "*.min.js")


def semgrep_binary() -> str:
    """The semgrep program to run; GuardError when there is none."""
    configured = os.environ.get(ENV_BINARY)
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise GuardError(f"{ENV_BINARY}={configured} is not an executable file")
        return configured
    found = shutil.which("semgrep")
    if found is not None:
        return found
    local = Path.cwd() / LOCAL_BINARY
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    raise GuardError(
        f"semgrep not found (looked at {ENV_BINARY}, PATH and ./{LOCAL_BINARY}): install it in "
        f"its own environment (make tools) or set {ENV_BINARY} to its path"
    )


def rules_dir() -> Path:
    return policy_path("semgrep")


def run_semgrep(
    target: Path, exclude: list[str] | None = None, rules: Path | None = None
) -> dict[str, Any]:
    """semgrep's JSON output for ``target``; GuardError when semgrep itself failed."""
    command = [
        semgrep_binary(),
        "scan",
        "--json",
        "--verbose",  # the only way semgrep's JSON lists the files it skipped (and why)
        "--metrics=off",
        "--disable-version-check",
        "--x-ignore-semgrepignore-files",
        "--config",
        str(rules or rules_dir()),
    ]
    for pattern in [*DEFAULT_EXCLUDES, *(exclude or [])]:
        command += ["--exclude", pattern.rstrip("/")]
    command.append(str(target))
    env = {**os.environ, "SEMGREP_SEND_METRICS": "off", "SEMGREP_ENABLE_VERSION_CHECK": "0"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=env, check=False
        )
    except OSError as exc:
        raise GuardError(f"cannot run semgrep: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise GuardError(f"semgrep did not finish within {TIMEOUT_SECONDS} s") from None
    try:
        output = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise GuardError(f"semgrep failed (exit {done.returncode}): {last[:200]}") from None
    fatal = [e for e in output.get("errors", []) if _is_fatal(e)]
    if done.returncode not in (0, 1) or fatal:
        first = fatal[0] if fatal else {}
        message = first.get("message") or first.get("long_msg") or first.get("type") or "error"
        raise GuardError(f"semgrep failed (exit {done.returncode}): {' '.join(message.split())}")
    return output


def _is_fatal(error: dict[str, Any]) -> bool:
    """Rule/config errors stop the check; a target semgrep could not parse does not."""
    return error.get("level") == "error" and "Syntax" not in str(error.get("type", ""))


def _not_a_key(result: dict[str, Any]) -> bool:
    """True when a hard-coded-key match is not a key by ``vsms_guard.keys`` (the one source of
    truth: semgrep's regex cannot judge entropy, so ``vsms_0000…`` or camelCase names match it).
    A match we cannot re-read is kept."""
    try:
        start, end = result["start"]["offset"], result["end"]["offset"]
        with open(result["path"], "rb") as fh:
            fh.seek(start)
            literal = fh.read(end - start).decode("utf-8", errors="replace")
    except (KeyError, TypeError, ValueError, OSError):
        return False
    return not keys.contains_key(literal)


def to_report(output: dict[str, Any]) -> Report:
    """Findings from semgrep's JSON; files it could not parse are warnings, not silence.
    Paths are shown as the secret scanner shows them (see ``findings.display_path``)."""
    report = Report()
    for result in output.get("results", []):
        extra = result.get("extra", {})
        rule = str(result.get("check_id", "")).rsplit(".", 1)[-1]
        if "hardcoded-key" in rule and _not_a_key(result):
            continue
        report.add(
            Finding(
                rule_id=f"{RULE_PREFIX}/{rule}",
                severity=SEVERITIES.get(str(extra.get("severity")), Severity.WARNING),
                message=" ".join(str(extra.get("message", rule)).split()),
                path=display_path(result.get("path", "")),
                line=result.get("start", {}).get("line"),
                column=result.get("start", {}).get("col"),
                checker="semgrep",
                properties={"cwe": extra.get("metadata", {}).get("cwe")}
                if extra.get("metadata", {}).get("cwe")
                else {},
            )
        )
    paths = output.get("paths")
    for skipped in (paths.get("skipped") if isinstance(paths, dict) else None) or []:
        if isinstance(skipped, dict) and skipped.get("reason") == "exceeded_size_limit":
            report.add(
                Finding(
                    rule_id=f"{RULE_PREFIX}/not-scanned",
                    severity=Severity.WARNING,
                    message="semgrep skipped this file: larger than its 1 MB target limit",
                    path=display_path(skipped["path"]) if skipped.get("path") else None,
                    checker="semgrep",
                )
            )
    for error in output.get("errors", []):
        kind = error.get("type")
        kind = kind[0] if isinstance(kind, list) and kind else kind  # ["PartialParsing", [...]]
        for span in error.get("spans") or [{}]:
            where = span.get("file", error.get("path"))
            report.add(
                Finding(
                    rule_id=f"{RULE_PREFIX}/not-parsed",
                    severity=Severity.WARNING,
                    message=f"semgrep could not fully parse this file ({kind})",
                    path=display_path(where) if where else None,
                    line=span.get("start", {}).get("line"),
                    checker="semgrep",
                )
            )
    return report


def excludes(config: Config) -> list[str]:
    """The shared ``exclude`` patterns plus ``[semgrep] exclude`` (paths only semgrep skips,
    e.g. tests that put keys in URLs on purpose while the key scanner still reads them)."""
    extra = config.section("semgrep").get("exclude", [])
    if not isinstance(extra, list) or not all(isinstance(p, str) for p in extra):
        raise GuardError(f"{config.source}: [semgrep] exclude must be a list of strings")
    return [*config.exclude, *extra]


def check(root: Path, config: Config) -> Report:
    """Checker entry for ``vsms-guard check``."""
    return to_report(run_semgrep(root, excludes(config)))
