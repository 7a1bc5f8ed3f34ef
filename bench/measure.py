"""Run commands as measured subprocesses: wall seconds and peak RSS of each process.

Peak RSS comes from GNU ``/usr/bin/time -f %M`` (the kernel's ru_maxrss of the process and
its reaped descendants). A pipeline (``mysqldump | mysql``) is two processes; its peak is the
larger of the two. Without GNU time the peak is read from ``RUSAGE_CHILDREN``, which is
monotonic over the benchmark's life, so it is only an upper bound there.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"


@dataclass
class Measured:
    """One measured run of a command or pipeline."""

    wall_s: float
    rss_mb: float | None
    returncode: int
    stdout: str
    stderr: str


def _has_gnu_time() -> bool:
    return Path(GNU_TIME).exists() and shutil.which(GNU_TIME) is not None


def _wrap(command: Sequence[str], rss_file: Path | None) -> list[str]:
    if rss_file is None:
        return list(command)
    return [GNU_TIME, "-q", "-f", "%M", "-o", str(rss_file), *command]


def _read_kb(path: Path | None) -> float | None:
    if path is None:
        return None
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip().isdigit()]
    except OSError:
        return None
    return float(lines[-1]) if lines else None


def _children_maxrss_kb() -> float:
    return float(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def run_pipeline(
    commands: Sequence[Sequence[str]],
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 3600,
) -> Measured:
    """Run ``commands`` joined by pipes (one command is a pipeline of one)."""
    use_time = _has_gnu_time()
    with tempfile.TemporaryDirectory(prefix="dbsync_bench_rss_") as tmp:
        rss_files = [Path(tmp, f"rss{i}") if use_time else None for i in range(len(commands))]
        full_env = {**os.environ, **(env or {})}
        start = time.perf_counter()
        err_files = [Path(tmp, f"err{i}") for i in range(len(commands))]
        procs = _start(commands, rss_files, err_files, full_env, cwd)
        try:
            out, _ = procs[-1].communicate(timeout=timeout)
            for proc in procs[:-1]:
                proc.wait(timeout=timeout)
        except BaseException:
            for proc in procs:
                _kill_group(proc)
            raise
        wall = time.perf_counter() - start
        errs = [f.read_text(errors="replace") for f in err_files]
        peaks = [_read_kb(f) for f in rss_files] if use_time else [_children_maxrss_kb()]
    known = [p for p in peaks if p is not None]
    code = next((p.returncode for p in procs if p.returncode), 0)
    return Measured(
        wall_s=wall,
        rss_mb=max(known) / 1024 if known else None,
        returncode=code,
        stdout=out,
        stderr="".join(errs),
    )


def _start(
    commands: Sequence[Sequence[str]],
    rss_files: Sequence[Path | None],
    err_files: Sequence[Path],
    env: Mapping[str, str],
    cwd: str | Path | None,
) -> list[subprocess.Popen]:
    procs: list[subprocess.Popen] = []
    stdin = subprocess.DEVNULL
    for i, command in enumerate(commands):
        with err_files[i].open("w") as err:
            proc = subprocess.Popen(
                _wrap(command, rss_files[i]),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=err,
                env=dict(env),
                cwd=cwd,
                text=True,
                start_new_session=True,  # a timeout or Ctrl-C kills the whole group
            )
        if procs and procs[-1].stdout:
            procs[-1].stdout.close()  # only the next process reads it now
        procs.append(proc)
        stdin = proc.stdout  # type: ignore[assignment]
    return procs


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the process and its children (GNU time's child survives killing time alone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run(
    command: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 3600,
) -> Measured:
    return run_pipeline([command], env=env, cwd=cwd, timeout=timeout)
