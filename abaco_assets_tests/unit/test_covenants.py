"""Borrowing base and covenant guardrails read from the KPI mart, checked by hand."""

import datetime as dt

import polars as pl
import pytest

from abaco_assets.lib.covenants import borrowing_base, collection_rate_trailing, covenant_guardrails

D = dt.date
KPI_SCHEMA = {"month_end": pl.Date, "opb": pl.Float64, "npl180_ratio": pl.Float64,
              "top10_concentration": pl.Float64, "collected_total": pl.Float64, "scheduled_due": pl.Float64}
CUSTOMER_SCHEMA = {"month_end": pl.Date, "customer_id": pl.String, "opb": pl.Float64, "opb_dpd_lt60": pl.Float64}
JUN = D(2026, 6, 30)


def kpis(*rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=KPI_SCHEMA, orient="row")


def customers(*rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CUSTOMER_SCHEMA, orient="row")


def guardrail(frame: pl.DataFrame, month_end: dt.date, covenant: str) -> dict:
    return frame.filter((pl.col("month_end") == month_end) & (pl.col("covenant") == covenant)).row(0, named=True)


def test_borrowing_base_removes_only_the_excess_above_4_percent():
    # Total OPB 1 000 000, so the per-customer cap is 40 000.
    # C1: 100 000, all DPD < 60 -> 60 000 excess.  C2: exactly 40 000 -> no excess.
    # C3: 80 000 of which 30 000 DPD < 60 -> below the cap, nothing more to remove.
    # 20 customers of 39 000, one of them entirely at DPD >= 60.
    # DPD < 60: 100 000 + 40 000 + 30 000 + 19 x 39 000 = 911 000; eligible 851 000; base 680 800.
    rows = [(JUN, "C1", 100_000.0, 100_000.0), (JUN, "C2", 40_000.0, 40_000.0), (JUN, "C3", 80_000.0, 30_000.0)]
    rows += [(JUN, f"S{i:02d}", 39_000.0, 0.0 if i == 0 else 39_000.0) for i in range(20)]
    base = borrowing_base(kpis((JUN, 1_000_000.0, 0.01, 0.2, 100.0, 100.0)), customers(*rows)).row(0, named=True)
    assert base == {
        "month_end": JUN, "opb": 1_000_000.0, "opb_dpd_lt60": 911_000.0, "concentration_excess": 60_000.0,
        "eligible_opb": 851_000.0, "advance_rate": 0.8, "borrowing_base": 680_800.0,
    }


def test_borrowing_base_of_an_empty_book_is_zero():
    base = borrowing_base(kpis((JUN, 0.0, None, None, 0.0, 0.0)), customers()).row(0, named=True)
    assert (base["eligible_opb"], base["borrowing_base"]) == (0.0, 0.0)


def test_guardrails_at_their_exact_boundaries():
    # NPL180 exactly 4 % fails (strict <); top-10 exactly 30 % passes (<=), even as the float 0.1 + 0.2;
    # single obligor exactly 4 % passes (<=); collection rate exactly 96 % passes (>=).
    frame = covenant_guardrails(
        kpis((JUN, 1_000_000.0, 0.04, 0.1 + 0.2, 960.0, 1000.0)),
        customers((JUN, "C1", 40_000.0, 40_000.0), (JUN, "C2", 30_000.0, 30_000.0)),
    )
    assert frame.columns == ["month_end", "covenant", "measured_value", "threshold", "operator", "passed"]
    assert frame["covenant"].to_list() == ["npl180", "top10_concentration", "single_obligor", "collection_rate_6m"]
    rows = {r["covenant"]: (r["measured_value"], r["threshold"], r["operator"], r["passed"])
            for r in frame.iter_rows(named=True)}
    assert rows["npl180"] == (0.04, 0.04, "<", False)
    assert rows["top10_concentration"][1:] == (0.30, "<=", True)
    assert rows["single_obligor"] == (0.04, 0.04, "<=", True)
    assert rows["collection_rate_6m"] == (0.96, 0.96, ">=", True)


def test_guardrails_just_past_the_boundaries():
    frame = covenant_guardrails(
        kpis((JUN, 1_000_000.0, 0.0399, 0.3001, 959.0, 1000.0)),
        customers((JUN, "C1", 40_001.0, 40_001.0)),
    )
    passed = dict(zip(frame["covenant"], frame["passed"]))
    assert passed == {"npl180": True, "top10_concentration": False, "single_obligor": False,
                      "collection_rate_6m": False}
    assert guardrail(frame, JUN, "single_obligor")["measured_value"] == pytest.approx(0.040001)


def test_collection_rate_is_a_ratio_of_sums_over_six_calendar_months():
    # No March tape. At July the window is Feb..Jul: (180 + 100 + 100 + 100 + 90) / (200 + 100 x 4) = 570 / 600
    # = 0.95 (fails), while the mean of the monthly ratios would be 0.96. January (0 of 1000) is out of it.
    months = kpis(
        (D(2026, 1, 31), 1000.0, 0.0, 0.1, 0.0, 1000.0),
        (D(2026, 2, 28), 1000.0, 0.0, 0.1, 180.0, 200.0),
        (D(2026, 4, 30), 1000.0, 0.0, 0.1, 100.0, 100.0),
        (D(2026, 5, 31), 1000.0, 0.0, 0.1, 100.0, 100.0),
        (D(2026, 6, 30), 1000.0, 0.0, 0.1, 100.0, 100.0),
        (D(2026, 7, 31), 1000.0, 0.0, 0.1, 90.0, 100.0),
    )
    rates = {r["month_end"]: r for r in collection_rate_trailing(months).iter_rows(named=True)}
    assert rates[D(2026, 7, 31)]["collected_total_6m"] == 570.0
    assert rates[D(2026, 7, 31)]["scheduled_due_6m"] == 600.0
    assert rates[D(2026, 7, 31)]["collection_rate_6m"] == pytest.approx(0.95)
    assert rates[D(2026, 6, 30)]["collection_rate_6m"] == pytest.approx(480 / 1500)  # Jan..Jun
    assert rates[D(2026, 1, 31)]["collection_rate_6m"] == 0.0
    frame = covenant_guardrails(months, customers((D(2026, 7, 31), "C1", 10.0, 10.0)))
    assert guardrail(frame, D(2026, 7, 31), "collection_rate_6m")["passed"] is False
    assert frame.height == 6 * 4


def test_null_measures_when_denominators_are_zero():
    # An empty book: no OPB (mart ratios null, no customer), nothing due in the window.
    frame = covenant_guardrails(kpis((JUN, 0.0, None, None, 0.0, 0.0)), customers())
    for covenant in ("npl180", "top10_concentration", "single_obligor", "collection_rate_6m"):
        row = guardrail(frame, JUN, covenant)
        assert row["measured_value"] is None and row["passed"] is None, covenant
