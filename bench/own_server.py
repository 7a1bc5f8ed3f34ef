"""A MariaDB server of the bench's own, started from its data directory and stopped by its
pid, for steps whose figures depend on the server's memory.

The row comparison of issue 18 reads whole tables, so it runs at the speed of the server's
buffer pool when the tables fit in it and at the disk's when they do not. Debian's MariaDB
keeps the stock 128 MB pool and reads with ``O_DIRECT`` (no page cache behind it): one
1,000,000-row events table (~170 MB) does not fit, and every scan of it reads the disk. A
production server holding such tables sizes its pool to its hot data, so the ``diff`` step
runs on a server started here with a pool that holds its tables (:func:`buffer_pool_for`;
everything else the server's defaults), unless ``--diff-server shared`` asks for the given
one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql

from bench import db

MARIADBD = Path("/usr/sbin/mariadbd")
BUFFER_POOL_MIN = 2 << 30  # the diff step's three 1,000,000-row tables, a staging copy, indexes
BUFFER_POOL_PER_ROW = 800  # ~200 bytes a row of the events table, in four tables
START_TIMEOUT = 60.0


def buffer_pool_for(rows: int) -> int:
    """A pool that holds the diff step's tables of ``rows`` rows, at most half the memory."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return min(max(BUFFER_POOL_MIN, rows * BUFFER_POOL_PER_ROW), memory // 2)


def available() -> bool:
    return MARIADBD.exists() and shutil.which("mariadb-install-db") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(server: db.Server, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with db.connect(server):
                return
        except pymysql.err.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text("utf-8", "replace")[-2000:]
                raise RuntimeError(f"the bench's own MariaDB did not start:\n{tail}") from None
            time.sleep(0.2)


@contextmanager
def started(directory: Path, buffer_pool: int = BUFFER_POOL_MIN) -> Iterator[db.Server]:
    """A fresh server on a free loopback port with a ``buffer_pool`` of that many bytes;
    stopped and its data directory removed on leaving."""
    data = directory / "data"
    data.mkdir(parents=True)
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
         "--auth-root-authentication-method=normal"],
        check=True, capture_output=True,
    )
    server = db.Server("127.0.0.1", _free_port(), "root", "")
    log = directory / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(MARIADBD), "--no-defaults", "--user=root", f"--datadir={data}",
             f"--port={server.port}", "--bind-address=127.0.0.1", f"--socket={data}/sock",
             "--skip-log-bin", f"--innodb-buffer-pool-size={buffer_pool}"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(server, process, log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data, ignore_errors=True)
