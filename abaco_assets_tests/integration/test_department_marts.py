"""The department marts against hand-computed values on the crafted portfolio.

The portfolio is test_kpi_hand_computed's (its KPI marts are pinned there)
plus recoveries and April promises to pay (abaco_assets_tests/fixtures/
department_portfolio.py, which explains each edge case). `dbt build` runs
every dbt test too, so the build passing already proves the singular test
assert_department_marts_match_kpi_marts (the department marts repeat the KPI
marts' figures); here the figures the department marts add are pinned to
numbers worked out by hand, and the equality is checked once more from
Python for the headline columns so a weakened singular test cannot hide a
drift.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from abaco_assets_tests.fixtures.department_portfolio import build_department_warehouse

d = dt.date.fromisoformat
FEB, APR = d("2025-02-27"), d("2025-04-30")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return build_department_warehouse(tmp_path_factory) / "warehouse.duckdb"


def rows(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        cursor = connection.execute(sql)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def assert_close(got, want, label: str) -> None:
    if want is None:
        assert got is None, f"{label}: got {got!r}, want NULL"
    elif isinstance(want, str):  # money: to the cent
        assert got is not None and abs(Decimal(str(got)) - Decimal(want)) < Decimal("0.005"), \
            f"{label}: got {got!r}, want {want}"
    elif isinstance(want, int):
        assert got == want, f"{label}: got {got!r}, want {want}"
    else:
        assert got is not None and abs(got - want) <= 1e-9, f"{label}: got {got!r}, want {want}"


def test_collections_by_stage_april(warehouse):
    """April: stages from the 04-28 delinquency snapshot, balances and buckets from the 04-30 tape.

    Promises due in April (recorded on -> promised, stage when recorded):
      L04 04-02 -> 04-15 late:   PAY14 Settled on 04-15 (the promised date)          kept
      L07 04-02 -> 04-12 late:   no L07 payment in April                             broken
      L01 04-10 -> 04-11 early:  PAY13 Settled on 04-10 (the day it was recorded)    kept
      L06 04-21 -> 04-25 legal:  PAY15 04-20 is before 04-21, PAY16 04-25 Reversed    broken
      L07 04-21 -> 04-27 agency: nothing                                             broken
      L07 04-28 -> 05-05:        due in May, not judged in April
    """
    found = {row["collection_stage"]: row for row in rows(
        warehouse, f"select * from marts.collections_by_stage where month_end = '{APR}'")}
    expected = {
        # L01 6,000 (DPD 0) + L08 1,000 (DPD 0)
        "none": dict(active_loans=2, opb="7000.00", current_balance="7000.00", overdue_principal="0",
                     promises_due=0, promises_kept=0, promise_kept_rate=None),
        # L04 5,000 at DPD 59 on the tape (the feed's 57 is not the book of record)
        "late": dict(active_loans=1, opb="5000.00", dpd_30_59_balance="5000.00", overdue_principal="1533.34",
                     overdue_interest="200.00", promises_due=2, promises_kept=1, promise_kept_rate=0.5),
        "legal": dict(active_loans=1, opb="5900.00", dpd_90_179_balance="5900.00", overdue_principal="2950.00",
                      promises_due=1, promises_kept=0, promise_kept_rate=0.0),
        "agency": dict(active_loans=1, opb="1700.00", dpd_60_89_balance="1700.00", overdue_interest="100.00",
                       promises_due=1, promises_kept=0, promise_kept_rate=0.0),
        # no loan is early on 04-28, but L01's promise was recorded under early
        "early": dict(active_loans=0, opb="0.00", promises_due=1, promises_kept=1, promise_kept_rate=1.0),
    }
    assert set(found) == set(expected)
    for stage, columns in expected.items():
        for column, want in columns.items():
            assert_close(found[stage][column], want, f"{stage} {column}")


def test_collections_by_stage_without_feed_and_february(warehouse):
    """January has no delinquency delivery: the whole book is not_in_feed. February reads 02-27."""
    january = rows(warehouse, "select * from marts.collections_by_stage where month_end = '2025-01-31'")
    assert [row["collection_stage"] for row in january] == ["not_in_feed"]
    # L01 7,000 + L07 2,500 current; L03 5,000 + L04 6,000 1-29; L05 3,000 30-59; L06 6,000 60-89; L02 3,000 180+
    for column, want in dict(active_loans=7, opb="32500.00", current_balance="9500.00",
                             dpd_1_29_balance="11000.00", dpd_30_59_balance="3000.00",
                             dpd_60_89_balance="6000.00", dpd_90_179_balance="0.00",
                             dpd_180_plus_balance="3000.00").items():
        assert_close(january[0][column], want, f"2025-01-31 {column}")
    february = {row["collection_stage"]: row for row in rows(
        warehouse, f"select * from marts.collections_by_stage where month_end = '{FEB}'")}
    # early: L01 7,000 (DPD 1) + L03 5,000 (DPD 14), overdue 500 + 5,000
    assert_close(february["early"]["dpd_1_29_balance"], "12000.00", "Feb early 1-29")
    assert_close(february["early"]["overdue_principal"], "5500.00", "Feb early overdue")
    assert_close(february["late"]["dpd_1_29_balance"], "5500.00", "Feb late (L04 DPD 29)")
    assert_close(february["legal"]["dpd_90_179_balance"], "6000.00", "Feb legal (L06 DPD 90)")
    assert_close(february["none"]["current_balance"], "2100.00", "Feb none (L07)")


def test_collections_monthly_recoveries_and_promises(warehouse):
    """Recoveries: Settled cash after the write-off date on loans Written Off in the tape.

    April tape: L02 (written off 02-20 for 2,950) PAYR0 03-05 50, PAYR1 04-15 100, PAYR4 04-25 75 Reversed;
    L03 (written off 04-10 for 4,800) PAYR3 on 04-10 10 (not after the write-off date), PAYR2 04-20 200.
    """
    found = {row["month_end"]: row for row in rows(warehouse, "select * from marts.collections_monthly")}
    expected = {
        d("2025-01-31"): dict(written_off_loans=0, cumulative_writeoff_amount="0", recoveries_amount="0",
                              cumulative_recoveries="0", recovery_rate=None, promises_due=0,
                              promise_kept_rate=None),
        FEB: dict(written_off_loans=1, cumulative_writeoff_amount="2950.00", recoveries_amount="0",
                  recovered_loans=0, cumulative_recoveries="0", recovery_rate=0.0),
        APR: dict(written_off_loans=2, cumulative_writeoff_amount="7750.00",   # 2,950 + 4,800
                  recoveries_amount="300.00", recovered_loans=2,              # PAYR1 100 + PAYR2 200
                  cumulative_recoveries="350.00",                             # + PAYR0 50 in March
                  recovery_rate=0.04516129032258064,                          # 350 / 7,750 = 7/155
                  promises_due=5, promises_kept=2, promise_kept_rate=0.4),
    }
    for month_end, columns in expected.items():
        for column, want in columns.items():
            assert_close(found[month_end][column], want, f"{month_end} {column}")


def test_finance_monthly_pnl(warehouse):
    """April revenue 320 (recovery cash is principal only); write-offs 4,800 less recoveries 300."""
    found = {row["month_end"]: row for row in rows(warehouse, "select * from marts.finance_monthly_pnl")}
    assert_close(found[APR]["net_credit_loss"], "4500.00", "Apr net_credit_loss")
    assert_close(found[APR]["risk_adjusted_revenue"], "-4180.00", "Apr risk_adjusted_revenue")   # 320 - 4,500
    # PAY13 1,000 + PAY14 500 + PAY15 100 + PAYR1 100 + PAYR2 200 + PAYR3 10
    assert_close(found[APR]["collected_principal"], "1910.00", "Apr collected_principal")
    assert_close(found[FEB]["net_credit_loss"], "2950.00", "Feb net_credit_loss")
    assert_close(found[FEB]["risk_adjusted_revenue"], "-2596.25", "Feb risk_adjusted_revenue")  # 353.75 - 2,950


def test_risk_concentration_and_top_obligors(warehouse):
    """April: C1 (Gob) 12,900 and C2 (Top) 6,700 of 19,600; both above the 4 % single-obligor limit."""
    top = rows(warehouse, f"select * from marts.risk_top_obligors where month_end = '{APR}' order by opb_rank")
    assert [(row["opb_rank"], row["customer_id"], row["segment"]) for row in top] == [(1, "C1", "Gob"),
                                                                                      (2, "C2", "Top")]
    assert_close(top[0]["obligor_opb"], "12900.00", "rank 1 opb")
    assert_close(top[0]["obligor_opb_share"], 0.6581632653061225, "rank 1 share")      # 129/196
    assert_close(top[1]["cumulative_opb_share"], 1.0, "rank 2 cumulative")
    concentration = rows(warehouse, f"select * from marts.risk_concentration where month_end = '{APR}'")[0]
    assert_close(concentration["largest_obligor_share"], 0.6581632653061225, "largest obligor")
    assert_close(concentration["obligors_over_single_limit"], 2, "over limit")
    # 1 / HHI = 19,600^2 / (12,900^2 + 6,700^2) = 384,160,000 / 211,300,000
    assert_close(concentration["effective_obligors"], 384160000 / 211300000, "effective obligors")


def test_board_pack_growth_skips_a_month_without_tape(warehouse):
    """Feb vs Jan: (25,600 - 32,500) / 32,500; April's previous calendar month (March) has no tape."""
    found = {row["month_end"]: row for row in rows(warehouse, "select * from marts.board_monthly_pack")}
    assert_close(found[FEB]["opb_growth_mom"], -0.2123076923076923, "Feb growth")
    assert_close(found[APR]["opb_growth_mom"], None, "Apr growth")
    assert_close(found[APR]["promise_kept_rate"], 0.4, "Apr promise kept rate")
    assert_close(found[APR]["net_credit_loss"], "4500.00", "Apr net credit loss")


