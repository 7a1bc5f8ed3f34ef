"""The ``dbsync`` command: configures logging, builds settings, calls the library."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dbsync import __version__
from dbsync.errors import ConfigError, ConfigProblem
from dbsync.result import SyncResult
from dbsync.runtime import Runtime
from dbsync.settings import Settings, load_settings
from dbsync.tables import TablesFile, load_tables

if TYPE_CHECKING:
    from dbsync.copy_progress import RunningCopy
    from dbsync.state import TableStatus

log = logging.getLogger("dbsync.cli")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _print_problems(error: ConfigError) -> int:
    for problem in error.problems:
        print(f"config error: {problem}", file=sys.stderr)
    return EXIT_CONFIG


def _runtime(**overrides: object) -> Runtime:
    from dbsync.logs import register_settings_secrets

    settings = load_settings(**overrides)
    register_settings_secrets(settings)
    return Runtime.create(settings, load_tables(settings.tables_config))


def _selected(tables: TablesFile, names: Sequence[str]) -> list[str]:
    return list(names) if names else [t.table for t in tables.tables]


def format_results(results: Sequence[SyncResult]) -> str:
    header = (
        f"{'table':<24} {'mode':<13} {'status':<8} {'extracted':>10} {'loaded':>10} "
        f"{'seconds':>8} {'deleted':>8}  error"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.table:<24} {r.mode:<13} {r.status:<8} {r.rows_extracted:>10} "
            f"{r.rows_loaded:>10} {r.duration_s:>8.2f} {r.rows_deleted:>8}  {r.error or ''}"
        )
    return "\n".join(lines)


def cmd_sync(args: argparse.Namespace) -> int:
    from dbsync.sync import run_sync

    runtime = _runtime(**({"chunk_workers": args.parallel} if args.parallel else {}))
    try:
        results = [
            SyncResult(table=p.path.split(".")[0], mode="-").finish("failed", str(p))
            for p in runtime.tables.problems
            if not args.tables
        ]
        for name in _selected(runtime.tables, args.tables):
            results.append(run_sync(runtime, name, full_refresh=args.full_refresh))
    finally:
        runtime.dispose()
    print(format_results(results))
    failed = [r for r in results if r.status == "failed"]
    return EXIT_FAILED if failed else EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from dbsync.checks import unreachable
    from dbsync.errors import describe
    from dbsync.verify import VerifyReport, verify_table

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
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED


def _status_rows(
    settings: Settings,
) -> tuple[list[TableStatus], list[RunningCopy], list[ConfigProblem]]:
    """The status table's rows and the chunked copies in progress, or the one-line problems
    that kept them from being read."""
    from dbsync.checks import unreachable_side
    from dbsync.copy_progress import running_copies
    from dbsync.engines import create_engine
    from dbsync.errors import describe
    from dbsync.logs import redact
    from dbsync.state import read_status

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
    from datetime import UTC, datetime

    from dbsync.logs import register_settings_secrets
    from dbsync.status_view import render_copies, render_status

    settings = load_settings()
    register_settings_secrets(settings)
    rows, copies, problems = _status_rows(settings)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return EXIT_FAILED
    configured = [t.table for t in load_tables(settings.tables_config).tables]
    print(
        render_status(
            rows, datetime.now(UTC), configured=configured, stale_after_s=3 * settings.interval
        )
    )
    if copies:
        print("\n" + render_copies(copies))
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    from dbsync.checks import check_config

    problems, _settings, tables = check_config()
    for problem in problems:
        print(f"config error: {problem}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
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
    status.set_defaults(handler=cmd_status)

    check = commands.add_parser("check-config", help="validate settings and tables.json")
    check.set_defaults(handler=cmd_check_config)

    demo = commands.add_parser("demo", help="self-contained demo on embedded SQLite databases")
    demo.add_argument("--directory", help="where to put the demo databases (default: temp)")
    demo.set_defaults(handler=cmd_demo)
    _add_optional_commands(commands)
    return parser


def _add_optional_commands(commands: argparse._SubParsersAction) -> None:
    """Commands implemented in their own modules (demo, serve, health)."""
    for register in _REGISTRARS:
        register(commands)


def _health_commands(commands: argparse._SubParsersAction) -> None:
    from dbsync.health import add_commands

    add_commands(commands)


_REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [_health_commands]


def main(argv: Sequence[str] | None = None) -> int:
    from dbsync.logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        return _print_problems(exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
