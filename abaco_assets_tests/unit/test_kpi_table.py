"""`abaco kpis [--month YYYY-MM] [--segment S]`: the table logic on a two-month, two-segment warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from abaco_assets.lib.kpi_table import (
    EXIT_NO_DATA,
    EXIT_USAGE,
    HEADLINE_COLUMNS,
    BadArgument,
    NoData,
    NoWarehouse,
    format_kpi_value,
    parse_month,
    read_kpi_table,
)

d = dt.date.fromisoformat


@pytest.fixture()
def warehouse(tmp_path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema marts")
        connection.execute("""
            create table marts.kpi_portfolio_monthly as
            select * from (values
                (date '2026-09-30', 10547212.86::decimal(38, 2), 622::bigint, 0.0821::double, 0.0301::double,
                 1.0663::double, 0.3028::double, null::double),
                (date '2026-10-31', 10763441.92::decimal(38, 2), 642::bigint, 0.081799::double, 0.035234::double,
                 1.033236::double, 0.302036::double, 0.2799::double)
            ) as t(month_end, opb, active_loans, par30, par90, collection_rate, weighted_apr, yield_12m)""")
        connection.execute("""
            create table marts.kpi_portfolio_monthly_by_segment as
            select * from (values
                (date '2026-10-31', 'OC', 2159124.79::decimal(38, 2), 150::bigint, 0.0698::double,
                 0.0274::double, 0.99::double, 0.29::double, 0.27::double),
                (date '2026-10-31', 'Gob', 628748.80::decimal(38, 2), 40::bigint, 0.0::double, 0.0::double,
                 null::double, 0.25::double, 0.2::double),
                (date '2026-09-30', 'OC', 2000000.00::decimal(38, 2), 140::bigint, 0.05::double,
                 0.02::double, 1.0::double, 0.29::double, 0.26::double)
            ) as t(month_end, segment, opb, active_loans, par30, par90, collection_rate, weighted_apr, yield_12m)""")
    return path


def test_latest_month_of_the_whole_book(warehouse):
    table = read_kpi_table(warehouse)
    assert table.month_end == d("2026-10-31") and table.segment is None
    values = {row.column: row.formatted() for row in table.rows}
    assert values == {"opb": "10,763,441.92", "active_loans": "642", "par30": "8.1799%", "par90": "3.5234%",
                      "collection_rate": "103.3236%", "weighted_apr": "30.2036%", "yield_12m": "27.9900%"}
    labels = {row.column: row.label for row in table.rows}
    assert labels["opb"] == "OPB" and labels["par30"] == "PAR30" and labels["yield_12m"] == "Yield (12 months)"
    text = table.render()
    assert text.splitlines()[0] == "portfolio KPIs, month_end 2026-10-31, whole book:"
    assert "  OPB " in text and text.splitlines()[2].rstrip().endswith("10,763,441.92")


def test_a_given_month_and_null_ratios(warehouse):
    table = read_kpi_table(warehouse, month="2026-09")
    assert table.month_end == d("2026-09-30")
    assert {row.column: row.formatted() for row in table.rows}["yield_12m"] == "n/a"
    assert read_kpi_table(warehouse, month="2026-09-30").month_end == d("2026-09-30")


def test_one_segment(warehouse):
    table = read_kpi_table(warehouse, segment="OC")
    assert (table.month_end, table.segment) == (d("2026-10-31"), "OC")
    values = {row.column: row.formatted() for row in table.rows}
    assert values["opb"] == "2,159,124.79" and values["par30"] == "6.9800%" and values["active_loans"] == "150"
    assert "segment" not in values
    assert "segment OC" in table.render().splitlines()[0]
    # case does not matter; the mart's spelling is shown
    assert read_kpi_table(warehouse, month="2026-10", segment="gob").segment == "Gob"
    assert {row.column: row.formatted() for row in read_kpi_table(warehouse, segment="Gob").rows}[
        "collection_rate"] == "n/a"
    assert read_kpi_table(warehouse, month="2026-09", segment="OC").rows[0].formatted() == "2,000,000.00"


def test_headline_columns(warehouse):
    table = read_kpi_table(warehouse, columns=HEADLINE_COLUMNS)
    assert [row.column for row in table.rows] == list(HEADLINE_COLUMNS)


def test_errors_say_what_to_do(warehouse, tmp_path):
    with pytest.raises(NoWarehouse, match="run `abaco run` first") as missing:
        read_kpi_table(tmp_path / "nowhere.duckdb")
    assert missing.value.exit_code == EXIT_USAGE
    with pytest.raises(BadArgument, match="use YYYY-MM"):
        read_kpi_table(warehouse, month="10/2026")
    with pytest.raises(BadArgument):
        parse_month("2026-13")
    with pytest.raises(NoData, match="no KPI row for 2026-08; months with a tape: 2026-09, 2026-10") as no_row:
        read_kpi_table(warehouse, month="2026-08")
    assert no_row.value.exit_code == EXIT_NO_DATA
    with pytest.raises(BadArgument, match="no segment 'Top' on 2026-10-31; segments: Gob, OC"):
        read_kpi_table(warehouse, segment="Top")
    with pytest.raises(BadArgument, match="no segment 'Gob' on 2026-09-30; segments: OC"):
        read_kpi_table(warehouse, month="2026-09", segment="Gob")


def test_a_warehouse_without_the_mart(tmp_path):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(NoData, match="marts.kpi_portfolio_monthly_by_segment does not exist yet"):
        read_kpi_table(path, segment="OC")


def test_value_formats():
    assert format_kpi_value(None, "usd") == "n/a"
    assert format_kpi_value(1234.5, "usd") == "1,234.50"
    assert format_kpi_value(0.05, "ratio") == "5.0000%"
    assert format_kpi_value(12000, "count") == "12,000"
