"""Peer tools: command lines for the dlt peer and Sling, and Sling's private install.

Sling is not a dbsync dependency. The benchmark installs the PyPI packages ``sling`` and
``sling-linux-amd64`` (the CLI binary ships inside that wheel) into ``bench/.peers/venv``
(git-ignored) on first use and runs the binary directly. Where that cannot work, the reason
is reported and the benchmark goes on without Sling.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

from bench.db import Server

SLING_VERSION = "1.4.11"  # the newest sling-linux-amd64 wheel; the wrapper pinned to match
PEERS_DIR = Path(__file__).resolve().parent / ".peers"


class PeerUnavailable(Exception):
    """The peer cannot be installed or run here; the message says why."""


def _sling_binary(venv: Path) -> Path | None:
    found = sorted(venv.glob("lib/python*/site-packages/sling_linux_amd64/bin/sling-linux-amd64"))
    return found[0] if found else None


def _pip_install(venv: Path) -> None:
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       capture_output=True, text=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", f"sling=={SLING_VERSION}",
         f"sling-linux-amd64=={SLING_VERSION}"],
        check=True, capture_output=True, text=True, timeout=600,
    )


def ensure_sling(peers_dir: Path = PEERS_DIR) -> Path:
    """Path of a working Sling binary, installing it on first use."""
    if platform.system() != "Linux" or platform.machine() not in {"x86_64", "AMD64"}:
        raise PeerUnavailable(f"no sling wheel for {platform.system()}/{platform.machine()}")
    venv = peers_dir / "venv"
    binary = _sling_binary(venv)
    if binary is None:
        try:
            _pip_install(venv)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            tail = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()[-1:]
            raise PeerUnavailable(f"pip install failed: {' '.join(tail)}") from exc
        binary = _sling_binary(venv)
    if binary is None:
        raise PeerUnavailable("the sling-linux-amd64 wheel has no binary")
    probe = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                           timeout=60, env=sling_env(peers_dir))
    if probe.returncode != 0:
        raise PeerUnavailable(f"sling --version failed: {probe.stderr.strip()[:200]}")
    return binary


def sling_env(home: Path) -> dict[str, str]:
    return {"SLING_DISABLE_TELEMETRY": "true", "SLING_HOME_DIR": str(home / "sling-home")}


def sling_connections(server: Server, source_db: str, target_db: str) -> dict[str, str]:
    """Connections as environment variables. ``charset=utf8mb4``: without it Sling's driver
    turns 4-byte UTF-8 (emoji) into '?', and the content check fails."""
    scheme = "mysql"
    return {
        "BENCH_SLING_SRC": server.url(source_db, scheme) + "?charset=utf8mb4",
        "BENCH_SLING_TGT": server.url(target_db, scheme) + "?charset=utf8mb4",
    }


def sling_command(binary: Path, source_db: str, target_db: str, table: str, *,
                  initial: bool) -> list[str]:
    """Initial: full-refresh creating the target with a primary key on id (without one,
    Sling's delete-by-key upsert scans the whole target per staged row). Then incremental
    with primary key id and update key updated_at (Sling reads max(updated_at) from the
    target)."""
    command = [
        str(binary), "run", "--src-conn", "BENCH_SLING_SRC", "--src-stream",
        f"{source_db}.{table}", "--tgt-conn", "BENCH_SLING_TGT", "--tgt-object",
        f"{target_db}.{table}",
    ]
    if initial:
        return [*command, "--mode", "full-refresh",
                "--tgt-options", '{"table_keys": {"primary": ["id"]}}']
    return [*command, "--mode", "incremental", "--primary-key", "id",
            "--update-key", "updated_at"]


def dlt_command(server: Server, source_db: str, target_db: str, table: str,
                pipelines_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "bench.dlt_peer",
        "--source-url", server.url(source_db),
        "--table", table,
        "--target-url", server.url(target_db),
        "--dataset", target_db,
        "--pipelines-dir", str(pipelines_dir),
        "--name", f"bench_{target_db}",
    ]


def dlt_env() -> dict[str, str]:
    return {"RUNTIME__DLTHUB_TELEMETRY": "false"}  # no network calls from a sandbox
