"""Fixtures shared by every test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Keep the developer's environment and .env out of tests."""
    import os

    for name in list(os.environ):
        if name.startswith(("SOURCE_DB_", "TARGET_DB_", "STAGING_DB_", "POOL_", "TABLES_CONFIG")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
