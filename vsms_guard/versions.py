"""Supported-version gate: judge every ``virtualsms-mcp`` / ``vsms-guard`` pin, range and command.

The support windows are data (``policies/supported_versions.toml``); ranges are evaluated with
real version libraries (``node-semver`` for npm, ``packaging`` for PyPI). Where a lockfile
resolves the version, the lockfile decides; a command that names no version floats to the newest
release at run time, which is reported (info; a warning with ``production``).
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import nodesemver
import pathspec
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from policies import policy_path
from vsms_guard.config import Config
from vsms_guard.errors import GuardError
from vsms_guard.findings import Finding, Report, Severity, display_path
from vsms_guard.version_finders import (
    COMMAND,
    HOSTED,
    LOCK,
    MANIFEST,
    NPM,
    PYPI,
    Reference,
    Target,
    UnparsableFile,
    decode,
    find_config_json,
    find_toml,
    finder_for,
    is_marked,
    pin,
)

SUPPORTED = "supported"
CRITICAL = "critical-fixes-only"
UNSUPPORTED = "unsupported"
STATUSES = (SUPPORTED, CRITICAL, UNSUPPORTED)
RULE = "vsms-versions"
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".hg"})
LOCK_NAMES = ("package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "yarn.lock")
MAX_FILE_BYTES = 64 * 1024 * 1024  # big monorepo lockfiles reach tens of MiB


# --- version schemes: the only place that knows npm semver or PEP 440 ------------------------


class NpmScheme:
    """npm semver through ``node-semver`` (the same grammar npm itself accepts). Cached: a
    large tree repeats the same few specs thousands of times."""

    @staticmethod
    @functools.cache
    def exact(spec: str) -> str | None:
        return nodesemver.valid(spec.lstrip("="), True)

    @staticmethod
    @functools.cache
    def valid_range(spec: str) -> bool:
        return nodesemver.valid_range(spec, True) is not None

    @staticmethod
    @functools.cache
    def satisfies(version: str, spec: str) -> bool:
        # npm's own rule (what `npm install` and npx resolve): a prerelease satisfies a range
        # only if a comparator names the same major.minor.patch with a prerelease. So
        # 1.2.0-beta.1 is in no policy row (unknown: a warning), not "supported". node-semver's
        # include_prerelease=True would also order 1.2.0-beta.1 equal to 1.2.0 (a bug).
        return nodesemver.satisfies(version, spec, True)

    @staticmethod
    @functools.cache
    def boundaries(spec: str) -> frozenset[str]:
        """Versions where the range's admitted set starts: enough to test an intersection."""
        out = {"0.0.0"}
        for comparators in nodesemver.make_range(spec, True).set:
            for comp in comparators:
                version = getattr(comp.semver, "version", None)
                if version is None:
                    continue
                out.add(version)
                if comp.operator == ">":
                    out.add(nodesemver.inc(version, "patch", True))
        return frozenset(out)


class PypiScheme:
    """PEP 440 through ``packaging``."""

    @staticmethod
    def exact(spec: str) -> str | None:
        text = spec.removeprefix("===").removeprefix("==")
        if "*" in text or "," in text or any(c in text for c in "<>=!~"):
            return None
        try:
            return str(Version(text))
        except InvalidVersion:
            return None

    @staticmethod
    def valid_range(spec: str) -> bool:
        try:
            SpecifierSet(spec)
        except InvalidSpecifier:
            return False
        return True

    @staticmethod
    def satisfies(version: str, spec: str) -> bool:
        return SpecifierSet(spec).contains(version, prereleases=True)

    @staticmethod
    def boundaries(spec: str) -> frozenset[str]:
        out = {"0"}
        for item in SpecifierSet(spec):
            try:
                version = Version(item.version.rstrip(".*"))
            except InvalidVersion:
                continue
            out.add(str(version))
            release = list(version.release) + [0] * (3 - len(version.release))
            release[-1] += 1
            out.add(".".join(map(str, release)))
        return frozenset(out)


SCHEMES: dict[str, Any] = {NPM: NpmScheme, PYPI: PypiScheme}


# --- policy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackagePolicy:
    """Support rows for one package, first match wins."""

    target: Target
    rows: tuple[tuple[str, str], ...]
    example: str | None = None  # a supported release to name in fix suggestions

    @property
    def scheme(self) -> Any:
        return SCHEMES[self.target.ecosystem]

    def status_of(self, version: str) -> str | None:
        for spec, status in self.rows:
            if self.scheme.satisfies(version, spec):
                return status
        return None

    def admitted(self, spec: str) -> set[str]:
        """Statuses of the versions ``spec`` admits (``unknown`` for versions no row covers)."""
        scheme = self.scheme
        candidates = set(scheme.boundaries(spec))
        for row_spec, _ in self.rows:
            candidates |= scheme.boundaries(row_spec)
        statuses = set()
        for version in candidates:
            if scheme.satisfies(version, spec):
                statuses.add(self.status_of(version) or "unknown")
        return statuses


