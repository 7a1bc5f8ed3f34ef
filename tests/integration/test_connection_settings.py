"""Wrong connection settings are reported in one line; a missing target database is created.

``check-config`` connects to both servers with the real settings and checks the privileges
it can see; ``status`` and ``verify`` say in one line which server refused and why.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import pytest

from dbsync.sync.run import run_sync
from tests import helpers
from tests.integration.conftest import Scratch

GOOD = {"table": "good", "primary_key": "id"}
EXIT = {"check-config": 2, "status": 1, "verify": 1}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def source_tables(scratch: Scratch) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE good (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL)",
        "INSERT INTO good VALUES (1, 'a'), (2, 'b')",
        "CREATE TABLE secret (id INT PRIMARY KEY)",
    )


def run(scratch: Scratch, command: str, **change: str):
    return helpers.run_dbsync(
        {**scratch.env(), **change}, command, cwd=scratch.tables_path.parent
    )


def problem_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("config error:", "error:"))]


WRONG = {
    "password": ({"TARGET_DB_PASS": "not-the-password"}, "(using password: YES)"),
    "host": ({"TARGET_DB_PORT": "closed"}, "MySQL error 2003"),
}


@pytest.mark.parametrize("case", list(WRONG))
@pytest.mark.parametrize("command", list(EXIT))
def test_wrong_target_settings_are_reported_in_one_line(
    scratch: Scratch, command: str, case: str
) -> None:
    source_tables(scratch)
    scratch.write_tables([GOOD])
    change, expected = WRONG[case]
    change = {k: str(closed_port()) if v == "closed" else v for k, v in change.items()}

    done = run(scratch, command, **change)

    assert done.returncode == EXIT[command]
    (line,) = problem_lines(done.stderr)
    assert "TARGET_DB: cannot connect to mysql+pymysql://" in line
    assert expected in line
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("command", ["status", "verify"])
def test_a_missing_target_database_is_one_line_for_status_and_verify(
    scratch: Scratch, command: str
) -> None:
    source_tables(scratch)
    scratch.write_tables([GOOD])

    done = run(scratch, command, TARGET_DB_NAME=helpers.unique_name("dbsync_absent"))

    assert done.returncode == 1
    (line,) = problem_lines(done.stderr)
    assert "MySQL error 1049: Unknown database" in line


def test_sync_creates_a_missing_target_database(scratch: Scratch, runtime_factory) -> None:
    source_tables(scratch)
    scratch.write_tables([GOOD])
    helpers.execute(None, f"DROP DATABASE `{scratch.target}`")

    result = run_sync(runtime_factory(), "good")

    assert (result.status, helpers.count(scratch.target, "good")) == ("synced", 2)


@pytest.fixture
def limited_user(scratch: Scratch) -> Iterator[tuple[str, str]]:
    """A user who may read one source table (and see, not read, another) and only SELECT,
    INSERT on the target database."""
    source_tables(scratch)
    user, password = helpers.unique_name("dbsync_lim")[:32], secrets.token_hex(8)
    helpers.execute(
        None,
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON `{scratch.source}`.`good` TO '{user}'@'%'",
        f"GRANT INSERT ON `{scratch.source}`.`secret` TO '{user}'@'%'",
        f"GRANT SELECT, INSERT ON `{scratch.target}`.* TO '{user}'@'%'",
    )
    yield user, password
    helpers.execute(None, f"DROP USER IF EXISTS '{user}'@'%'")


def limited_env(user: str, password: str) -> dict[str, str]:
    return {
        "SOURCE_DB_USER": user, "SOURCE_DB_PASS": password,
        "TARGET_DB_USER": user, "TARGET_DB_PASS": password,
    }


def test_check_config_reports_missing_privileges_and_databases(
    scratch: Scratch, limited_user: tuple[str, str]
) -> None:
    scratch.write_tables([GOOD, {"table": "secret", "primary_key": "id"}])
    helpers.execute(None, f"DROP DATABASE `{scratch.target}`")

    done = run(scratch, "check-config", **limited_env(*limited_user))

    lines = problem_lines(done.stderr)
    assert done.returncode == 2
    expected = [
        f"SOURCE_DB: user '{limited_user[0]}'@'%' may not SELECT from {scratch.source}.secret",
        f"TARGET_DB: database '{scratch.target}' does not exist and user",
        f"lacks UPDATE, DELETE, CREATE, DROP, ALTER, INDEX on database '{scratch.target}'",
        f"TARGET_DB: database '{scratch.staging}' does not exist and user",
        f"lacks SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX on database "
        f"'{scratch.staging}'",
    ]
    for text in expected:
        assert any(text in line for line in lines), (text, lines)
    assert len(lines) == len(expected), lines


def test_sync_says_which_database_to_create_when_it_may_not(
    scratch: Scratch, limited_user: tuple[str, str], runtime_factory
) -> None:
    scratch.write_tables([GOOD])
    helpers.execute(None, f"DROP DATABASE `{scratch.target}`")
    user, password = limited_user

    result = run_sync(
        runtime_factory(
            source_db_user=user, source_db_pass=password,
            target_db_user=user, target_db_pass=password,
        ),
        "good",
    )

    assert result.status == "failed"
    assert result.error is not None
    assert f"create it (CREATE DATABASE `{scratch.target}`)" in result.error
    assert "\n" not in result.error


def test_a_statement_longer_than_the_read_timeout_fails_as_a_transient_error(
    scratch: Scratch,
) -> None:
    from dbsync.backends.engines import create_engine
    from dbsync.config.errors import Outcome, classify, describe

    settings = scratch.settings(db_read_timeout=1)
    engine = create_engine(settings.source, settings, target=False)
    try:
        with pytest.raises(Exception) as caught, engine.connect() as conn:  # noqa: PT011
            conn.exec_driver_sql("SELECT SLEEP(5)")
    finally:
        engine.dispose()
    assert classify(caught.value) is Outcome.TRANSIENT
    assert describe(caught.value).startswith("MySQL error 2013")


def test_a_server_that_never_answers_is_reported_instead_of_hanging(scratch: Scratch) -> None:
    scratch.write_tables([GOOD])
    with socket.socket() as silent:  # accepts TCP connections (backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = str(silent.getsockname()[1])

        done = run(scratch, "status", TARGET_DB_PORT=port, DB_READ_TIMEOUT="1")

    assert done.returncode == 1
    (line,) = problem_lines(done.stderr)
    assert "TARGET_DB: cannot connect" in line and "timed out" in line
