"""The configured password never appears in logs, health output, metrics or error messages."""

from __future__ import annotations

import io
import json
import logging
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dbsync.backends.engines import Engines
from dbsync.config.errors import ConfigError, describe
from dbsync.config.settings import load_settings
from dbsync.ops import health_facts, health_server, logs, metrics
from dbsync.ops.status_view import render_status
from tests import helpers
from tests.integration.conftest import Scratch


@pytest.fixture
def password() -> str:
    # Distinctive and URL-safe-ish, with characters that need quoting in SQL and URLs.
    return f"Pw-{secrets.token_hex(8)}-x'y@z"


@pytest.fixture
def db_user(scratch: Scratch, password: str) -> Iterator[str]:
    user = helpers.unique_name("dbsync_secret")[:32]
    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    helpers.execute(
        None,
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{quoted}'",
        f"GRANT SELECT ON `{scratch.source}`.* TO '{user}'@'%'",
        f"GRANT ALL ON `{scratch.target}`.* TO '{user}'@'%'",
    )
    yield user
    helpers.execute(None, f"DROP USER IF EXISTS '{user}'@'%'")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    with helpers.captured_logs() as buffer:
        yield buffer
    metrics.disable_multiprocess()


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.read().decode()


def test_password_appears_nowhere(
    scratch: Scratch, db_user: str, password: str, captured: io.StringIO
) -> None:
    scratch.write_tables([{"table": "orders", "primary_key": "id"}])
    settings = scratch.settings(
        source_db_user=db_user,
        source_db_pass=password,
        target_db_user=db_user,
        target_db_pass=password,
        redis_url=f"redis://:{password}@127.0.0.1:6379/0",
    )
    logs.register_settings_secrets(settings)
    outputs: list[str] = []
    log = logging.getLogger("dbsync.sync_engine")

    # The credentials work: a healthy endpoint and metrics.
    server = health_server.HealthServer(settings, host="127.0.0.1", port=0).start()
    try:
        outputs.append(fetch(server.url))
        outputs.append(fetch(server.url + "metrics"))
    finally:
        server.stop()
    assert json.loads(outputs[0])["status"] != "unhealthy"

    # A connection refused for a wrong user: health output, check output, error messages.
    wrong = scratch.settings(
        source_db_user="nobody_here", source_db_pass=password, target_db_pass=password
    )
    server = health_server.HealthServer(wrong, host="127.0.0.1", port=0).start()
    try:
        outputs.append(fetch(server.url))
        out = io.StringIO()
        health_server.check(wrong, server.url, out=out)
        outputs.append(out.getvalue())
    finally:
        server.stop()
    engine = Engines.create(wrong).source
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        outputs += [str(exc), repr(exc), describe(exc)]
        log.exception("connect failed")
    finally:
        engine.dispose()

    # Config errors with the password set.
    try:
        load_settings(source_db_name="s", target_db_name="t", source_db_pass=password, pool_size=0)
    except ConfigError as exc:
        outputs.append(str(exc))
    try:
        load_settings(source_db_url=f"mysql+pymysql://u:{password}@h/db", target_db_port=0)
    except ConfigError as exc:
        outputs.append(str(exc))

    # Settings printed, URLs logged by mistake, a failing sync's error in `dbsync status`.
    outputs += [repr(settings), str(settings.model_dump()), settings.source.safe_url()]
    log.info("connecting to %s", settings.source.url.render_as_string(hide_password=False))
    log.info("broker %s", settings.redis_url.get_secret_value())
    log.error("error while using password=%s", password)
    from dbsync.backends.status import read_status, record_result
    from dbsync.config.result import SyncResult

    failing = SyncResult(table="orders", mode="incremental").finish("failed", f"bad {password}")
    admin = Engines.create(scratch.settings())
    try:
        record_result(admin.target, scratch.target, failing)
        outputs.append(render_status(read_status(admin.target, scratch.target)))
        body, _ = health_facts.build_health(scratch.settings(), admin, failing.started_at)
        outputs.append(json.dumps(body))
    finally:
        admin.dispose()

    outputs.append(captured.getvalue())
    everything = "\n".join(outputs)
    assert "Access denied" in everything  # the failures really happened
    assert password not in everything
    assert password.split("'")[0] not in everything  # not even the part before the quote
