"""A leak is a hit at a place (path, maybe a commit); this module turns leaks into the masked
``Finding``s every front end prints. It is the only place a key becomes display text."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from scanners.files import Hit
from vsms_guard import keys
from vsms_guard.findings import Finding, Report, Severity

RULE_ID = "vsms-key"
CHECKER = "secrets"
HELP = (
    "rotate the key in the VirtualSMS dashboard now (whoever holds it can spend your balance), "
    "then remove it from the file and from git history (git filter-repo or BFG)"
)
_HOW = {"text": "", "utf-16": " in UTF-16 text", "base64": " inside a base64 blob"}


@dataclass(frozen=True)
class Leak:
    """A hit in a file (``path`` as shown to the user), in a commit for history scans."""

    path: str
    hit: Hit
    commit: str | None = None


def _mask_keys(text: str) -> str:
    """``text`` with every key in it masked: a path can hold one (a cache folder named by key)."""
    if keys.PREFIX not in text:
        return text
    return keys.CANDIDATE_RE.sub(lambda m: keys.mask(m[0]) if keys.is_key(m[0]) else m[0], text)


def to_finding(leak: Leak, verdict: str | None = None) -> Finding:
    """The user-facing form of a leak: masked evidence, fingerprint, what to do."""
    fingerprint = keys.fingerprint(leak.hit.key)
    message = f"VirtualSMS API key{_HOW.get(leak.hit.encoding, '')}"
    properties = {"encoding": leak.hit.encoding}
    if verdict:
        message += f" (verify: {verdict})"
        properties["verified"] = verdict
    return Finding(
        rule_id=RULE_ID,
        severity=Severity.ERROR,
        message=message,
        path=_mask_keys(leak.path),
        line=leak.hit.line,
        column=leak.hit.column,
        evidence=keys.mask(leak.hit.key),
        fingerprint=fingerprint,
        commit=leak.commit,
        help=HELP,
        checker=CHECKER,
        properties=properties,
    )


def build_report(
    leaks: Iterable[Leak],
    problems: Iterable[str] = (),
    *,
    accepted: Callable[[str], bool] | None = None,
    verdicts: Mapping[str, str] | None = None,
) -> Report:
    """Findings for the leaks a baseline does not accept; ``verdicts`` maps key fingerprints
    to ``--verify`` labels."""
    report = Report(problems=[_mask_keys(problem) for problem in problems])
    for leak in leaks:
        if accepted is not None and accepted(leak.hit.key):
            continue
        verdict = verdicts.get(keys.fingerprint(leak.hit.key)) if verdicts else None
        report.add(to_finding(leak, verdict))
    return report
