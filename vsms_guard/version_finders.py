"""Finders: where a project says which ``virtualsms-mcp`` (or ``vsms-guard``) it runs.

Each finder reads one kind of file and returns ``Reference``s: a package name, the spec as
written (exact version, range, or ``None`` when the command floats to the newest release) and a
line. Finders only read; ``versions`` judges. A file that cannot be parsed raises
``UnparsableFile`` so the checker reports it as a finding instead of crashing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

import pyjson5
import yaml

NPM = "npm"
PYPI = "pypi"

# Where a spec comes from; the checker treats each kind differently.
MANIFEST = "manifest"  # package.json / requirements / pyproject: a spec a lockfile may resolve
LOCK = "lock"  # a resolved version
COMMAND = "command"  # npx/npm/pip/docker/CI command line or MCP client config: runs as written
HOSTED = "hosted"  # an MCP client pointed at the hosted endpoint

DEP_SECTIONS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")
NPM_RUNNERS = r"npx|npm|pnpm|pnpx|yarn|bunx|bun|volta"
PYPI_RUNNERS = r"pip3?|pipx|uv|uvx|poetry|pdm|pipenv"
SERVER_TABLES = ("mcpServers", "servers", "context_servers", "mcp_servers")
URL_FIELDS = ("url", "serverUrl", "httpUrl")


class UnparsableFile(ValueError):
    """The file looked relevant but could not be parsed; the message says why (no content)."""


@dataclass(frozen=True)
class Target:
    """A package the finders look for, from the support policy."""

    name: str
    ecosystem: str
    hosted_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reference:
    """One place that decides a version: ``spec`` None means "whatever is newest at run time"."""

    package: str
    spec: str | None
    kind: str
    line: int | None
    where: str  # human context: "dependencies", "npx in mcpServers.sms", "RUN line", …


# --- helpers ---------------------------------------------------------------------------------


def decode(data: bytes) -> str:
    """Text of a config file: UTF-8 with or without a BOM (UTF-16 BOMs too)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig", errors="replace")


def line_of(text: str, needle: str, start: int = 0) -> int | None:
    """1-based line of the first ``needle`` at or after offset ``start``."""
    pos = text.find(needle, start)
    return None if pos < 0 else text.count("\n", 0, pos) + 1


def load_jsonc(text: str, what: str = "JSON") -> Any:
    """Parse JSON as editors write it (JSONC: comments, trailing commas; JSON5 is a superset).

    pyjson5 is a compiled JSON5 parser: ~2 µs for a small config where pure-Python json5 takes
    ~1 ms, which decides the gate's speed on large trees.
    """
    try:
        return pyjson5.decode(text)
    except pyjson5.Json5Exception as exc:
        first = str(exc.args[0] if exc.args else exc).splitlines()[0][:120]
        raise UnparsableFile(f"invalid {what}: {first}") from None


def _token_re(target: Target) -> re.Pattern[str]:
    name = re.escape(target.name)
    if target.ecosystem == NPM:
        # virtualsms-mcp, virtualsms-mcp@1.2.3, virtualsms-mcp@"^1.2 || 2", npm:virtualsms-mcp@…
        spec = r"""@(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s'"`,;|&)\]}]*))"""
        return re.compile(rf"(?<![\w@/.-]){name}(?:{spec})?(?![\w.-])")
    name = name.replace(r"\-", "[-_.]")
    op = r"(?:===|==|~=|!=|<=|>=|<|>)"
    spec = rf"\s*{op}\s*[\w.*+!-]+(?:\s*,\s*{op}\s*[\w.*+!-]+)*"
    return re.compile(
        rf"(?<![\w/.-]){name}(?:\[[\w,\s-]*\])?(?P<pyspec>{spec})?(?![\w.-])", re.IGNORECASE
    )


def _spec_of(match: re.Match[str], ecosystem: str) -> str | None:
    if ecosystem == NPM:
        for group in ("dq", "sq", "bare"):
            if match.group(group) is not None:
                return match.group(group).strip() or None
        return None
    spec = match.group("pyspec")
    return re.sub(r"\s+", "", spec) if spec else None


def _logical_line_start(text: str, pos: int) -> int:
    """Start of the shell logical line holding ``pos`` (joins ``\\``-continued lines)."""
    start = text.rfind("\n", 0, pos) + 1
    while start > 1 and text[start - 2] == "\\":
        start = text.rfind("\n", 0, start - 1) + 1
    return start


