"""Alert rules, their promtool tests, the Prometheus config and the Grafana dashboard.

The promtool checks run when ``promtool`` is installed (Debian package ``prometheus``;
``.ci/run`` installs it when it can) and are skipped otherwise. The metric names the rules
and the dashboard use must be names the code exports, found by collecting a real registry
(every collector ``/metrics`` serves), or names another issue adds, listed in
``ADDED_ELSEWHERE`` with the issue that adds them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from dbsync.backends import Engines, record_result
from dbsync.config.result import SyncResult
from dbsync.ops import metrics
from dbsync.ops.health import Staleness

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
RULES = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "grafana" / "dbsync-fleet.json"
PROMTOOL = shutil.which("promtool")

# Metrics other branches add, with the issue that adds them (reconciled at merge: a name
# leaves this list when the code that exports it is on this branch). Issues 17 and 18 have
# landed: their table_cursor_fallback, table_future_cursor_rows, rows_repaired_total and
# table_last_rows_repaired are found in the exported registry now.
ADDED_ELSEWHERE: dict[str, str] = {}
# Series Prometheus makes itself for every scrape target.
PROMETHEUS_OWN = {"up"}

PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    metrics.disable_multiprocess()
    yield
    metrics.disable_multiprocess()


def _result(status: str) -> SyncResult:
    """A sync outcome with every field a metric reads set (rows repaired, the cursor
    fallback, future cursor values), so every metric has a sample."""
    outcome = SyncResult(
        table="orders",
        mode="incremental",
        rows_loaded=1,
        rows_extracted=1,
        repaired_inserted=1,
        repaired_updated=1,
        repaired_deleted=1,
        cursor_fallback=True,
        future_cursor_rows=1,
    )
    return outcome.finish(status, "boom" if status == "failed" else None)  # type: ignore[arg-type]


def exported_names(tmp_path: Path) -> set[str]:
    """Every sample and family name ``/metrics`` serves, each metric having a value."""
    status = sa.create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    for status_ in ("synced", "failed"):
        metrics.record_sync(_result(status_))
    record_result(status, "main", _result("synced"))
    metrics.record_chunk("orders", 10)
    pools = Engines(
        source=sa.create_engine("mysql+pymysql://u:p@127.0.0.1:1/x"),
        target=sa.create_engine("mysql+pymysql://u:p@127.0.0.1:1/x"),
    )
    registry = metrics.collect_registry(
        status,
        "main",
        pool_engines=pools,
        staleness=Staleness(60),
        queue_waits=lambda: {"orders": 5.0},
    )
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)  # dashboard variables
    found = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", expr):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in PROMQL_WORDS:
            found.add(name)
    return found


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


RUNBOOK = "docs/operations.md"


def runbook_anchors() -> set[str]:
    text = (ROOT / RUNBOOK).read_text(encoding="utf-8")
    anchors = set()
    for heading in re.findall(r"^#+\s+(.+)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_metric_names_are_read_from_promql() -> None:
    expr = 'max by (table) (rate(syncs_total{status="failed"}[5m])) > on(table) table_stale'
    assert metric_names(expr) == {"syncs_total", "table_stale"}


def test_the_alerts_the_issue_asks_for_exist() -> None:
    assert {rule["alert"] for rule in rules()} >= {
        "DbsyncTableStale",
        "DbsyncTableFailing",
        "DbsyncNoWorker",
        "DbsyncSyncQueuedTooLong",
        "DbsyncRowsRepaired",
        "DbsyncCursorFallback",
    }


def test_every_alert_has_a_severity_and_a_runbook_in_the_operations_doc() -> None:
    anchors = runbook_anchors()
    for rule in rules():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        link = rule["annotations"]["runbook_url"]
        assert link.startswith(f"{RUNBOOK}#"), rule["alert"]
        assert link.split("#", 1)[1] in anchors, f"{rule['alert']}: no heading for {link}"


def test_the_rules_read_only_metrics_the_code_exports(tmp_path: Path) -> None:
    known = exported_names(tmp_path) | set(ADDED_ELSEWHERE) | PROMETHEUS_OWN
    for rule in rules():
        assert metric_names(rule["expr"]) <= known, rule["alert"]


def test_the_dashboard_parses_and_reads_only_metrics_the_code_exports(tmp_path: Path) -> None:
    known = exported_names(tmp_path) | set(ADDED_ELSEWHERE) | PROMETHEUS_OWN
    exprs = dashboard_exprs()
    assert exprs
    unknown = set().union(*(metric_names(expr) for expr in exprs)) - known
    assert not unknown


def test_the_dashboard_shows_every_metric_the_alerts_read() -> None:
    shown = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    alerted = set().union(*(metric_names(rule["expr"]) for rule in rules()))
    assert alerted - {"sync_status_readable"} <= shown


def test_the_dashboard_panels_use_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert {"datasource"} == {v["name"] for v in dashboard["templating"]["list"]}
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return subprocess.run(
        [PROMTOOL, *args], cwd=MONITORING, capture_output=True, text=True, check=False
    )


def test_promtool_checks_the_rules() -> None:
    done = _promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    done = _promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_checks_the_prometheus_config() -> None:
    done = _promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
