"""End to end through the public surface: `abaco generate` -> `abaco run` -> the marts in DuckDB."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from abaco_assets.lib.generator import append_next_day
from abaco_assets_tests.conftest import run_abaco

MARTS = ("kpi_portfolio_monthly", "kpi_portfolio_monthly_by_segment", "kpi_portfolio_monthly_by_product",
         "kpi_roll_rates", "kpi_vintage_curves")

pytestmark = pytest.mark.e2e


def marts_snapshot(data: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return {mart: con.execute(f"select * from marts.{mart} order by all").fetchall() for mart in MARTS}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    landing, data = root / "landing", root / "data"
    env = {"ABACO_DATA": str(data), "DAGSTER_HOME": str(data / "dagster_home")}
    generated = run_abaco("generate", "--out", str(landing), "--loans", "300", "--months", "4", "--seed", "11",
                          "--delinquency-cadence", "month-end", env=env)
    assert generated.returncode == 0, generated.stderr
    first = run_abaco("run", "--landing", str(landing), env=env)
    return landing, data, env, first


def test_first_run_accepts_everything_and_builds_every_mart(workspace):
    landing, data, env, first = workspace
    assert first.returncode == 0, first.stdout + first.stderr
    assert "0 rejected" in first.stdout and "portfolio KPIs, month_end" in first.stdout
    snapshot = marts_snapshot(data)
    for mart in MARTS:
        assert snapshot[mart], f"marts.{mart} is empty"
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        months = con.execute("select count(*) from marts.kpi_portfolio_monthly").fetchone()[0]
        metric_rows = {t: con.execute(f"select count(*) from metrics.{t}").fetchone()[0] for t in (
            "metric_cashflow_projection", "metric_expected_credit_loss", "metric_covenants", "metric_borrowing_base")}
    assert months == 4
    results = json.loads((data / "dbt" / "target" / "run_results.json").read_text())["results"]
    assert any(r["unique_id"].startswith("unit_test.") for r in results)  # the first build under this code
    # the first transform of a new data folder used the folder's own dbt parse state, parsed while
    # `abaco run` ingested (lib/dbt_manifest.ParseStatePrimer), and its scratch folder is gone
    dbt_logs = sorted((data / "logs" / "dbt").glob("transform-*.log"))
    assert dbt_logs and "Unable to do partial parsing" not in dbt_logs[0].read_text()
    assert (data / "dbt" / "target" / "partial_parse.msgpack").exists()
    assert not list((data / "dbt").glob(".parse-*"))
    assert metric_rows["metric_cashflow_projection"] == 24 and metric_rows["metric_covenants"] == 4 * 4
    assert all(metric_rows.values()), metric_rows
    # raw zone is content-addressed and write-once; typed zone holds no clear PII
    raw_files = list((data / "raw" / "cascade" / "loan_data").glob("*/*.csv"))
    assert len(raw_files) == 4 and all(len(p.stem) == 64 for p in raw_files)
    typed_customers = duckdb.sql(
        f"select * from read_parquet('{data}/typed/cascade/customer_data/*/data.parquet', union_by_name=true)")
    assert "customer_name" not in typed_customers.columns and "tax_id_hmac" in typed_customers.columns


def test_rerun_changes_nothing_also_when_forced(workspace):
    landing, data, env, _ = workspace
    before = marts_snapshot(data)
    again = run_abaco("run", "--landing", str(landing), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "up to date" in again.stdout
    assert marts_snapshot(data) == before
    forced = run_abaco("run", "--landing", str(landing), "--force", env=env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "transform (everything): ok" in forced.stdout
    assert marts_snapshot(data) == before


def test_renamed_header_is_rejected_quarantined_and_marts_do_not_move(workspace):
    landing, data, env, _ = workspace
    before = marts_snapshot(data)
    latest_tape = sorted((landing / "cascade").iterdir())[-1]
    original = latest_tape / "Abaco - Loan Tape_Loan Data_Table.csv"
    restated = latest_tape / "Abaco - Loan Tape_Loan Data_Table (2).csv"
    restated.write_bytes(original.read_bytes().replace(b"Outstanding Loan Value", b"Outstanding Value", 1))
    bad = run_abaco("run", "--landing", str(landing), env=env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "REJECTED cascade" in bad.stdout and "'Outstanding Loan Value'" in bad.stdout
    assert "header.missing_column" in bad.stdout
    quarantined = sorted((data / "quarantine" / "cascade").rglob("*"))
    assert any(p.name.endswith(".error.json") for p in quarantined)
    assert marts_snapshot(data) == before
    # a rerun with the rejected file still there reports it again, without a second quarantine copy
    again = run_abaco("run", "--landing", str(landing), env=env)
    assert again.returncode == 1 and "REJECTED cascade" in again.stdout
    assert sorted((data / "quarantine" / "cascade").rglob("*")) == quarantined
    assert marts_snapshot(data) == before
    restated.unlink()


def warehouse_snapshot(data: Path) -> dict[str, list[tuple]]:
    """Every table the marts and metrics schemas hold, row by row."""
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        tables = con.execute("select table_schema || '.' || table_name from information_schema.tables "
                             "where table_schema in ('marts', 'metrics') and table_type = 'BASE TABLE'").fetchall()
        return {t: con.execute(f"select * from {t} order by all").fetchall() for (t,) in tables}


def test_a_new_day_rebuilds_only_what_reads_the_daily_feeds_and_equals_a_full_rebuild(workspace):
    landing, data, env, _ = workspace
    kpis_before = marts_snapshot(data)
    day = append_next_day(landing)
    incremental = run_abaco("run", "--landing", str(landing), env=env)
    assert incremental.returncode == 0, incremental.stdout + incremental.stderr
    assert "downstream of collections, delinquency): ok" in incremental.stdout
    results = json.loads((data / "dbt" / "target" / "run_results.json").read_text())["results"]
    built = {r["unique_id"].split(".")[2] for r in results if r["unique_id"].startswith("model.")}
    # dbt's unit tests passed in the first build under this code: they test SQL, not data
    assert not any(r["unique_id"].startswith("unit_test.") for r in results)
    assert {"stg_collections__collections", "stg_delinquency__delinquency", "collections_by_stage"} <= built
    assert not built & {"int_loan_month_panel", "int_month_end_snapshots", *MARTS}  # no tape changed
    # the staging tests read the new day only, and the ledger now records it as tested
    compiled = (data / "dbt" / "target" / "compiled").rglob("stg_collections__collections.yml/unique_combination*.sql")
    assert f"delivery_date in (cast('{day.isoformat()}' as date))" in next(compiled).read_text()
    ledger = json.loads((data / "dbt" / "tested_deliveries.json").read_text())["models"]
    assert day.isoformat() in ledger["stg_collections__collections"]
    assert marts_snapshot(data) == kpis_before
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select max(received_date) from staging.stg_collections__collections").fetchone()[0] == day
    after_incremental = warehouse_snapshot(data)
    forced = run_abaco("run", "--landing", str(landing), "--force", env=env)
    assert forced.returncode == 0 and "transform (everything): ok" in forced.stdout
    assert warehouse_snapshot(data) == after_incremental


def test_user_errors_exit_2(tmp_path):
    missing = run_abaco("run", "--landing", str(tmp_path / "nope"), env={"ABACO_DATA": str(tmp_path / "d")})
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_args = run_abaco("generate", "--out", str(tmp_path / "x"), "--loans", "0")
    assert bad_args.returncode == 2
