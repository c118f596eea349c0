"""Configuration lookup: explicit file, .vsms-guard.toml, [tool.vsms-guard], defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from vsms_guard.config import load_config
from vsms_guard.errors import GuardError


def test_defaults_when_nothing_configured(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    assert cfg.source is None and cfg.exclude == [] and cfg.section("versions") == {}


def test_pyproject_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.vsms-guard]\nexclude = ["fixtures/"]\n'
        "[tool.vsms-guard.versions]\nproduction = true\n"
    )
    cfg = load_config(tmp_path)
    assert cfg.exclude == ["fixtures/"]
    assert cfg.section("versions") == {"production": True}


def test_own_file_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.vsms-guard]\nexclude = ["a/"]\n')
    (tmp_path / ".vsms-guard.toml").write_text('exclude = ["b/"]\n')
    assert load_config(tmp_path).exclude == ["b/"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("exclude = [", "invalid TOML"),
        ('exclude = "a/"', "'exclude' must be a list of strings"),
        ("versions = 3", "[versions] must be a table"),
    ],
)
def test_bad_config_is_a_guard_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".vsms-guard.toml").write_text(text)
    with pytest.raises(GuardError, match=message.replace("[", r"\[")):
        cfg = load_config(tmp_path)
        cfg.exclude  # noqa: B018 - validation happens on access
        cfg.section("versions")


@pytest.mark.parametrize(
    "text, message",
    [
        ('exlcude = ["a/"]\n', "unknown setting(s): exlcude"),
        ("[versoins]\nproduction = true\n", "unknown setting(s): versoins"),
    ],
)
def test_misspelt_settings_are_errors_not_ignored(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".vsms-guard.toml").write_text(text)
    with pytest.raises(GuardError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(tmp_path)


def test_section_known_keys(tmp_path: Path) -> None:
    (tmp_path / ".vsms-guard.toml").write_text('[scan]\nexcldue = ["x"]\n')
    with pytest.raises(GuardError, match=r"\[scan\] unknown setting\(s\): excldue"):
        load_config(tmp_path).section("scan", known=("exclude", "baseline"))


def test_pyproject_is_not_merged_with_own_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.vsms-guard]\nexclude = ["a/"]\n')
    (tmp_path / ".vsms-guard.toml").write_text("[versions]\nproduction = true\n")
    cfg = load_config(tmp_path)
    assert cfg.source == tmp_path / ".vsms-guard.toml" and cfg.exclude == []
