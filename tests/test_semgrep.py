"""The semgrep policies, run by the real semgrep over positive and negative examples."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fakes import fake_key
from vsms_guard import keys
from vsms_guard.config import Config
from vsms_guard.errors import GuardError
from vsms_guard.findings import render
from vsms_guard.semgrep import ENV_BINARY, rules_dir, run_semgrep, to_report

ROOT = Path(__file__).resolve().parents[1]
CASES = Path(__file__).parent / "semgrep_cases"
CLI = str(Path(sys.executable).parent / "vsms-guard")
ANNOTATION = re.compile(r"(?:#|//)\s*ruleid:\s*([\w-]+)")


@pytest.fixture(scope="module")
def semgrep_env() -> dict[str, str]:
    binary = os.environ.get(ENV_BINARY) or str(ROOT / ".tools/semgrep/bin/semgrep")
    if not os.access(binary, os.X_OK):
        binary = shutil.which("semgrep") or ""
    if not binary:
        pytest.skip("semgrep is not installed (run: make tools)")
    return {**os.environ, ENV_BINARY: binary}


@pytest.fixture
def with_semgrep(
    semgrep_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """semgrep found, and the test's folder is the current one (findings are cwd-relative)."""
    monkeypatch.setenv(ENV_BINARY, semgrep_env[ENV_BINARY])
    monkeypatch.chdir(tmp_path)


def expected(folder: Path) -> set[tuple[str, int, str]]:
    """(file, line, rule) for every ``ruleid:`` annotation: the finding is on the next line."""
    out = set()
    for path in folder.iterdir():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = ANNOTATION.search(line)
            if match:
                out.add((path.name, number + 1, match[1]))
    return out


def write_key_cases(folder: Path) -> None:
    """Hard-coded key examples are built at run time: the repository never holds a key."""
    key = fake_key("semgrep")
    (folder / "key_bad.py").write_text(
        f'# ruleid: vsms-hardcoded-key-python\nAPI_KEY = "{key}"\n', encoding="utf-8"
    )
    (folder / "key_bad.js").write_text(
        f'// ruleid: vsms-hardcoded-key-js\nconst apiKey = "{key}";\n', encoding="utf-8"
    )
    (folder / "key_good.py").write_text(
        'import os\nAPI_KEY = os.environ["VIRTUALSMS_API_KEY"]\n'
        'EXAMPLE = "vsms_your_key_here"\nDOC = "vsms_example_key_for_the_documentation"\n',
        encoding="utf-8",
    )


def test_every_rule_fires_on_its_positives_and_never_on_negatives(
    tmp_path: Path, with_semgrep: None
) -> None:
    cases = tmp_path / "cases"
    shutil.copytree(CASES, cases)
    write_key_cases(cases)
    report = to_report(run_semgrep(cases))
    found = {(Path(f.path).name, f.line, f.rule_id.split("/", 1)[1]) for f in report.findings}
    assert found == expected(cases)
    assert not any(path.startswith(("python_good", "js_good", "key_good")) for path, _, _ in found)
    rule_ids = {
        rule["id"]
        for doc in rules_dir().glob("*.yaml")
        for rule in yaml.safe_load(doc.read_text())["rules"]
    }
    assert {rule for _, _, rule in found} == rule_ids  # each rule has a positive example
    assert fake_key("semgrep") not in render(report, "json")  # the key is never quoted


def test_hardcoded_key_rules_agree_with_keys_py() -> None:
    """semgrep cannot run keys.is_key, so its regexes are checked against it here."""
    samples = [fake_key(i, length=20 + i % 30) for i in range(40)]
    samples += sorted(keys.PLACEHOLDERS | keys.IDENTIFIERS)
    samples += ["vsms_your_api_key_here_replace_me", "vsms_example_key_for_the_documentation"]
    for doc in rules_dir().glob("*.yaml"):
        for rule in yaml.safe_load(doc.read_text())["rules"]:
            if "hardcoded-key" not in rule["id"]:
                continue
            find, skip = (
                re.compile(p[1:-1].strip("=~/"))
                for p in (rule["patterns"][0]["pattern"], rule["patterns"][1]["pattern-not"])
            )
            for sample in samples:
                flagged = bool(find.search(sample)) and not skip.search(sample)
                assert flagged == keys.is_key(sample), (rule["id"], keys.mask(sample))


