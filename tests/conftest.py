from __future__ import annotations

import pytest

from tests.fakes import fake_key


@pytest.fixture
def key() -> str:
    """One fake key, built at run time."""
    return fake_key("fixture")
