"""Accepted findings: our own baseline and detect-secrets' ``.secrets.baseline``.

Our baseline is keyed by key fingerprints only (no line numbers), so it does not churn when
lines move, detect-secrets users' most common complaint. A detect-secrets baseline is read as
it is: any ``hashed_secret`` (SHA-1 of the secret) listed there is accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from scanners.leaks import Leak
from vsms_guard import keys
from vsms_guard.errors import GuardError

FORMAT = "vsms-guard-baseline"
VERSION = 1
_HEX = re.compile(r"[0-9a-f]{8,64}")


@dataclass
class Accepted:
    """Call it with a key: True when some baseline accepts it."""

    fingerprints: set[str] = field(default_factory=set)
    sha1s: set[str] = field(default_factory=set)

    def __call__(self, key: str) -> bool:
        if keys.fingerprint(key) in self.fingerprints:
            return True
        if not self.sha1s:
            return False
        import hashlib  # here, not at the top: only detect-secrets baselines need SHA-1

        return hashlib.sha1(key.encode()).hexdigest() in self.sha1s

    def __bool__(self) -> bool:
        return bool(self.fingerprints or self.sha1s)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise GuardError(f"{path}: baseline not found") from None
    except OSError as exc:
        raise GuardError(f"{path}: cannot read baseline: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise GuardError(f"{path}: malformed baseline: not JSON ({exc})") from None


def _hex_strings(values: Iterable[object], path: Path) -> set[str]:
    out = set()
    for value in values:
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            shown = str(value)[:8]  # a short start only: a key pasted here must not be echoed
            raise GuardError(f"{path}: malformed baseline: {shown!r}… is not a hex hash")
        out.add(value)
    return out


def load(paths: Iterable[Path]) -> Accepted:
    """Merge every baseline in ``paths``; a missing or malformed one is a ``GuardError``."""
    accepted = Accepted()
    for path in paths:
        data = _read_json(path)
        if isinstance(data, dict) and data.get("format") == FORMAT:
            entries = data.get("accepted")
            if not isinstance(entries, dict):
                raise GuardError(f"{path}: malformed baseline: 'accepted' must be an object")
            accepted.fingerprints |= _hex_strings(entries, path)
        elif isinstance(data, dict) and isinstance(data.get("results"), dict):
            hashes = []
            for results in data["results"].values():
                if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
                    raise GuardError(f"{path}: malformed baseline: 'results' must hold lists")
                hashes.extend(r.get("hashed_secret") for r in results)
            accepted.sha1s |= _hex_strings(hashes, path)
        else:
            raise GuardError(f"{path}: malformed baseline: neither vsms-guard nor detect-secrets")
    return accepted


def write(path: Path, leaks: Iterable[Leak]) -> int:
    """Write a baseline accepting every leak's key; returns how many keys it lists."""
    evidence: dict[str, str] = {}
    paths: dict[str, set[str]] = {}
    for leak in leaks:
        fp = keys.fingerprint(leak.hit.key)
        evidence[fp] = keys.mask(leak.hit.key)
        paths.setdefault(fp, set()).add(leak.path)
    body = {
        "format": FORMAT,
        "version": VERSION,
        "accepted": {
            fp: {"evidence": evidence[fp], "paths": sorted(paths[fp])} for fp in sorted(evidence)
        },
    }
    text = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise GuardError(f"{path}: cannot write baseline: {exc.strerror}") from None
    return len(evidence)