@dataclass(frozen=True)
class Policy:
    packages: dict[str, PackagePolicy]
    source: Path

    @property
    def targets(self) -> list[Target]:
        return [p.target for p in self.packages.values()]


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a support policy; any defect is a one-line GuardError."""
    path = path or policy_path("supported_versions.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GuardError(f"{path}: cannot read policy: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GuardError(f"{path}: invalid policy TOML: {exc}") from None
    packages: dict[str, PackagePolicy] = {}
    for entry in data.get("package", []):
        try:
            name, ecosystem = entry["name"], entry.get("ecosystem", NPM)
            scheme = SCHEMES[ecosystem]
            rows = tuple((row["range"], row["status"]) for row in entry["support"])
            hosted = tuple(entry.get("hosted_hosts", ()))
            example = entry.get("example")
        except (KeyError, TypeError) as exc:
            raise GuardError(f"{path}: package entry missing or bad field {exc}") from None
        for spec, status in rows:
            if not isinstance(spec, str) or status not in STATUSES:
                raise GuardError(f"{path}: {name}: bad row {spec!r} = {status!r}")
            if not scheme.valid_range(spec):
                raise GuardError(f"{path}: {name}: invalid range {spec!r}")
        if example is not None and (not isinstance(example, str) or not scheme.exact(example)):
            raise GuardError(f"{path}: {name}: example must be one exact version")
        packages[name] = PackagePolicy(Target(name, ecosystem, hosted), rows, example)
    if not packages:
        raise GuardError(f"{path}: policy lists no [[package]]")
    return Policy(packages, path)


# --- options ---------------------------------------------------------------------------------


@dataclass
class Options:
    """Gate settings: CLI flags over ``[tool.vsms-guard.versions]`` over defaults."""

    production: bool = False
    critical_severity: Severity = Severity.WARNING
    policy: Policy = field(default_factory=load_policy)
    exclude: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> Options:
        section = config.section("versions")
        known = {"production", "critical_fixes_only", "policy"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise GuardError(
                f"{config.source}: [versions] unknown setting(s): {', '.join(unknown)}"
            )
        production = overrides.get("production") or section.get("production", False)
        if not isinstance(production, bool):
            raise GuardError(f"{config.source}: [versions] production must be true or false")
        level = overrides.get("critical_fixes_only") or section.get(
            "critical_fixes_only", "warning"
        )
        try:
            critical = Severity(level)
        except ValueError:
            raise GuardError(
                f"critical_fixes_only must be error, warning or info, not {level!r}"
            ) from None
        policy_file = overrides.get("policy") or section.get("policy")
        if policy_file is not None and config.source is not None and not overrides.get("policy"):
            policy_file = config.source.parent / policy_file
        policy = load_policy(Path(policy_file) if policy_file else None)
        return cls(production, critical, policy, config.exclude)


# --- walking ---------------------------------------------------------------------------------


def iter_candidate_files(
    root: Path, exclude: Iterable[str] = (), unreadable: list[str] | None = None
) -> Iterator[Path]:
    """Files a finder understands, skipping VCS/dependency folders and ``exclude`` patterns.
    Folders that cannot be listed are appended to ``unreadable`` (never skipped silently)."""
    patterns = list(exclude)
    spec = pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None

    def failed(exc: OSError) -> None:
        if unreadable is not None:
            unreadable.append(f"{exc.filename}: cannot list folder: {exc.strerror}")

    for dirpath, dirnames, filenames in os.walk(root, onerror=failed):
        rel_dir = os.path.relpath(dirpath, root) if spec else ""
        rel_dir = "" if rel_dir in ("", ".") else rel_dir.replace(os.sep, "/") + "/"
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS and not (spec and spec.match_file(f"{rel_dir}{d}/"))
        )
        for name in sorted(filenames):
            if finder_for(name) is not None and not (spec and spec.match_file(rel_dir + name)):
                yield Path(dirpath, name)


def _needles(policy: Policy) -> tuple[bytes, ...]:
    out = set()
    for target in policy.targets:
        out.add(target.name.encode())
        out.add(target.name.replace("-", "_").encode())
        out.update(h.encode() for h in target.hosted_hosts)
    return tuple(out)


@dataclass(frozen=True)
class Located:
    """A reference plus the file it was found in (``shown``: as seen from the current folder)."""

    path: str
    ref: Reference


def collect(files: Iterable[Path], policy: Policy) -> tuple[list[Located], list[Finding]]:
    """Run the finders over ``files``; unreadable or unparsable files become findings.

    A file is read when it mentions a target, when its name marks it as a manifest, lockfile or
    MCP config (``is_marked``: a parse failure there is a warning whatever the content, an
    empty file is fine except ``package.json``), or when it is JSON/TOML with ``\\u`` escapes
    (references are matched after parsing, so ``virtualsms\\u002dmcp`` is found too)."""
    needles = _needles(policy)
    text_needles = tuple(n.decode() for n in needles)
    targets = policy.targets
    located: list[Located] = []
    problems: list[Finding] = []
    for path in files:
        finder = finder_for(path.name)
        if finder is None:
            continue
        try:
            if path.stat().st_size > MAX_FILE_BYTES:  # never skipped silently
                message = f"not checked: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"
                problems.append(
                    _finding("too-large", Severity.WARNING, display_path(path), None, message)
                )
                continue
            data = path.read_bytes()
        except OSError as exc:
            problems.append(
                _finding("unreadable", Severity.ERROR, display_path(path), None, exc.strerror or "")
            )
            continue
        marked = is_marked(Path(os.path.abspath(path)))  # `.codex/config.toml` from `.codex`
        escaped = finder in (find_config_json, find_toml) and b"\\u" in data
        if not (marked or escaped or any(n in data for n in needles)):
            continue
        try:
            text = decode(data)
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")  # a broken UTF-16 file: parse fails
        if marked and not text.strip() and path.name.lower() != "package.json":
            continue  # an empty lockfile resolves nothing; an empty MCP config runs nothing
        try:
            refs = finder(text, targets)
        except UnparsableFile as exc:
            if any(n in text for n in text_needles):
                severity = Severity.ERROR  # it names a target we could not judge
            elif marked:
                severity = Severity.WARNING
            else:
                continue  # unrelated JSON/TOML that merely has escapes
            message = f"cannot parse: {exc}"
            problems.append(_finding("parse-error", severity, display_path(path), None, message))
            continue
        if refs:
            where = display_path(path)
            located.extend(Located(where, ref) for ref in refs)
    return located, problems


# --- judging ---------------------------------------------------------------------------------


def _fix_upgrade(package: PackagePolicy) -> str:
    """The upgrade advice, naming an exact pin in the package's own ecosystem."""
    advice = "upgrade to a supported release and pin it exactly"
    return f"{advice} (e.g. {pin(package.target, package.example)})" if package.example else advice


