"""Settings: passwords never printed, problems reported per variable."""

from __future__ import annotations

import pytest

from dbsync.config.errors import ConfigError
from dbsync.config.settings import load_settings

SECRET = "s3cr3t-p@ss:w/rd"
URL_SECRET = "url-only-secret"


def _settings(**overrides: object):
    values: dict[str, object] = {
        "source_db_name": "src",
        "target_db_name": "tgt",
        "source_db_pass": SECRET,
        "target_db_pass": SECRET,
    }
    values.update(overrides)
    return load_settings(**values)


def test_passwords_are_not_in_repr_or_str() -> None:
    settings = _settings()
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert settings.source_db_pass.get_secret_value() == SECRET  # it is really there


def test_safe_url_masks_the_password() -> None:
    settings = _settings()
    for side in (settings.source, settings.target):
        assert SECRET not in side.safe_url()
        assert "***" in side.safe_url()
        assert side.url.password == SECRET


def test_database_url_passwords_are_hidden_too() -> None:
    settings = _settings(
        source_db_url=f"mysql+pymysql://reader:{URL_SECRET}@db.example:3307/shop",
        source_db_name=None,
    )
    assert URL_SECRET not in repr(settings)
    assert URL_SECRET not in str(settings)
    assert URL_SECRET not in settings.source.safe_url()
    assert settings.source.database == "shop"
    assert settings.source.url.port == 3307


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DB_NAME", "from_env")
    monkeypatch.setenv("TARGET_DB_NAME", "tgt_env")
    monkeypatch.setenv("TARGET_DB_PORT", "3310")
    settings = load_settings()
    assert settings.source.database == "from_env"
    assert settings.target.url.port == 3310
    assert settings.staging_database == "tgt_env_staging"


def test_staging_database_can_be_named() -> None:
    assert _settings(staging_db_name="pre_made").staging_database == "pre_made"


def _problems(**overrides: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _settings(**overrides)
    return [str(p) for p in caught.value.problems]


def test_a_bad_port_names_the_variable() -> None:
    (problem,) = _problems(source_db_port="notanumber")
    assert problem.startswith("SOURCE_DB_PORT: ")


def test_a_missing_database_name_names_the_variable() -> None:
    (problem,) = _problems(target_db_name=None)
    assert "TARGET_DB_NAME" in problem


def test_several_field_problems_are_reported_together() -> None:
    problems = _problems(source_db_port="x", fetch_limit=0, target_db_ssl_mode="sometimes")
    assert [p.split(":")[0] for p in problems] == [
        "SOURCE_DB_PORT",
        "TARGET_DB_SSL_MODE",
        "FETCH_LIMIT",
    ]


def test_a_missing_database_name_is_reported_alongside_a_bad_port() -> None:
    problems = _problems(source_db_port="notanumber", target_db_name=None)
    assert any(p.startswith("SOURCE_DB_PORT") for p in problems)
    assert any("TARGET_DB_NAME" in p for p in problems)


def test_database_names_from_the_env_file_count_when_another_setting_is_bad(tmp_path) -> None:
    (tmp_path / ".env").write_text("SOURCE_DB_NAME=src\nTARGET_DB_NAME=tgt\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_settings(source_db_port="notanumber")

    assert [str(p).split(":")[0] for p in caught.value.problems] == ["SOURCE_DB_PORT"]


def test_a_small_pool_is_reported_alongside_a_bad_port() -> None:
    problems = _problems(source_db_port="notanumber", pool_size=1, max_overflow=1)
    assert any(p.startswith("SOURCE_DB_PORT") for p in problems)
    assert any("POOL_SIZE + MAX_OVERFLOW is 2" in p for p in problems)


def test_problem_messages_do_not_echo_secret_values() -> None:
    problems = _problems(source_db_port=SECRET)
    assert all(SECRET not in p for p in problems)


def test_a_pool_too_small_for_one_sync_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError) as raised:
        _settings(pool_size=2, max_overflow=1)

    assert "POOL_SIZE + MAX_OVERFLOW is 3 but must be at least 4" in str(raised.value)


def test_the_smallest_pool_one_sync_needs_is_accepted() -> None:
    settings = _settings(pool_size=1, max_overflow=3)

    assert (settings.pool_size, settings.max_overflow) == (1, 3)


def test_fleet_settings_report_a_limit_problem_beside_a_field_error() -> None:
    from workers.config import load_fleet_settings

    with pytest.raises(ConfigError) as caught:
        load_fleet_settings(sync_time_limit=100, sync_soft_time_limit=200, result_expires=1)

    assert [str(p) for p in caught.value.problems] == [
        "RESULT_EXPIRES: Input should be greater than or equal to 60",
        "settings: SYNC_SOFT_TIME_LIMIT must be lower than SYNC_TIME_LIMIT",
    ]


def test_connections_get_the_connect_and_read_timeouts() -> None:
    from dbsync.backends.engines import SOURCE_INIT, mysql_connect_args

    settings = load_settings(
        source_db_name="s", target_db_name="t", db_connect_timeout=3, db_read_timeout=120
    )
    args = mysql_connect_args(settings.source, settings, SOURCE_INIT, local_infile=False)
    assert (args["connect_timeout"], args["read_timeout"]) == (3, 120)


def test_read_timeout_default_leaves_room_for_a_long_statement() -> None:
    settings = load_settings(source_db_name="s", target_db_name="t")
    assert (settings.db_connect_timeout, settings.db_read_timeout) == (10, 3600)