def test_broken_rules_are_could_not_check(tmp_path: Path, with_semgrep: None) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: broken\n    pattern: $X ==\n", encoding="utf-8")
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(GuardError, match="semgrep failed"):
        run_semgrep(tmp_path / "a.py", rules=rules)


def test_cli_formats_and_exit_codes(tmp_path: Path, semgrep_env: dict[str, str]) -> None:
    shutil.copy(CASES / "js_bad.ts", tmp_path / "server.ts")
    shutil.copy(CASES / "python_good.py", tmp_path / "good.py")
    run = subprocess.run(
        [CLI, "semgrep", tmp_path.name, "--format", "sarif"],
        capture_output=True,
        text=True,
        env=semgrep_env,
        cwd=tmp_path.parent,
        timeout=600,
    )
    assert run.returncode == 1, run.stderr
    results = json.loads(run.stdout)["runs"][0]["results"]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results} == {
        f"{tmp_path.name}/server.ts"
    }
    (tmp_path / "server.ts").unlink()
    clean = subprocess.run(
        [CLI, "semgrep", str(tmp_path)],
        capture_output=True,
        text=True,
        env=semgrep_env,
        timeout=600,
    )
    assert (clean.returncode, clean.stdout) == (0, "0 findings\n")


def test_check_of_a_subfolder_gives_every_checker_one_path_base(
    tmp_path: Path, semgrep_env: dict[str, str]
) -> None:
    """Run from the parent folder, as CI does: secrets and semgrep both name ``svc/k.py`` (a
    file that exists from there); outside the current folder, paths are absolute."""
    svc = tmp_path / "svc"
    svc.mkdir()
    (svc / "k.py").write_text(
        f'API_KEY = "{fake_key("one-base")}"\nlog.info(request.headers)\n', encoding="utf-8"
    )
    only = ["--only", "secrets", "--only", "semgrep", "--format", "json"]
    for cwd, target, shown in (
        (tmp_path, "svc", "svc/k.py"),
        (ROOT, str(svc), (svc / "k.py").as_posix()),
    ):
        run = subprocess.run(
            [CLI, "check", target, *only],
            capture_output=True,
            text=True,
            env=semgrep_env,
            cwd=cwd,
            timeout=600,
        )
        assert run.returncode == 1, run.stderr
        paths = {(f["checker"], f["path"]) for f in json.loads(run.stdout)["findings"]}
        assert {checker for checker, _ in paths} == {"secrets", "semgrep"}
        assert {path for _, path in paths} == {shown}
        assert (cwd / shown).is_file()