def _finding(
    rule: str,
    severity: Severity,
    path: str,
    line: int | None,
    message: str,
    help: str = "",
    **props: Any,
) -> Finding:
    return Finding(
        rule_id=f"{RULE}/{rule}",
        severity=severity,
        message=message,
        path=path,
        line=line,
        help=help,
        checker="versions",
        properties={k: v for k, v in props.items() if v is not None},
    )


def _lock_dirs(located: list[Located]) -> dict[tuple[str, str], list[Located]]:
    """(directory, package) -> resolved versions from lockfiles in that directory."""
    out: dict[tuple[str, str], list[Located]] = {}
    for item in located:
        if item.ref.kind == LOCK:
            folder = str(PurePosixPath(item.path).parent)
            out.setdefault((folder, item.ref.package), []).append(item)
    return out


def _resolving_lock(item: Located, locks: dict[tuple[str, str], list[Located]]) -> str | None:
    """The nearest lockfile directory (this one or a workspace root above) resolving the package."""
    folder = PurePosixPath(item.path).parent
    for candidate in (folder, *folder.parents):
        if (str(candidate), item.ref.package) in locks:
            return str(candidate)
    return None


def judge(located: list[Located], options: Options) -> list[Finding]:
    """Findings for every reference, applying lockfile precedence and production rules."""
    locks = _lock_dirs(located)
    findings = []
    for item in located:
        package = options.policy.packages.get(item.ref.package)
        if package is not None:
            findings.extend(_judge_one(item, package, options, locks))
    return findings


def _status_finding(
    item: Located, package: PackagePolicy, version: str, options: Options, what: str
) -> Finding | None:
    ref = item.ref
    status = package.status_of(version)
    props = {"package": ref.package, "spec": ref.spec, "status": status or "unknown"}
    name = pin(package.target, version)
    if status == UNSUPPORTED:
        return _finding(
            "unsupported",
            Severity.ERROR,
            item.path,
            ref.line,
            f"{what} {name} is not supported ({ref.where})",
            _fix_upgrade(package),
            **props,
        )
    if status == CRITICAL:
        return _finding(
            "critical-fixes-only",
            options.critical_severity,
            item.path,
            ref.line,
            f"{what} {name} gets critical fixes only ({ref.where})",
            _fix_upgrade(package),
            **props,
        )
    if status is None:
        return _finding(
            "unknown-version",
            Severity.WARNING,
            item.path,
            ref.line,
            f"{what} {name} is not covered by the support policy ({ref.where})",
            **props,
        )
    return None


