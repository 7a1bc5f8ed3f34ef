"""The dbsync command's entry point."""

from __future__ import annotations

import gc

import pytest


def test_the_dbsync_command_freezes_its_imports_before_running_main(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dbsync import cli

    frozen_at_main: list[int] = []
    monkeypatch.setattr(cli, "main", lambda: frozen_at_main.append(gc.get_freeze_count()) or 0)
    try:
        assert cli.console() == 0
    finally:
        gc.unfreeze()
    assert frozen_at_main and frozen_at_main[0] > 0
