"""Per-process runtime: settings, engines and listeners, created by an entry point."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dbsync.backends import Engines, dialect_for
from dbsync.config.settings import Settings
from dbsync.config.tables import TablesFile, load_tables
from dbsync.dialect import Dialect

if TYPE_CHECKING:
    from dbsync.config.result import SyncResult

Listener = Callable[["SyncResult"], None]
# (table, rows) of each chunk of a chunked copy that this process loaded
ChunkListener = Callable[[str, int], None]
# (table, copy id, helpers): ask that many other processes to help copy the chunks
SpreadChunks = Callable[[str, str, int], None]


@dataclass
class Runtime:
    """What one process needs to sync tables. Create after fork; dispose on shutdown."""

    settings: Settings
    engines: Engines
    tables: TablesFile
    listeners: list[Listener] = field(default_factory=list)
    chunk_listeners: list[ChunkListener] = field(default_factory=list)
    # set by a fleet (workers/) so a chunked copy fans out to other workers; without it the
    # copy's helpers are threads of this process
    spread_chunks: SpreadChunks | None = None
    dialect: Dialect = field(init=False)

    def __post_init__(self) -> None:
        self.dialect = dialect_for(self.settings)

    @classmethod
    def create(cls, settings: Settings, tables: TablesFile | None = None) -> Runtime:
        from dbsync.sync.pipeline import warm_up

        warm_up()
        return cls(
            settings=settings,
            engines=Engines.create(settings),
            tables=tables if tables is not None else load_tables(settings.tables_config),
        )

    def notify(self, result: SyncResult) -> None:
        for listener in self.listeners:
            listener(result)

    def notify_chunk(self, table: str, rows: int) -> None:
        for listener in self.chunk_listeners:
            listener(table, rows)

    def dispose(self) -> None:
        self.engines.dispose()