def test_semgrep_under_dot_tools_of_the_current_folder_is_found(
    tmp_path: Path, semgrep_env: dict[str, str]
) -> None:
    """``make tools`` puts semgrep in ./.tools/semgrep; an activated venv needs no extra env."""
    (tmp_path / ".tools/semgrep/bin").mkdir(parents=True)
    (tmp_path / ".tools/semgrep/bin/semgrep").symlink_to(semgrep_env[ENV_BINARY])
    (tmp_path / "app.py").write_text("log.info(request.headers)\n", encoding="utf-8")
    env = {k: v for k, v in semgrep_env.items() if k != ENV_BINARY}
    env["PATH"] = str(tmp_path / "no-bin")  # neither the env variable nor semgrep on PATH
    run = subprocess.run(
        [CLI, "semgrep", "."], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert run.returncode == 1, run.stderr
    assert "app.py:1" in run.stdout
    missing = subprocess.run(
        [CLI, "semgrep", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path / ".tools",
        timeout=60,
    )
    assert missing.returncode == 2
    assert "semgrep not found" in missing.stderr and "make tools" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_missing_semgrep_is_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, ENV_BINARY: str(tmp_path / "no-semgrep")}
    run = subprocess.run(
        [CLI, "semgrep", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert run.returncode == 2
    assert run.stderr.startswith("vsms-guard: error: VSMS_GUARD_SEMGREP=")
    assert "Traceback" not in run.stderr


def test_config_exclude_reaches_semgrep(tmp_path: Path, with_semgrep: None) -> None:
    for folder in ("src", "examples/insecure"):
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(CASES / "python_bad.py", tmp_path / folder / "client.py")
    report = to_report(run_semgrep(tmp_path, ["examples/insecure/"]))
    assert {f.path for f in report.findings} == {"src/client.py"}


def test_a_file_semgrep_cannot_parse_is_named(tmp_path: Path, with_semgrep: None) -> None:
    (tmp_path / "broken.py").write_text("def f(:\n  x = = 1\nlog.info(request.headers)\n")
    report = to_report(run_semgrep(tmp_path))
    rules = sorted((f.rule_id, f.severity.value) for f in report.findings)
    assert rules == [
        ("vsms-semgrep/not-parsed", "warning"),
        ("vsms-semgrep/vsms-headers-logged-python", "error"),
    ]


def test_tests_and_build_folders_of_a_checked_project_are_scanned(
    tmp_path: Path, with_semgrep: None
) -> None:
    """semgrep's built-in ignores skip tests/, test/ and build/; ours must not (that is where
    hard-coded keys and sloppy webhook handlers hide), while node_modules stays out."""
    for folder in ("src", "tests", "test", "build", "node_modules/dep"):
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(CASES / "python_bad.py", tmp_path / folder / "client.py")
    report = to_report(run_semgrep(tmp_path))
    assert {f.path.split("/")[0] for f in report.findings} == {"src", "tests", "test", "build"}


def test_semgrep_only_excludes_from_config(tmp_path: Path, with_semgrep: None) -> None:
    from vsms_guard.semgrep import excludes

    config = Config({"exclude": ["vendor/"], "semgrep": {"exclude": ["tests/"]}})
    assert excludes(config) == ["vendor/", "tests/"]
    with pytest.raises(GuardError, match="semgrep"):
        excludes(Config({"semgrep": {"exclude": "tests/"}}))


def test_hardcoded_key_findings_are_judged_by_keys_py(tmp_path: Path, with_semgrep: None) -> None:
    """semgrep's regex cannot weigh entropy; a match that keys.py says is no key is dropped."""
    not_keys = [
        "vsms_" + "0" * 28,
        "vsms_abcdefghijklmnopqrstuvwxyz",
        "vsms_messageQueryResultHandler",
    ]
    lines = [f'NAME_{n} = "{value}"' for n, value in enumerate(not_keys)]
    lines.append(f'REAL = "{fake_key("judged")}"')
    (tmp_path / "consts.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = to_report(run_semgrep(tmp_path))
    assert [(f.rule_id, f.line) for f in report.findings] == [
        ("vsms-semgrep/vsms-hardcoded-key-python", len(lines))
    ]


def test_a_file_too_big_for_semgrep_is_named_not_skipped_silently(
    tmp_path: Path, with_semgrep: None
) -> None:
    (tmp_path / "generated.py").write_text("x = 1\n" * 200_000, encoding="utf-8")  # 1.2 MB
    (tmp_path / "small.py").write_text("log.info(request.headers)\n", encoding="utf-8")
    report = to_report(run_semgrep(tmp_path))
    assert sorted((f.rule_id, f.path, f.severity.value) for f in report.findings) == [
        ("vsms-semgrep/not-scanned", "generated.py", "warning"),
        ("vsms-semgrep/vsms-headers-logged-python", "small.py", "error"),
    ]
