"""TLS in every SSL mode, against a TLS-only MariaDB the tests start themselves.

The server (``mariadb-install-db`` + ``mariadbd`` on a free port, module-scoped) accepts only
TLS connections (``--require-secure-transport=ON``) and presents a certificate for
``localhost`` / ``127.0.0.1`` signed by a throwaway CA made with ``openssl``. It is both the
source and the target of the syncs below, so every connection a sync opens (schema reads,
extraction, table lock, bulk load, swap) must speak TLS.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from dbsync.compare.verify import verify_table
from dbsync.config.errors import Outcome, classify
from dbsync.config.settings import load_settings
from dbsync.config.tables import load_tables
from dbsync.sync.run import run_sync, sync_table
from dbsync.sync.runtime import Runtime
from tests import helpers

pytestmark = pytest.mark.skipif(
    not (shutil.which("mariadb-install-db") and Path("/usr/sbin/mariadbd").exists()),
    reason="needs mariadb-install-db and /usr/sbin/mariadbd to start a TLS-only server",
)


@dataclass
class TlsServer:
    port: int
    ca: Path
    wrong_ca: Path

    def connect(self, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", database=database, autocommit=True,
            ssl_ca=str(self.ca), charset="utf8mb4",
        )

    def execute(self, *statements: str) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "2", "-subj", f"/CN=dbsync test {name}")
    return key, cert


def make_server_cert(directory: Path, ca_key: Path, ca_cert: Path) -> tuple[Path, Path]:
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", "/CN=localhost")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return key, cert


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    base = tmp_path_factory.mktemp("tls")
    ca_key, ca = make_ca(base, "ca")
    _, wrong_ca = make_ca(base, "other-ca")
    key, cert = make_server_cert(base, ca_key, ca)
    data = base / "data"
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
         "--auth-root-authentication-method=normal"],
        check=True, capture_output=True,
    )
    server = TlsServer(port=free_port(), ca=ca, wrong_ca=wrong_ca)
    with (base / "server.log").open("wb") as log:
        process = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", "--user=root", f"--datadir={data}",
             f"--port={server.port}", "--bind-address=127.0.0.1", f"--socket={data}/sock",
             "--skip-log-bin", f"--ssl-ca={ca}", f"--ssl-cert={cert}", f"--ssl-key={key}",
             "--require-secure-transport=ON"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.connect().close()
                break
            except pymysql.err.OperationalError:
                assert process.poll() is None, (base / "server.log").read_text()
                assert time.monotonic() < deadline, "the TLS server did not start"
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture
def tls_pair(tls_server: TlsServer, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """Source and target databases on the TLS server, the source holding table ``t``."""
    name = helpers.unique_name()
    source, target = f"{name}_src", f"{name}_tgt"
    tls_server.execute(
        f"CREATE DATABASE `{source}`",
        f"CREATE TABLE `{source}`.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
        f"INSERT INTO `{source}`.t SELECT seq, CONCAT('row ', seq) FROM `{source}`.seq_1_to_50",
    )
    tables = helpers.write_tables(tmp_path / "tables.json", [{"table": "t", "primary_key": "id"}])
    yield source, target, tables
    for database in (source, target, f"{target}_staging"):
        tls_server.execute(f"DROP DATABASE IF EXISTS `{database}`")


def tls_env(server: TlsServer, pair: tuple[str, str, Path], mode: str, ca: Path | None) -> dict:
    source, target, tables = pair
    env: dict[str, object] = {"tables_config": str(tables)}
    for side, database in (("source", source), ("target", target)):
        env.update(
            {
                f"{side}_db_host": "127.0.0.1",
                f"{side}_db_port": server.port,
                f"{side}_db_name": database,
                f"{side}_db_user": "root",
                f"{side}_db_ssl_mode": mode,
            }
        )
        if ca is not None:
            env[f"{side}_db_ssl_ca"] = str(ca)
    return env


def runtime_for(env: dict) -> Runtime:
    settings = load_settings(**env)
    return Runtime.create(settings, load_tables(settings.tables_config))


MODES = {
    "preferred": None,  # the default: TLS because the server offers it, no verification
    "required": None,
    "verify_ca": "ca",
    "verify_identity": "ca",
}


@pytest.mark.parametrize("mode", list(MODES))
def test_sync_copies_the_table_from_a_tls_only_server(
    tls_server: TlsServer, tls_pair: tuple[str, str, Path], mode: str
) -> None:
    ca = tls_server.ca if MODES[mode] else None
    runtime = runtime_for(tls_env(tls_server, tls_pair, mode, ca))
    try:
        result = sync_table(runtime, "t")
        report = verify_table(runtime, "t")
    finally:
        runtime.dispose()
    assert (result.status, result.rows_loaded, report.ok) == ("synced", 50, True)


def test_a_certificate_from_an_unknown_ca_fails_for_good_saying_so(
    tls_server: TlsServer, tls_pair: tuple[str, str, Path]
) -> None:
    runtime = runtime_for(tls_env(tls_server, tls_pair, "verify_ca", tls_server.wrong_ca))
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - its classification is checked
            sync_table(runtime, "t")
        result = run_sync(runtime, "t")
    finally:
        runtime.dispose()
    assert classify(caught.value) is Outcome.FATAL
    assert result.status == "failed"
    assert result.error is not None and "certificate verification failed" in result.error


def test_check_config_reports_a_certificate_problem_in_one_line(
    tls_server: TlsServer, tls_pair: tuple[str, str, Path]
) -> None:
    env = tls_env(tls_server, tls_pair, "verify_identity", tls_server.wrong_ca)
    done = helpers.run_dbsync(
        {key.upper(): str(value) for key, value in env.items()}, "check-config",
        cwd=tls_pair[2].parent,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("config error: ")]
    assert done.returncode == 2
    assert len(lines) == 2, done.stderr  # one per side
    assert all("certificate verification failed" in line for line in lines), lines
