from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import fake_key


@pytest.fixture
def key() -> str:
    """One fake key, built at run time."""
    return fake_key("fixture")


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One committed snapshot of this checkout, shared by the pre-commit tests, so pre-commit
    builds the hook environment once per run."""
    from tests.precommit_helpers import snapshot_checkout

    return snapshot_checkout(tmp_path_factory.mktemp("hook-repo"))