def find_in_commands(
    text: str, targets: Iterable[Target], where: str, *, runner_needed: bool = True
) -> Iterator[Reference]:
    """Package tokens in command text (Dockerfile, shell, CI YAML, requirements).

    A bare name counts only where an installer/runner (npx, npm, pip, …) precedes it on the same
    logical line: ``CMD ["virtualsms-mcp"]`` runs the copy a pinned install line put there.
    """
    for target in targets:
        if target.name.replace("-", "") not in text.replace("-", "").replace("_", ""):
            continue
        runners = re.compile(
            rf"(?<![\w-])(?:{NPM_RUNNERS if target.ecosystem == NPM else PYPI_RUNNERS})(?![\w-])"
        )
        for match in _token_re(target).finditer(text):
            spec = _spec_of(match, target.ecosystem)
            head = text[_logical_line_start(text, match.start()) : match.start()]
            if runner_needed and not runners.search(head):
                continue
            if head.rstrip().endswith("#") or head.lstrip().startswith("#"):
                continue  # a comment, not a command
            line = text.count("\n", 0, match.start()) + 1
            yield Reference(target.name, spec, COMMAND, line, where)


def _hosted(url: Any, target: Target) -> bool:
    if not isinstance(url, str) or not target.hosted_hosts:
        return False
    host = (urlsplit(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in target.hosted_hosts)


# --- npm manifests and lockfiles -------------------------------------------------------------


def _npm_value(name: str, value: Any, target: Target) -> str | None | bool:
    """Spec for ``target`` from a ``name: value`` dependency entry; False when unrelated."""
    if not isinstance(value, str):
        return False
    alias = f"npm:{target.name}@"
    if value.startswith(alias):
        return value[len(alias) :]
    if value == f"npm:{target.name}":
        return None
    if name == target.name and not value.startswith("$"):
        return value
    return False


def _walk_overrides(node: Any, target: Target, path: str) -> Iterator[tuple[str, str | None]]:
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        bare = key.rsplit("@", 1)[0] if key.rfind("@") > 0 else key
        if isinstance(value, dict):
            if bare == target.name and isinstance(value.get("."), str):
                yield f"{path}.{key}", value["."]
            yield from _walk_overrides(value, target, f"{path}.{key}")
        else:
            spec = _npm_value(bare, value, target)
            if spec is not False:
                yield f"{path}.{key}", spec  # type: ignore[misc]


def find_package_json(text: str, targets: Iterable[Target]) -> list[Reference]:
    """Every dependency section, ``overrides``/``resolutions``/``pnpm.overrides``, and scripts."""
    data = load_jsonc(text, "package.json")
    if not isinstance(data, dict):
        raise UnparsableFile("package.json is not a JSON object")
    refs: list[Reference] = []
    for target in (t for t in targets if t.ecosystem == NPM):
        for section in DEP_SECTIONS:
            deps = data.get(section)
            if not isinstance(deps, dict):
                continue
            for name, value in deps.items():
                spec = _npm_value(name, value, target)
                if spec is False:
                    continue
                line = line_of(text, f'"{name}"', text.find(f'"{section}"'))
                refs.append(Reference(target.name, spec, MANIFEST, line, section))  # type: ignore[arg-type]
        pnpm = data.get("pnpm")
        override_roots = [
            ("overrides", data.get("overrides")),
            ("resolutions", data.get("resolutions")),
            ("pnpm.overrides", pnpm.get("overrides") if isinstance(pnpm, dict) else None),
        ]
        for label, node in override_roots:
            for where, spec in _walk_overrides(node, target, label):
                line = line_of(text, target.name, text.find(f'"{label.split(".")[-1]}"'))
                refs.append(Reference(target.name, spec, MANIFEST, line, where))
    scripts = data.get("scripts")
    if isinstance(scripts, dict):
        for name, command in scripts.items():
            if not isinstance(command, str):
                continue
            for ref in find_in_commands(command, targets, f"scripts.{name}"):
                line = line_of(text, f'"{name}"', text.find('"scripts"'))
                refs.append(Reference(ref.package, ref.spec, COMMAND, line, ref.where))
    return refs


def _v1_versions(deps: Any, target: Target) -> Iterator[tuple[str, str]]:
    """(version, entry name) from lockfileVersion 1's nested ``dependencies``."""
    if not isinstance(deps, dict):
        return
    for name, entry in deps.items():
        if not isinstance(entry, dict):
            continue
        version = entry.get("version")
        if isinstance(version, str):
            spec = _npm_value(name, version, target)
            if isinstance(spec, str):
                yield spec, name
        yield from _v1_versions(entry.get("dependencies"), target)


def find_npm_lock(text: str, targets: Iterable[Target]) -> list[Reference]:
    """``package-lock.json`` / ``npm-shrinkwrap.json``, lockfileVersion 1, 2 and 3."""
    data = load_jsonc(text, "lockfile")
    if not isinstance(data, dict):
        raise UnparsableFile("lockfile is not a JSON object")
    refs: list[Reference] = []
    for target in (t for t in targets if t.ecosystem == NPM):
        found: dict[str, str] = {}  # version -> key it was found under
        packages = data.get("packages")
        if isinstance(packages, dict):  # v2, v3
            for key, entry in packages.items():
                if not key or not isinstance(entry, dict):
                    continue
                if key.rsplit("node_modules/", 1)[-1] == target.name or (
                    entry.get("name") == target.name and "node_modules/" in key
                ):
                    if isinstance(entry.get("version"), str):
                        found.setdefault(entry["version"], key)

        if not isinstance(packages, dict):
            for version, name in _v1_versions(data.get("dependencies"), target):
                found.setdefault(version, name)
        for version, key in found.items():
            line = line_of(text, f'"{key}"')
            refs.append(Reference(target.name, version, LOCK, line, "resolved"))
    return refs


_PNPM_KEY = re.compile(r"^/?(?P<name>(?:@[^/@]+/)?[^/@(]+)[@/](?P<version>[^/(_@]+)")


def find_pnpm_lock(text: str, targets: Iterable[Target]) -> list[Reference]:
    """``pnpm-lock.yaml`` v5 (``/name/1.2.3``), v6 (``/name@1.2.3``) and v9 (``name@1.2.3``)."""
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise UnparsableFile(f"invalid pnpm-lock.yaml: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UnparsableFile("pnpm-lock.yaml is not a mapping")
    refs: list[Reference] = []
    packages = data.get("packages") or {}
    for target in (t for t in targets if t.ecosystem == NPM):
        seen: set[str] = set()
        for key in packages if isinstance(packages, dict) else ():
            match = _PNPM_KEY.match(str(key))
            if match and match["name"] == target.name and match["version"] not in seen:
                seen.add(match["version"])
                line = line_of(text, str(key))
                refs.append(Reference(target.name, match["version"], LOCK, line, "resolved"))
    return refs


def find_yarn_lock(text: str, targets: Iterable[Target]) -> list[Reference]:
    """``yarn.lock``: classic (``version "1.2.3"``) and berry (YAML, ``version: 1.2.3``).

    Both shapes are entry headers (``name@range…:`` at the start of a line) with indented
    fields under them; anything else means the file is not a yarn lockfile."""
    refs: list[Reference] = []
    npm_targets = [t for t in targets if t.ecosystem == NPM]
    current: list[Target] = []
    header_line = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if not raw[0].isspace() and not raw.rstrip().endswith(":"):
            raise UnparsableFile(f"invalid yarn.lock: line {number} is not an entry header")
        if raw[0].isspace() and not header_line:
            raise UnparsableFile(f"invalid yarn.lock: line {number} is outside any entry")
        if not raw[0].isspace():
            entries = [e.strip().strip('"') for e in raw.rstrip().rstrip(":").split(",")]
            current = [
                t
                for t in npm_targets
                if any(e.startswith((f"{t.name}@", f'"{t.name}@')) for e in entries)
            ]
            header_line = number
            continue
        match = re.match(r'\s+version:?\s+"?([^"\s]+)"?\s*$', raw)
        if match and current:
            for target in current:
                refs.append(Reference(target.name, match[1], LOCK, header_line, "resolved"))
            current = []
    return refs


# --- MCP client configurations ---------------------------------------------------------------


def _server_tables(data: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(label, servers)`` for every MCP server table at the top level or under ``mcp``."""
    if not isinstance(data, dict):
        return
    for holder_label, holder in (("", data), ("mcp.", data.get("mcp"))):
        if not isinstance(holder, dict):
            continue
        for key in SERVER_TABLES:
            table = holder.get(key)
            if isinstance(table, dict):
                yield f"{holder_label}{key}", table


def _command_line(server: dict[str, Any]) -> list[str]:
    command = server.get("command")
    args = server.get("args")
    if isinstance(command, dict):  # Zed: "command": {"path": "npx", "args": [...]}
        args = command.get("args", args)
        command = command.get("path")
    parts = [command] if isinstance(command, str) else list(command or [])
    parts += list(args) if isinstance(args, list) else []
    return [str(p) for p in parts]


def find_servers(data: Any, text: str, targets: Iterable[Target]) -> list[Reference] | None:
    """References in MCP server tables; None when the document has no server table at all."""
    tables = list(_server_tables(data))
    if not tables:
        return None
    refs: list[Reference] = []
    for label, table in tables:
        for name, server in table.items():
            if not isinstance(server, dict):
                continue
            where = f"{label}.{name}"
            line = line_of(text, f'"{name}"') or line_of(text, str(name))
            parts = _command_line(server)
            for target in targets:
                urls = [server.get(f) for f in URL_FIELDS] + parts  # also `npx mcp-remote URL`
                if any(_hosted(url, target) for url in urls):
                    refs.append(Reference(target.name, None, HOSTED, line, where))
            joined = " ".join(parts)
            for ref in find_in_commands(joined, targets, where):
                token = f"{ref.package}@{ref.spec}" if ref.spec else ref.package
                line = line_of(text, token, text.find(str(name))) or line
                refs.append(Reference(ref.package, ref.spec, COMMAND, line, where))
    return refs


def find_config_json(text: str, targets: Iterable[Target]) -> list[Reference]:
    """Any JSON/JSONC config: MCP client files (Claude, Cursor, Windsurf, Cline, VS Code, Zed…);
    other JSON is searched for command lines (devcontainer ``postCreateCommand`` and the like)."""
    data = load_jsonc(text, "JSON")
    refs = find_servers(data, text, targets)
    return refs if refs is not None else list(find_in_commands(text, targets, "command"))


def find_mcp_config(text: str, targets: Iterable[Target]) -> list[Reference]:
    """A file whose name marks it as an MCP client config: it must be a JSON object."""
    data = load_jsonc(text, "JSON")
    if not isinstance(data, dict):
        raise UnparsableFile("MCP client config is not a JSON object")
    refs = find_servers(data, text, targets)
    return refs if refs is not None else list(find_in_commands(text, targets, "command"))


def find_toml(text: str, targets: Iterable[Target]) -> list[Reference]:
    """Codex ``config.toml`` (``[mcp_servers.*]``) and ``pyproject.toml`` dependencies."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UnparsableFile(f"invalid TOML: {exc}") from None
    refs = find_servers(data, text, targets) or []
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    requirements = list(project.get("dependencies") or [])
    for extra in (project.get("optional-dependencies") or {}).values():
        requirements += list(extra or [])
    if requirements:
        lines = "\n".join(str(r) for r in requirements)
        for ref in find_in_commands(lines, targets, "project.dependencies", runner_needed=False):
            if ref.package != project.get("name"):
                line = line_of(text, ref.package)
                refs.append(Reference(ref.package, ref.spec, MANIFEST, line, ref.where))
    return refs


# --- routing ---------------------------------------------------------------------------------

Finder = Callable[[str, list[Target]], list[Reference]]

COMMAND_SUFFIXES = (".sh", ".bash", ".zsh", ".ps1", ".bat", ".cmd", ".yml", ".yaml", ".mk")
COMMAND_NAMES = (
    "makefile",
    "justfile",
    "procfile",
    "containerfile",
    "dockerfile",
    ".gitlab-ci.yml",
)


def _commands(text: str, targets: list[Target]) -> list[Reference]:
    return list(find_in_commands(text, targets, "command"))


def _requirements(text: str, targets: list[Target]) -> list[Reference]:
    lines = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    refs = find_in_commands(
        lines, [t for t in targets if t.ecosystem == PYPI], "requirements", runner_needed=False
    )
    return [Reference(r.package, r.spec, MANIFEST, r.line, r.where) for r in refs]


# Files whose name (or folder and name) says what they are: a parse failure there is reported
# whatever the content; other files are read only when they mention a target.
MCP_CONFIG_NAMES = (
    "mcp.json",
    ".mcp.json",
    "claude_desktop_config.json",
    "mcp_config.json",
    "cline_mcp_settings.json",
)
MARKED_NAMES = (
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    *MCP_CONFIG_NAMES,
)
MARKED_IN_FOLDER = {"config.toml": ".codex", "settings.json": ".zed"}


def is_marked(path: PurePath) -> bool:
    """Whether ``path``'s name marks it as a manifest, lockfile or MCP client config."""
    name = path.name.lower()
    return name in MARKED_NAMES or MARKED_IN_FOLDER.get(name) == path.parent.name.lower()


def pin(target: Target, version: str) -> str:
    """An exact pin in the target's own ecosystem: ``name@1.2.3`` or ``name==1.2.3``."""
    return f"{target.name}=={version}" if target.ecosystem == PYPI else f"{target.name}@{version}"


def finder_for(filename: str) -> Finder | None:
    """The finder for a file name, or None when such files never name a version."""
    name = filename.lower()
    if name in MCP_CONFIG_NAMES:
        return find_mcp_config
    if name == "package.json":
        return find_package_json
    if name in ("package-lock.json", "npm-shrinkwrap.json"):
        return find_npm_lock
    if name == "pnpm-lock.yaml":
        return find_pnpm_lock
    if name == "yarn.lock":
        return find_yarn_lock
    if name.endswith((".json", ".jsonc", ".json5")):
        return find_config_json
    if name.endswith(".toml"):
        return find_toml
    if name.startswith("requirements") and name.endswith((".txt", ".in")):
        return _requirements
    if (
        name in COMMAND_NAMES
        or name.endswith(COMMAND_SUFFIXES)
        or name.startswith("dockerfile")
        or name.endswith(".dockerfile")
    ):
        return _commands
    return None