def test_shared_figures_equal_the_kpi_marts(warehouse):
    """Finance revenue, board OPB/PAR30 and collections' rate are the KPI mart's, month by month."""
    mismatches = rows(warehouse, """
        select kpi.month_end
        from marts.kpi_portfolio_monthly as kpi
        full outer join marts.finance_monthly_pnl as finance using (month_end)
        full outer join marts.board_monthly_pack as board using (month_end)
        full outer join marts.collections_monthly as collections using (month_end)
        where finance.revenue is distinct from kpi.revenue
           or finance.yield_12m is distinct from kpi.yield_12m
           or board.opb is distinct from kpi.opb
           or board.par30 is distinct from kpi.par30
           or collections.collection_rate is distinct from kpi.collection_rate
           or kpi.month_end is null
    """)
    assert mismatches == []
    stage_sums = rows(warehouse, """
        select kpi.month_end, kpi.opb, stages.opb as stage_opb
        from marts.kpi_portfolio_monthly as kpi
        join (select month_end, sum(opb) as opb from marts.collections_by_stage group by month_end) as stages
            using (month_end)
    """)
    assert len(stage_sums) == 4
    for row in stage_sums:
        assert_close(row["stage_opb"], str(row["opb"]), f"{row['month_end']} stages add up to OPB")
