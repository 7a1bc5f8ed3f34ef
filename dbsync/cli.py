"""The ``dbsync`` command: configures logging, builds settings, calls the library.

Every subcommand (sync, verify, status, check-config, demo, serve, health) is registered in
:func:`build_parser` and implemented by a ``cmd_*`` function here that calls the library.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dbsync import __version__
from dbsync.config.errors import ConfigError, ConfigProblem
from dbsync.config.result import SyncResult, format_results
from dbsync.config.settings import Settings, load_settings
from dbsync.config.tables import TablesFile, load_tables
from dbsync.sync.runtime import Runtime

if TYPE_CHECKING:
    from dbsync.model import RunningCopy, TableStatus

log = logging.getLogger("dbsync.cli")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _print_problems(error: ConfigError) -> int:
    for problem in error.problems:
        print(f"config error: {problem}", file=sys.stderr)
    return EXIT_CONFIG


def _settings(**overrides: object) -> Settings:
    """Settings from the environment, their secrets registered for redaction."""
    from dbsync.ops.logs import register_settings_secrets

    settings = load_settings(**overrides)
    register_settings_secrets(settings)
    return settings


def _runtime(**overrides: object) -> Runtime:
    settings = _settings(**overrides)
    return Runtime.create(settings, load_tables(settings.tables_config))


def _selected(tables: TablesFile, names: Sequence[str]) -> list[str]:
    return list(names) if names else [t.table for t in tables.tables]


def cmd_sync(args: argparse.Namespace) -> int:
    from dbsync.sync.many import sync_tables

    runtime = _runtime(**({"chunk_workers": args.parallel} if args.parallel else {}))
    try:
        results = [
            SyncResult(table=p.path.split(".")[0], mode="-").finish("failed", str(p))
            for p in runtime.tables.problems
            if not args.tables
        ]
        results += sync_tables(
            runtime,
            _selected(runtime.tables, args.tables),
            full_refresh=args.full_refresh,
            reconcile=args.reconcile,
        )
    finally:
        runtime.dispose()
    print(format_results(results))
    failed = [r for r in results if r.status == "failed"]
    return EXIT_FAILED if failed else EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from dbsync.compare.verify import VerifyReport, verify_table
    from dbsync.config.errors import describe
    from dbsync.ops.checks import unreachable

    runtime = _runtime()
    reports: list[VerifyReport] = []
    problems = unreachable(runtime.engines, runtime.settings)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        runtime.dispose()
        return EXIT_FAILED
    try:
        for name in _selected(runtime.tables, args.tables):
            try:
                reports.append(verify_table(runtime, name, chunk_rows=args.chunk_rows))
            except Exception as exc:  # noqa: BLE001 - reported per table
                reports.append(VerifyReport(table=name, error=describe(exc)))
    finally:
        runtime.dispose()
    for report in reports:
        verdict = "OK" if report.ok else "MISMATCH"
        print(
            f"{report.table}: {verdict} source={report.source_rows} target={report.target_rows} "
            f"chunks={report.chunks}"
            + (f" rows: {report.describe_rows()}" if report.mismatches else "")
            + (f" error: {report.error}" if report.error else "")
        )
        for diff in report.mismatches:
            print(f"  {diff.describe(report.key)}")
    differing = [r.table for r in reports if r.error is None and not r.ok]
    if differing:
        print(
            "to repair the differences: dbsync sync --reconcile "
            + " ".join(differing)
            + " (compares every row with the source and writes only those that differ)"
        )
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED


def _status_rows(
    settings: Settings,
) -> tuple[list[TableStatus], list[RunningCopy], list[ConfigProblem]]:
    """The status table's rows and the chunked copies in progress, or the one-line problems
    that kept them from being read."""
    from dbsync.backends.engines import create_engine
    from dbsync.backends.mysql.copy_progress import running_copies
    from dbsync.backends.status import read_status
    from dbsync.config.errors import describe
    from dbsync.ops.checks import unreachable_side
    from dbsync.ops.logs import redact

    engine = create_engine(settings.target, settings, target=True)
    try:
        problems = unreachable_side("TARGET_DB", engine, settings.target)
        if problems:
            return [], [], problems
        database = settings.target.database
        return read_status(engine, database), running_copies(engine, database), []
    except Exception as exc:  # noqa: BLE001 - one line, not a driver traceback
        message = redact(f"cannot read the sync status: {describe(exc)}")
        return [], [], [ConfigProblem("TARGET_DB", message)]
    finally:
        engine.dispose()


def cmd_status(args: argparse.Namespace) -> int:
    """``dbsync status [--json]``: the last sync of every table, stale ones marked as the
    health endpoint marks them (3x the table's own interval, else INTERVAL)."""
    import json
    from datetime import UTC, datetime

    from dbsync.ops.health_facts import staleness_for
    from dbsync.ops.status_view import render_copies, render_status, status_records

    settings = _settings()
    rows, copies, problems = _status_rows(settings)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return EXIT_FAILED
    tables = load_tables(settings.tables_config)
    configured = [t.table for t in tables.tables]
    staleness = staleness_for(settings, tables)
    now = datetime.now(UTC)
    if args.json:
        records = status_records(
            rows, now, configured=configured, staleness=staleness, copies=copies
        )
        print(json.dumps(records, indent=2))
    else:
        print(render_status(rows, now, configured=configured, staleness=staleness))
        if copies:
            print("\n" + render_copies(copies))
        slots = _read_slot_usage(settings, configured)
        if slots is not None:
            print("\n" + slots)
    return EXIT_OK


def _read_slot_usage(settings: Settings, tables: list[str]) -> str | None:
    """``source reads: 4 of 4 slots in use; waiting for a slot: orders`` (None: no cap, or
    the source does not answer)."""
    from dbsync.backends import create_engine, dialect_for
    from dbsync.config.errors import describe
    from dbsync.ops.health import clean_error

    if not settings.source.is_mysql or settings.source_max_concurrent_reads <= 0:
        return None
    engine = create_engine(settings.source, settings, target=False)
    try:
        usage = dialect_for(settings).read_slot_usage(engine, tables)
    except Exception as exc:  # noqa: BLE001 - status shows the rest anyway
        return f"source reads: unknown ({clean_error(describe(exc))})"
    finally:
        engine.dispose()
    return usage.describe() if usage is not None else None


def cmd_serve(args: argparse.Namespace) -> int:
    """``dbsync serve [--host H] [--port P]``: health and metrics in the foreground."""
    from dbsync.ops.health_server import serve

    serve(_settings(), args.port, host=args.host)
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    """``dbsync health [--check] [--url URL]``.

    ``--check``: exit 0 if the endpoint answers 200 (healthy or degraded), else 1, falling
    back to the same checks in this process when nothing listens. Without ``--check``:
    print the health JSON computed in this process; exit 0 unless unhealthy.
    """
    from dbsync.ops.health_server import check

    if args.check:
        # a container health check answers 0 or 1, and probing the endpoint needs no
        # database settings: without them there is just no direct-probe fallback
        try:
            probe_settings: Settings | None = _settings()
        except ConfigError:
            probe_settings = None
        return check(probe_settings, args.url)
    return _print_health(_settings())


def _print_health(settings: Settings) -> int:
    import json
    from datetime import UTC, datetime

    from dbsync.backends.engines import Engines
    from dbsync.ops.health_facts import build_health

    engines = Engines.create(settings.model_copy(update={"pool_size": 1, "max_overflow": 1}))
    try:
        body, code = build_health(settings, engines, datetime.now(UTC))
    finally:
        engines.dispose()
    print(json.dumps(body, indent=2))
    return EXIT_OK if code == 200 else EXIT_FAILED


def cmd_check_config(args: argparse.Namespace) -> int:
    from dbsync.ops.checks import check_config, cursor_warnings

    problems, settings, tables = check_config()
    for problem in problems:
        print(f"config error: {problem}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    if settings is not None and tables is not None:
        for warning in cursor_warnings(settings, tables):
            print(f"warning: {warning}", file=sys.stderr)
    count = len(tables.tables) if tables else 0
    print(f"configuration OK: {count} table(s)")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from dbsync.demo import run_demo

    return run_demo(args.directory)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbsync", description="Sync MySQL/MariaDB tables with dlt."
    )
    parser.add_argument("--version", action="version", version=f"dbsync {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    commands = parser.add_subparsers(dest="command", required=True)

    sync = commands.add_parser("sync", help="sync tables now (default: all in tables.json)")
    sync.add_argument("tables", nargs="*", metavar="TABLE")
    sync.add_argument("--full-refresh", action="store_true", help="rebuild from a full copy")
    sync.add_argument(
        "--reconcile",
        action="store_true",
        help="after the sync, compare every row with the source and repair the differences",
    )
    sync.add_argument(
        "--parallel",
        type=_positive,
        metavar="N",
        help="chunks of a large table copied at once (default CHUNK_WORKERS: cores, max 4)",
    )
    sync.set_defaults(handler=cmd_sync)

    verify = commands.add_parser("verify", help="compare source and target content")
    verify.add_argument("tables", nargs="*", metavar="TABLE")
    verify.add_argument("--chunk-rows", type=int, default=10_000, help="rows per checksum chunk")
    verify.set_defaults(handler=cmd_verify)

    status = commands.add_parser("status", help="last sync of every table")
    status.add_argument("--json", action="store_true", help="JSON records, same fields")
    status.set_defaults(handler=cmd_status)

    check = commands.add_parser("check-config", help="validate settings and tables.json")
    check.set_defaults(handler=cmd_check_config)

    demo = commands.add_parser("demo", help="self-contained demo on embedded SQLite databases")
    demo.add_argument("--directory", help="where to put the demo databases (default: temp)")
    demo.set_defaults(handler=cmd_demo)
    _add_health_commands(commands)
    return parser


def _add_health_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="serve the health JSON (/) and Prometheus metrics (/metrics)"
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="default: HEALTH_PORT")
    serve.set_defaults(handler=cmd_serve)

    health = commands.add_parser("health", help="fleet health (exit 1 when unhealthy)")
    health.add_argument(
        "--check", action="store_true", help="container health check: ask the endpoint"
    )
    health.add_argument(
        "--url", default=None, help="endpoint to ask (default http://127.0.0.1:HEALTH_PORT/)"
    )
    health.set_defaults(handler=cmd_health)


def main(argv: Sequence[str] | None = None) -> int:
    from dbsync.ops.logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        return _print_problems(exc)
    except KeyboardInterrupt:
        return 130


def console() -> int:
    """The ``dbsync`` command: :func:`main` in a process of its own."""
    # What the imports built lives as long as the process: frozen, it is left out of every
    # garbage collection and out of the interpreter's teardown (~0.25 s of each short run
    # here; main() itself does not freeze, so that in-process callers such as tests do not
    # pin their own garbage)
    gc.freeze()
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console())
