"""Health policy: what ``healthy``, ``degraded``, ``unhealthy`` and ``stale`` mean.

Pure functions over facts gathered elsewhere (:mod:`dbsync.ops.health_facts` probes the
databases and reads the status table); no I/O here. The one staleness rule below is what
``/``, ``/metrics``, ``dbsync status`` and ``dbsync health`` all apply.

- ``unhealthy`` (HTTP 503): the source or the target does not answer ``SELECT 1`` within
  the probe timeout. Nothing can sync; fix connectivity first.
- ``degraded`` (HTTP 200): both databases answer, but at least one configured table
  - failed its last sync (``sync_errors`` > 0, see ``failed_tables``), or
  - is **stale**: has not synced successfully for more than ``STALE_INTERVALS`` (3) times
    its interval (the table's ``interval`` from tables.json, else ``INTERVAL``), see
    ``stale_tables``, or
  - never synced successfully although this server has been up longer than that, or
  - has a scheduled sync that waited for a worker longer than its interval (a fleet gives
    the waits, see ``QueueWaits``; ``queued_tables``), or
  the status table or tables.json cannot be read (see ``reasons``).
- ``healthy`` (HTTP 200): otherwise.

Every string in a health document passes through :func:`dbsync.ops.logs.redact`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from dbsync import __version__
from dbsync.ops.logs import redact

if TYPE_CHECKING:
    from dbsync.config.tables import TablesFile
    from dbsync.model import TableStatus

STALE_INTERVALS = 3
MAX_ERROR_CHARS = 500
DATABASES = ("source", "target")

# Seconds each table's scheduled sync has waited for a worker, for the tables whose message
# is queued and not yet started: given by a fleet (workers/ reads its broker), else absent.
QueueWaits = Callable[[], Mapping[str, float]]


@dataclass(frozen=True)
class Staleness:
    """The staleness rule: a table is stale when its last success is older than
    ``STALE_INTERVALS`` times its own ``interval`` (else the global ``INTERVAL``)."""

    default_interval: int
    intervals: Mapping[str, int | None] = field(default_factory=dict)

    @classmethod
    def of(cls, default_interval: int, tables: TablesFile | None) -> Staleness:
        """The rule for the tables of a tables.json (``None``: the global interval only)."""
        entries = tables.tables if tables is not None else ()
        return cls(default_interval, {t.table: t.interval for t in entries})

    def interval_s(self, table: str) -> int:
        """Seconds between scheduled syncs of ``table``."""
        return self.intervals.get(table) or self.default_interval

    def max_age_s(self, table: str) -> int:
        return STALE_INTERVALS * self.interval_s(table)

    def is_stale(self, table: str, age_s: float | None) -> bool:
        """True when the last success (``age_s`` seconds ago) is older than allowed."""
        return age_s is not None and age_s > self.max_age_s(table)

    def never_synced_is_late(self, table: str, waited_s: float) -> bool:
        """True when a table without any success has been waited for longer than allowed."""
        return waited_s > self.max_age_s(table)


@dataclass(frozen=True)
class Probe:
    """One database's answer to ``SELECT 1``."""

    ok: bool
    latency_ms: float
    error: str | None = None


@dataclass(frozen=True)
class Facts:
    """What the policy judges, gathered at ``now``.

    ``configured``: table names from tables.json, or None when it could not be read (then
    the tables of the status table are judged). ``problems``: what could not be read.
    """

    now: datetime
    uptime_s: float
    probes: Mapping[str, Probe]
    pools: Mapping[str, Mapping[str, int]]
    rows: Sequence[TableStatus]
    configured: Sequence[str] | None
    staleness: Staleness
    problems: Sequence[str] = ()
    config_problems: int = 0
    queued: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Findings:
    """Per-table findings: failed and stale tables, and how many synced last time."""

    failed: list[dict[str, Any]] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)
    queued: list[dict[str, Any]] = field(default_factory=list)
    synced: int = 0
    judged: int = 0


