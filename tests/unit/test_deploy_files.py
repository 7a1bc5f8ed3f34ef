"""Container and CI files, checked statically (no Docker engine runs here)."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbsync.config.tables import load_tables

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Continuation lines joined, so that every instruction is one line.
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
APP_SERVICES = ("beat", "worker", "flower")


def command(service: str) -> list[str]:
    raw = SERVICES[service]["command"]
    return shlex.split(raw) if isinstance(raw, str) else list(raw)


def instructions(name: str) -> list[str]:
    return [
        line.split(None, 1)[1]
        for line in DOCKERFILE.splitlines()
        if line.strip() and line.split(None, 1)[0].upper() == name
    ]


def test_compose_has_the_fleet_services() -> None:
    assert set(SERVICES) == {
        "mysql_source",
        "mysql_target",
        "redis",
        "beat",
        "worker",
        "flower",
        "prometheus",
    }


def _mounts(service: str) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        host, container = str(volume).split(":")[:2]
        found[container] = host
    return found


def test_prometheus_loads_the_rules_and_the_scrape_config_from_the_repo() -> None:
    cmd = command("prometheus")
    config_path = next(a.split("=", 1)[1] for a in cmd if a.startswith("--config.file="))
    mounts = _mounts("prometheus")
    config = yaml.safe_load((ROOT / mounts[config_path]).read_text(encoding="utf-8"))
    config_dir = config_path.rsplit("/", 1)[0]
    for rule_file in config["rule_files"]:
        assert (ROOT / mounts[f"{config_dir}/{rule_file}"]).is_file(), rule_file


def test_prometheus_scrapes_every_worker_on_the_health_port() -> None:
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text(encoding="utf-8"))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "dbsync-workers")
    (dns,) = job["dns_sd_configs"]
    assert dns["names"] == ["worker"] and dns["port"] == 8089
    assert "8089" in SERVICES["worker"]["expose"]


def test_prometheus_is_published_on_loopback_only() -> None:
    assert all(str(p).startswith("127.0.0.1:") for p in SERVICES["prometheus"]["ports"])


def _flower_options() -> dict[str, Any]:
    conf = next(a.split("=", 1)[1] for a in command("flower") if a.startswith("--conf="))
    copied = [c.split() for c in instructions("COPY") if c.split()[-1] == conf]
    assert copied, f"the image has no {conf}"
    import flower.options  # noqa: F401 - defines Flower's options on tornado's parser
    from tornado.options import OptionParser

    parser = OptionParser()  # a parser of our own: Flower's global one stays untouched
    for name in ("tasks_columns", "format_task"):
        option = flower.options.options._options[name.replace("_", "-")]
        parser.define(name, default=option.default, type=option.type)
    parser.parse_config_file(str(ROOT / copied[0][-2]), final=False)
    return {name: getattr(parser, name) for name in ("tasks_columns", "format_task")}


def test_flower_task_list_shows_the_table_and_row_counts() -> None:
    from flower.views.tasks import TASK_COLUMNS

    options = _flower_options()
    columns = [c.strip() for c in options["tasks_columns"].split(",")]
    assert set(columns) <= set(TASK_COLUMNS)
    assert {"args", "result", "state"} <= set(columns)  # args: the table; result: the rows
    assert callable(options["format_task"])


def test_worker_scales() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    for port in worker.get("ports", []):
        assert ":" not in str(port), "a fixed host port would stop --scale worker=N"
    assert "deploy" not in worker or worker["deploy"].get("replicas") in (None,)


def test_beat_runs_exactly_once() -> None:
    assert "container_name" in SERVICES["beat"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_a_health_check(service: str) -> None:
    assert SERVICES[service]["healthcheck"]["test"]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_wait_for_healthy_dependencies(service: str) -> None:
    depends = SERVICES[service]["depends_on"]
    assert "redis" in depends
    assert all(d["condition"] == "service_healthy" for d in depends.values())


def test_worker_waits_for_both_databases() -> None:
    assert {"mysql_source", "mysql_target", "redis"} <= set(SERVICES["worker"]["depends_on"])


def test_flower_publishes_5555_with_basic_auth_from_env() -> None:
    flower = SERVICES["flower"]
    assert any(str(p).endswith(":5555") for p in flower["ports"])
    auth = flower["environment"]["FLOWER_BASIC_AUTH"]
    assert "${FLOWER_USER" in auth and "${FLOWER_PASSWORD" in auth


def _celery_app(cmd: list[str]) -> str:
    return cmd[cmd.index("-A") + 1]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_commands_use_existing_entry_points(service: str) -> None:
    cmd = command(service)
    assert cmd[0] == "celery"
    module = _celery_app(cmd)
    assert importlib.util.find_spec(module) is not None, f"{module} is not in the package"
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert any(fnmatch.fnmatch(module.split(".")[0], pattern) for pattern in include)


def _health_commands() -> list[list[str]]:
    found = [shlex.split(instructions("HEALTHCHECK")[0].split("CMD", 1)[1])]
    for service in SERVICES.values():
        test = service["healthcheck"]["test"]
        if test[0] == "CMD" and test[1] == "dbsync":
            found.append(test[1:])
    return found


def test_health_checks_call_the_dbsync_console_script() -> None:
    assert PYPROJECT["project"]["scripts"]["dbsync"] == "dbsync.cli:console"
    for cmd in _health_commands():
        cmd = [part.strip('[]",') for part in cmd]
        assert cmd[:3] == ["dbsync", "health", "--check"]


def test_dbsync_cli_knows_the_commands_containers_run() -> None:
    from dbsync.cli import build_parser

    parser = build_parser()
    for argv in (["health", "--check"], ["serve"]):
        args = parser.parse_args(argv)
        assert callable(args.handler)


def test_compose_file_passes_docker_compose_config(tmp_path: Path) -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run(
        [
            "docker",
            "compose",
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--env-file",
            str(env),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    stages = instructions("FROM")
    assert len(stages) >= 2
    assert all(stage.startswith("python:3.11-slim") for stage in stages)
    assert "--from=build" in DOCKERFILE


def test_dockerfile_runs_as_non_root() -> None:
    user = instructions("USER")[-1].split(":")[0]
    assert user not in ("root", "0")


def test_dockerfile_exposes_health_port_and_checks_health() -> None:
    assert "8089" in instructions("EXPOSE")[0].split()
    check = instructions("HEALTHCHECK")[0]
    assert '"dbsync", "health", "--check"' in check


def test_image_contains_everything_the_commands_import() -> None:
    copied = " ".join(instructions("COPY"))
    for path in ("pyproject.toml", "dbsync", "workers", "beat", "tables.json"):
        assert path in copied


def test_dockerignore_keeps_secrets_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".git", ".venv"} <= set(ignored)


def _compose_variables() -> set[str]:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    return set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))


def _example_env() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def test_env_example_defines_every_required_variable() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", text))
    assert required <= set(_example_env())


def test_env_example_holds_no_real_secrets() -> None:
    for key, value in _example_env().items():
        if "PASS" in key:
            assert value.startswith("change-me"), key


def test_credentials_come_from_env_not_the_compose_file() -> None:
    for service in SERVICES.values():
        for key, value in (service.get("environment") or {}).items():
            if "PASS" in key:
                assert "${" in str(value), key


def test_app_containers_never_get_root_passwords() -> None:
    for name in APP_SERVICES:
        env = " ".join(f"{k}={v}" for k, v in SERVICES[name]["environment"].items())
        assert "ROOT_PASSWORD" not in env


def test_compose_variables_are_documented_in_env_example() -> None:
    optional_overrides = {"SOURCE_DB_HOST", "SOURCE_DB_PORT", "TARGET_DB_HOST", "TARGET_DB_PORT"}
    missing = _compose_variables() - set(_example_env()) - optional_overrides
    assert not missing


def test_shipped_tables_json_is_valid() -> None:
    tables = load_tables(ROOT / "tables.json")
    assert tables.problems == []
    assert {(t.table, t.primary_key, t.modifier) for t in tables.tables} == {
        ("orders", ("id",), "updated_at"),
        ("order_items", ("order_id", "line_no"), "updated_at"),
        ("countries", ("code",), None),
    }


def _seed_tables() -> dict[str, str]:
    sql = (ROOT / "docker" / "source" / "01-demo-schema.sql").read_text(encoding="utf-8")
    return dict(re.findall(r"CREATE TABLE (\w+) \((.*?)\n\)", sql, flags=re.S))


def test_seed_creates_every_shipped_table_with_its_key_and_modifier() -> None:
    seeded = _seed_tables()
    for table in load_tables(ROOT / "tables.json").tables:
        body = seeded[table.table]
        assert f"PRIMARY KEY ({', '.join(table.primary_key)})" in body
        if table.modifier:
            assert re.search(rf"^\s*{table.modifier} ", body, flags=re.M)


def _users_sql(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-c", 'docker_process_sql() { cat; }; source "$SCRIPT"'],
        env={"PATH": "/usr/bin:/bin", "SCRIPT": str(ROOT / "docker" / script), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_source_user_gets_select_only() -> None:
    sql = _users_sql(
        "source/02-users.sh",
        {
            "MARIADB_DATABASE": "shop",
            "SOURCE_DB_USER": "reader",
            "SOURCE_DB_PASS": "pw",
        },
    )
    grants = re.findall(r"GRANT (.*?) ON (\S+) TO", sql)
    assert grants == [("SELECT", "`shop`.*")]


def test_target_user_gets_only_what_a_sync_needs() -> None:
    sql = _users_sql(
        "target/01-users.sh",
        {
            "MARIADB_DATABASE": "replica",
            "TARGET_DB_USER": "writer",
            "TARGET_DB_PASS": "pw",
        },
    )
    grants = re.findall(r"GRANT (.*?) ON (\S+) TO", sql)
    assert [on for _, on in grants] == ["`replica`.*", "`replica_staging`.*"]
    for privileges, _ in grants:
        assert set(privileges.split(", ")) == {
            "SELECT",
            "INSERT",
            "UPDATE",
            "DELETE",
            "CREATE",
            "ALTER",
            "DROP",
            "INDEX",
        }
    assert "FILE" not in sql and "ALL PRIVILEGES" not in sql and "*.*" not in sql


def test_user_scripts_quote_passwords() -> None:
    sql = _users_sql(
        "source/02-users.sh",
        {
            "MARIADB_DATABASE": "shop",
            "SOURCE_DB_USER": "reader",
            "SOURCE_DB_PASS": "it's\\x",
        },
    )
    assert "IDENTIFIED BY 'it\\'s\\\\x'" in sql


def test_gitlab_ci_tests_with_coverage_builds_and_deploys_on_tags() -> None:
    ci = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    assert ci["stages"] == ["test", "build", "deploy"]
    test_script = " ".join(ci["test"]["script"])
    assert "pytest" in test_script and "--cov=dbsync" in test_script
    assert "--cov-fail-under=85" in test_script
    assert "docker build" in " ".join(ci["build"]["script"])
    assert ci["deploy"]["rules"] == [{"if": "$CI_COMMIT_TAG"}]


def test_operations_doc_matches_the_compose_file() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for service in SERVICES:
        assert service in operations
    assert "docker compose up -d --build --scale worker=" in operations
    assert "cp .env.example .env" in operations
    for phrase in (
        "celery -A workers.app worker",
        "celery -A beat.app beat",
        "celery -A workers.app flower",
        "dbsync serve",
        "dbsync health --check",
    ):
        assert phrase in operations