def _judge_one(
    item: Located,
    package: PackagePolicy,
    options: Options,
    locks: dict[tuple[str, str], list[Located]],
) -> Iterator[Finding]:
    ref, scheme = item.ref, package.scheme
    props = {"package": ref.package, "spec": ref.spec}
    if ref.kind == HOSTED:
        yield _finding(
            "hosted",
            Severity.INFO,
            item.path,
            ref.line,
            f"{ref.where} uses the hosted {ref.package} endpoint, which always runs the current "
            "release",
            **props,
        )
        return
    spec = ref.spec
    if spec is None or (not scheme.valid_range(spec) and _is_tag(spec)):
        severity = Severity.WARNING if options.production else Severity.INFO
        label = f"@{spec}" if spec else " without a version"
        yield _finding(
            "floating",
            severity,
            item.path,
            ref.line,
            f"{ref.package}{label} floats to the newest release at run time ({ref.where})",
            "pin an exact supported version so every run uses the one you reviewed",
            **props,
        )
        return
    exact = scheme.exact(spec)
    if exact is not None:
        what = "resolved" if ref.kind == LOCK else "pinned"
        finding = _status_finding(item, package, exact, options, what)
        if finding:
            yield finding
        return
    if not scheme.valid_range(spec):
        yield _finding(
            "unknown-version",
            Severity.WARNING,
            item.path,
            ref.line,
            f"cannot evaluate {ref.package} spec {spec!r} ({ref.where}); pin a registry version",
            **props,
        )
        return
    if ref.kind == MANIFEST and _resolving_lock(item, locks) is not None:
        return  # the lockfile decides; its resolved versions are judged on their own
    admitted = package.admitted(spec)
    if UNSUPPORTED in admitted:
        yield _finding(
            "range-admits-unsupported",
            Severity.ERROR,
            item.path,
            ref.line,
            f"{ref.package} range {spec!r} admits unsupported versions ({ref.where})",
            f"narrow the range to supported releases or pin exactly; {_fix_upgrade(package)}",
            **props,
        )
    elif CRITICAL in admitted:
        yield _finding(
            "range-admits-critical-fixes-only",
            options.critical_severity,
            item.path,
            ref.line,
            f"{ref.package} range {spec!r} admits critical-fixes-only versions ({ref.where})",
            _fix_upgrade(package),
            **props,
        )
    elif "unknown" in admitted or not admitted:
        yield _finding(
            "unknown-version",
            Severity.WARNING,
            item.path,
            ref.line,
            f"{ref.package} range {spec!r} admits versions the policy does not cover ({ref.where})",
            **props,
        )
    if options.production and ref.kind in (MANIFEST, COMMAND):
        yield _finding(
            "not-pinned",
            Severity.WARNING,
            item.path,
            ref.line,
            f"{ref.package} range {spec!r} is not an exact pin; production should pin exactly "
            f"({ref.where})",
            "replace the range with one exact supported version",
            **props,
        )


def _is_tag(spec: str) -> bool:
    """npm dist-tags (``latest``, ``next``) name whatever is newest; git/file specs do not."""
    return spec.replace("-", "").replace(".", "").isalnum() and not spec[0].isdigit()


# --- entry points ----------------------------------------------------------------------------


def _lockfiles_for(manifest: Path) -> Iterator[Path]:
    """Lockfiles that may resolve a ``package.json`` given on its own: in its folder and in the
    folders above it up to the current one (a workspace root)."""
    folder = Path(os.path.abspath(manifest.parent))
    cwd = Path.cwd()
    for candidate in (folder, *folder.parents):
        for name in LOCK_NAMES:
            if (candidate / name).is_file():
                yield candidate / name
        if candidate == cwd or cwd not in candidate.parents:
            return


def check_paths(paths: Iterable[Path], root: Path, options: Options) -> Report:
    """Gate over explicit files and/or directories (pre-commit passes file names). Findings name
    files as seen from the current folder; ``root`` is where the config was looked up."""
    files: list[Path] = []
    report = Report()
    unreadable: list[str] = []
    for path in paths:
        if path.is_dir():
            files.extend(iter_candidate_files(path, options.exclude, unreadable))
        elif path.is_file():
            files.append(path)
            if path.name.lower() == "package.json":  # the lockfile decides, given or not
                files.extend(_lockfiles_for(path))
        else:
            raise GuardError(f"{path}: no such file or directory")
    unique: dict[str, Path] = {}
    for file in files:  # each file once (a folder and a file in it may both be given)
        unique.setdefault(os.path.abspath(file), file)
    located, problems = collect(unique.values(), options.policy)
    report.problems.extend(unreadable)
    report.findings.extend(problems)
    report.findings.extend(judge(located, options))
    return report


def check(root: Path, config: Config) -> Report:
    """Checker entry for ``vsms-guard check``."""
    options = Options.from_config(config)
    return check_paths([root], root, options)