def clean_error(text: str | None) -> str | None:
    """An error message fit for a health document: redacted and at most 500 characters."""
    if text is None:
        return None
    text = redact(text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def iso_utc(moment: datetime | None) -> str | None:
    """``2026-11-27T09:55:48Z`` (naive values are taken as UTC, like the status table)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def connections(facts: Facts) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The ``database_connections`` entries, and a reason per unreachable database."""
    entries: dict[str, dict[str, Any]] = {}
    reasons: list[str] = []
    for name, probe in facts.probes.items():
        entry: dict[str, Any] = {
            "status": "connected" if probe.ok else "unreachable",
            "pool_size": facts.pools[name]["pool_size"],
            "checked_out": facts.pools[name]["checked_out"],
            "latency_ms": probe.latency_ms,
        }
        if not probe.ok:
            entry["error"] = probe.error
            reasons.append(f"{name} database unreachable: {probe.error}")
        entries[name] = entry
    return entries, reasons


def table_findings(facts: Facts) -> Findings:
    """Failed and stale tables among the configured ones (or the recorded ones)."""
    by_name = {row.table: row for row in facts.rows}
    names = facts.configured if facts.configured is not None else sorted(by_name)
    target_ok = facts.probes["target"].ok if "target" in facts.probes else True
    findings = Findings(judged=len(names))
    for name in names:
        row = by_name.get(name)
        if row is not None and row.status == "synced":
            findings.synced += 1
        if row is not None and row.status == "failed":
            findings.failed.append(_failed_entry(row))
        age = row.age_seconds(facts.now) if row is not None else None
        max_age = facts.staleness.max_age_s(name)
        if age is None:
            if target_ok and facts.staleness.never_synced_is_late(name, facts.uptime_s):
                findings.stale.append(
                    {"table": name, "age_seconds": None, "max_age_seconds": max_age}
                )
        elif facts.staleness.is_stale(name, age):
            findings.stale.append(
                {"table": name, "age_seconds": round(age, 1), "max_age_seconds": max_age}
            )
    findings.queued = queued_too_long(facts)
    return findings


def queued_too_long(facts: Facts) -> list[dict[str, Any]]:
    """Tables whose scheduled sync has waited for a worker longer than their interval."""
    return [
        {
            "table": table,
            "queued_seconds": round(waited, 1),
            "interval_seconds": facts.staleness.interval_s(table),
        }
        for table, waited in sorted(facts.queued.items())
        if waited > facts.staleness.interval_s(table)
    ]


def _failed_entry(row: TableStatus) -> dict[str, Any]:
    return {
        "table": row.table,
        "error": clean_error(row.last_error),
        "consecutive_failures": row.consecutive_failures,
        "last_finished_at": iso_utc(row.last_finished_at),
    }


def finding_reasons(facts: Facts, findings: Findings) -> list[str]:
    """Why the fleet is degraded: unreadable inputs, failed and stale tables."""
    reasons = list(facts.problems)
    if facts.config_problems:
        reasons.append(f"tables config has {facts.config_problems} invalid entries")
    if findings.failed:
        reasons.append(f"{len(findings.failed)} table(s) failed their last sync")
    if findings.stale:
        reasons.append(
            f"{len(findings.stale)} table(s) not synced for over {STALE_INTERVALS} intervals"
        )
    if findings.queued:
        reasons.append(
            f"{len(findings.queued)} table(s) waited for a worker longer than their interval"
        )
    return reasons


def verdict(probes: Mapping[str, Probe], reasons: Sequence[str]) -> str:
    """``unhealthy`` when a database is unreachable, ``degraded`` with any reason, else
    ``healthy``."""
    if not all(p.ok for p in probes.values()):
        return "unhealthy"
    return "degraded" if reasons else "healthy"


def http_status(status: str) -> int:
    """503 for ``unhealthy``, 200 for ``healthy`` and ``degraded``."""
    code = HTTPStatus.SERVICE_UNAVAILABLE if status == "unhealthy" else HTTPStatus.OK
    return int(code)


def health_document(facts: Facts) -> tuple[dict[str, Any], int]:
    """The health document for ``facts`` and its HTTP status."""
    entries, reasons = connections(facts)
    findings = table_findings(facts)
    reasons += finding_reasons(facts, findings)
    status = verdict(facts.probes, reasons)
    successes = [row.last_success_at for row in facts.rows if row.last_success_at is not None]
    body = {
        "status": status,
        "timestamp": iso_utc(facts.now),
        "version": __version__,
        "uptime_seconds": round(facts.uptime_s, 1),
        "database_connections": entries,
        "last_successful_sync": iso_utc(max(successes)) if successes else None,
        "tables_synced": findings.synced,
        "tables_configured": findings.judged,
        "sync_errors": len(findings.failed),
        "failed_tables": findings.failed,
        "stale_tables": findings.stale,
        "queued_tables": findings.queued,
        "reasons": reasons,
    }
    return body, http_status(status)


def failure_document(now: datetime, error: str | None) -> tuple[dict[str, Any], int]:
    """The document when the health check itself failed: ``unhealthy``, 503."""
    body = {
        "status": "unhealthy",
        "timestamp": iso_utc(now),
        "version": __version__,
        "reasons": [clean_error(error)],
    }
    return body, http_status("unhealthy")
