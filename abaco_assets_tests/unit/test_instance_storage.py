"""The local instance's event log (abaco_assets/instance_storage.py): same files, same answers, fewer opens."""

import shutil
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from abaco_assets import instance_storage
from abaco_assets.instance_storage import PooledSqliteEventLogStorage

REPO_ROOT = Path(__file__).resolve().parents[2]


@dg.asset
def counted() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset_check(asset=counted)
def counted_is_positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _materialize(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([counted, counted_is_positive], instance=instance)
    assert result.success
    return result.run_id


def test_the_project_instance_uses_the_pooled_storage_in_dagsters_own_layout(home):
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        run_id = _materialize(instance)
    # Dagster's layout: one shard per run plus the cross-run index, where the webserver looks
    assert (home / "history" / "runs" / f"{run_id}.db").exists()
    assert (home / "history" / "runs" / "index.db").exists()


def test_a_fresh_instance_reads_back_what_a_pooled_one_wrote(home):
    with dg.DagsterInstance.from_config(str(home)) as writer:
        run_ids = [_materialize(writer) for _ in range(3)]
    # a plain Dagster storage over the same folder (what `dagster dev` or a migration sees)
    plain = dg.DagsterInstance.from_config(str(home)).event_log_storage
    reader = instance_storage.SqliteEventLogStorage(str(home / "history" / "runs"))
    for storage in (plain, reader):
        for run_id in run_ids:
            types = [e.dagster_event_type for e in storage.get_logs_for_run(run_id) if e.is_dagster_event]
            assert dg.DagsterEventType.ASSET_MATERIALIZATION in types
            assert dg.DagsterEventType.ASSET_CHECK_EVALUATION in types
            assert dg.DagsterEventType.RUN_SUCCESS in types
    latest = reader.get_latest_materialization_events([dg.AssetKey("counted")])[dg.AssetKey("counted")]
    assert latest.run_id == run_ids[-1]
    assert latest.asset_materialization.metadata["rows"].value == 3


def test_connections_are_reused_bounded_and_tuned(home, monkeypatch):
    monkeypatch.setattr(instance_storage, "MAX_OPEN_SHARDS", 3)
    storage = PooledSqliteEventLogStorage(str(home / "runs"))
    with storage.index_connection() as first:
        raw_first = first.connection.dbapi_connection
        assert first.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert first.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    with storage.index_connection() as second:
        assert second.connection.dbapi_connection is raw_first  # the same open connection, not a new engine
    for shard in ("a", "b", "c", "d"):
        with storage.run_connection(shard) as conn:
            conn.execute(text("select 1"))
    assert list(storage._engines) == ["b", "c", "d"]  # least recently used first out (the index went)
    # a new run's shard is a copy of an empty shard Dagster initialised: same schema, stamp and WAL
    plain = instance_storage.SqliteEventLogStorage(str(home / "plain"))
    with plain.run_connection("p") as theirs, storage.run_connection("d") as ours:
        for query in ("select name, sql from sqlite_master order by name", "select * from alembic_version",
                      "PRAGMA journal_mode"):
            assert ours.execute(text(query)).fetchall() == theirs.execute(text(query)).fetchall()
    storage.wipe()
    assert list(storage._engines) == ["index"]  # the run shards' engines were closed before their files went
    assert not list((home / "runs").glob("[abcd].db"))


def test_a_watcher_of_a_run_hears_each_event_a_pooled_writer_stores(home):
    """The UI's live run view watches the run's database file for changes (watchdog)."""
    import threading
    import time

    base = home / "history" / "runs"
    writer, reader = PooledSqliteEventLogStorage(str(base)), instance_storage.SqliteEventLogStorage(str(base))
    run_id = "watched-run"
    heard, done = [], threading.Event()

    def callback(event, cursor):
        heard.append(event.user_message)
        if len(heard) == 3:
            done.set()

    with writer.run_connection(run_id):
        pass  # the shard exists before anyone watches it, as a run's does
    reader.watch(run_id, None, callback)
    try:
        for n in range(3):
            writer.store_event(dg.EventLogEntry(error_info=None, level="INFO", user_message=f"event {n}",
                                                run_id=run_id, timestamp=time.time()))
            time.sleep(0.2)
        assert done.wait(timeout=20), heard
    finally:
        reader.end_watch(run_id, callback)
        reader.dispose()
    assert heard == ["event 0", "event 1", "event 2"]
