"""The warehouse resource: DuckDB for real, BigQuery and Snowflake by construction and SQL only."""

import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest

from abaco_assets.warehouse import (
    BigQueryBackend,
    DuckDBBackend,
    SnowflakeBackend,
    Warehouse,
    WarehouseBusy,
)

COVENANTS = pl.DataFrame({"month_end": ["2026-09-30", "2026-10-31"], "covenant": ["par30", "par30"],
                          "value": [0.041, 0.043], "breached": [False, True]})


@pytest.fixture()
def duck(tmp_path, monkeypatch):
    monkeypatch.setenv("ABACO_DATA", str(tmp_path))
    monkeypatch.delenv("ABACO_DBT_TARGET", raising=False)
    return Warehouse()


def test_local_default_is_the_duckdb_file_under_abaco_data(duck, tmp_path):
    backend = duck.backend()
    assert isinstance(backend, DuckDBBackend) and backend.path == tmp_path / "warehouse.duckdb"


def test_write_then_read_round_trips_and_rewrites_replace(duck):
    result = duck.write_table("metrics", "covenant_tests", COVENANTS)
    assert result.metadata() == {"table": "metrics.covenant_tests", "row_count": 2}
    assert duck.read_sql("select * from metrics.covenant_tests order by month_end").equals(COVENANTS)
    duck.write_table("metrics", "covenant_tests", COVENANTS.head(1))
    assert duck.read_sql("select count(*) as n from metrics.covenant_tests")["n"][0] == 1
    tables = duck.read_sql("select table_name from information_schema.tables where table_schema = 'metrics'")
    assert tables["table_name"].to_list() == ["covenant_tests"], "no staging table left behind"


def test_a_failed_swap_leaves_the_previous_table(duck, monkeypatch):
    duck.write_table("metrics", "covenant_tests", COVENANTS)
    broken = ["BEGIN TRANSACTION", 'DROP TABLE IF EXISTS "metrics"."covenant_tests"', "SELECT no_such_column", "COMMIT"]
    with monkeypatch.context() as patched:
        patched.setattr(DuckDBBackend, "swap_statements", staticmethod(lambda schema, name, staging: broken))
        with pytest.raises(Exception, match="no_such_column"):
            duck.write_table("metrics", "covenant_tests", COVENANTS.head(1))
    assert duck.read_sql("select count(*) as n from metrics.covenant_tests")["n"][0] == 2
    tables = duck.read_sql("select table_name from information_schema.tables where table_schema = 'metrics'")
    assert tables["table_name"].to_list() == ["covenant_tests"]


def test_names_that_are_not_identifiers_are_refused(duck):
    with pytest.raises(ValueError, match="plain identifier"):
        duck.write_table("metrics", 'x"; drop table marts.kpi_portfolio_monthly; --', COVENANTS)


def test_a_reader_meeting_a_writer_gets_a_clear_message(duck, tmp_path):
    duck.write_table("metrics", "covenant_tests", COVENANTS)
    holder = textwrap.dedent(f"""
        import duckdb, sys, time
        connection = duckdb.connect({str(tmp_path / 'warehouse.duckdb')!r})
        print("locked", flush=True)
        sys.stdin.read()
    """)
    writer = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(WarehouseBusy, match="one writer at a time"):
            duck.read_sql("select 1")
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)
    time.sleep(0.1)
    assert duck.read_sql("select count(*) as n from metrics.covenant_tests")["n"][0] == 2


def test_the_target_variable_picks_the_cloud_backends_without_connecting(monkeypatch):
    monkeypatch.setenv("ABACO_DBT_TARGET", "bigquery")
    monkeypatch.setenv("ABACO_BQ_PROJECT", "abaco-prod")
    backend = Warehouse().backend()
    assert isinstance(backend, BigQueryBackend) and backend.project == "abaco-prod"

    monkeypatch.setenv("ABACO_DBT_TARGET", "snowflake")
    monkeypatch.setenv("ABACO_SNOWFLAKE_ACCOUNT", "xy12345.eu-west-1")
    monkeypatch.setenv("ABACO_SNOWFLAKE_USER", "ABACO_DAGSTER")
    backend = Warehouse().backend()
    assert isinstance(backend, SnowflakeBackend) and backend.database == "ABACO"

    monkeypatch.setenv("ABACO_DBT_TARGET", "oracle")
    with pytest.raises(ValueError, match="unknown warehouse"):
        Warehouse().backend()


def test_bigquery_swaps_with_one_ddl_statement():
    backend = BigQueryBackend(project="abaco-prod")
    assert backend.swap_statements("metrics", "ecl", "ecl__new_ab12") == [
        "CREATE OR REPLACE TABLE `abaco-prod.metrics.ecl` COPY `abaco-prod.metrics.ecl__new_ab12`",
        "DROP TABLE `abaco-prod.metrics.ecl__new_ab12`",
    ]


def test_snowflake_swaps_with_swap_with():
    backend = SnowflakeBackend(account="a", user="u", database="ABACO", warehouse="W", role="R")
    assert backend.swap_statements("metrics", "ecl", "ecl__new_ab12") == [
        'CREATE TABLE IF NOT EXISTS "ABACO"."METRICS"."ECL" LIKE "ABACO"."METRICS"."ECL__NEW_AB12"',
        'ALTER TABLE "ABACO"."METRICS"."ECL" SWAP WITH "ABACO"."METRICS"."ECL__NEW_AB12"',
        'DROP TABLE "ABACO"."METRICS"."ECL__NEW_AB12"',
    ]


class RecordingCursor:
    def __init__(self, log):
        self.log = log

    def execute(self, statement):
        self.log.append(statement)

    def close(self):
        pass


class RecordingConnection:
    def __init__(self):
        self.log = []

    def cursor(self):
        return RecordingCursor(self.log)


def test_snowflake_write_loads_a_staging_table_then_swaps(monkeypatch):
    loaded = {}

    def fake_write_pandas(connection, frame, table_name, schema, database, **options):
        loaded.update(table=table_name, schema=schema, rows=len(frame), overwrite=options["overwrite"])
        return True, 1, len(frame), []

    import types

    pandas_tools = types.ModuleType("snowflake.connector.pandas_tools")
    pandas_tools.write_pandas = fake_write_pandas
    monkeypatch.setitem(sys.modules, "snowflake", types.ModuleType("snowflake"))
    monkeypatch.setitem(sys.modules, "snowflake.connector", types.ModuleType("snowflake.connector"))
    monkeypatch.setitem(sys.modules, "snowflake.connector.pandas_tools", pandas_tools)
    connection = RecordingConnection()
    backend = SnowflakeBackend(account="a", user="u", database="ABACO", warehouse="W", role="R",
                               connection=connection)
    result = backend.write_table("metrics", "ecl", COVENANTS)
    assert loaded["schema"] == "METRICS" and loaded["table"].startswith("ECL__NEW_") and loaded["rows"] == 2
    assert connection.log[1].startswith('ALTER TABLE "ABACO"."METRICS"."ECL" SWAP WITH ')
    assert result.rows == 2
