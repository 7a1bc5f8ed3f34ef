"""`dbsync health --check` is a container health check: it answers 0 or 1, never 2."""

from __future__ import annotations

import socket

import pytest

from dbsync.cli import main


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_check_without_database_settings_reports_an_unreachable_endpoint_as_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"

    assert main(["health", "--check", "--url", url]) == 1
    assert "unreachable" in capsys.readouterr().out
