"""The local Dagster instance's event log: Dagster's SQLite storage, with its connections kept open.

Dagster's ``SqliteEventLogStorage`` creates a SQLAlchemy engine, opens a
connection, commits (an fsync) and disposes the engine for every event it
stores, and a run of daily partitions stores thousands of events (planned
and reported materializations and check evaluations, one per partition).
Profiling a 24-month backfill put about 40 % of its wall time there.

This subclass keeps the same files, schema and migrations (the webserver,
the daemon and ``dagster instance migrate`` read them unchanged) and changes
two things only:

* one engine per shard, reused (a small LRU, so a long-lived webserver does
  not keep a file handle per run ever viewed);
* ``PRAGMA synchronous=NORMAL``: the shards are already in WAL mode, where
  NORMAL keeps the database consistent on power loss and may lose only the
  last transactions of the run log, never corrupt it. The audit trail that
  must survive is ``$ABACO_DATA/audit`` (fsynced, hash-chained), not this;
* a new run's shard starts as a copy of an empty shard that Dagster's own
  initialisation (schema, WAL, alembic stamp) built once per process, instead
  of running that initialisation for every run (~65 ms each).

Production (``dagster.prod.yaml``) uses PostgreSQL and does not use this.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from dagster import Field, StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import create_db_conn_string
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

BUSY_TIMEOUT_SECONDS = 30
MAX_OPEN_SHARDS = 8


def default_base_dir() -> str:
    """Where Dagster's default SQLite storage keeps run event logs: $DAGSTER_HOME/history/runs."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError("DAGSTER_HOME is not set: the local event log lives in $DAGSTER_HOME/history/runs")
    return os.path.join(home, "history", "runs")


def _tune(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` that reuses one engine per shard (see the module docstring)."""

    def __init__(self, base_dir: str | None = None, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._empty_shard: bytes | None = None
        super().__init__(base_dir or default_base_dir(), inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False,
                                  description="Default: $DAGSTER_HOME/history/runs (Dagster's own layout).")}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine_for(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(create_db_conn_string(self._base_dir, shard), poolclass=QueuePool,
                                   pool_size=1, max_overflow=2,
                                   connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
            event.listen(engine, "connect", _tune)
        self._engines[shard] = engine  # most recently used last
        while len(self._engines) > MAX_OPEN_SHARDS:
            _, evicted = self._engines.popitem(last=False)
            evicted.dispose()
        return engine

    @contextlib.contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            if shard not in self._initialized_dbs:
                if shard == INDEX_SHARD_NAME or not self._start_from_empty_shard(shard):
                    self._initdb(self._engine_for(shard))
                self._initialized_dbs.add(shard)
            engine = self._engine_for(shard)
            with engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                changes = raw.total_changes
                with conn.begin():
                    yield conn
                wrote = raw.total_changes != changes
            if wrote and shard != INDEX_SHARD_NAME:
                # Watchers of a run (the UI's live run page) wait for the shard file to change.
                # Dagster's closed-per-event connection checkpointed the WAL into it; an open one
                # leaves the file as it was, so say it changed.
                os.utime(self.path_for_shard(shard))

    def _start_from_empty_shard(self, shard: str) -> bool:
        """Create a new shard as a copy of an initialised empty one; False when it already exists."""
        path = self.path_for_shard(shard)
        if os.path.exists(path):
            return False
        if self._empty_shard is None:
            with tempfile.TemporaryDirectory(prefix="abaco-empty-shard-") as folder:
                engine = create_engine(create_db_conn_string(folder, "empty"), poolclass=NullPool)
                self._initdb(engine)
                engine.dispose()  # the last connection closes: WAL checkpointed into the file
                self._empty_shard = Path(folder, "empty.db").read_bytes()
        fd, staged = tempfile.mkstemp(dir=self._base_dir, prefix=f".{shard}.", suffix=".db.tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self._empty_shard)
            os.link(staged, path)  # appears complete or not at all; never replaces a shard
        except FileExistsError:
            return False
        finally:
            os.unlink(staged)
        return True

    def _dispose_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # the run shards' files are deleted next
        super().wipe()

    def upgrade(self) -> None:
        self._dispose_engines()
        super().upgrade()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()
