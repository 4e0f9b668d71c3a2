"""Cashflow engine and its assumptions, pinned on hand-computed books."""

import datetime as dt

import numpy as np
import numpy_financial as npf
import polars as pl
import pytest

from abaco_assets.lib.cashflow import (
    cdr_from_mdr,
    cpr_from_smm,
    mdr_from_cdr,
    measure_assumptions,
    monthly_performance,
    project_cashflows,
    smm_from_cpr,
)

D = dt.date
AS_OF = D(2026, 1, 31)


def loans(*rows: tuple[str, str, dt.date, float, float]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"loan_id": pl.String, "payment_frequency": pl.String, "maturity_date": pl.Date,
                "outstanding_principal": pl.Float64, "interest_rate_apr": pl.Float64},
        orient="row",
    )


def assumptions(mdr=0.0, smm=0.0, severity=0.6, lag=6) -> pl.DataFrame:
    return pl.DataFrame({"mdr": [mdr], "smm": [smm], "severity": [severity], "recovery_lag_months": [lag]})


def month(projection: pl.DataFrame, k: int) -> dict:
    return projection.filter(pl.col("projection_month") == k).row(0, named=True)


# --------------------------------------------------------------------------- rate conversions


def test_smm_cpr_round_trip_and_hand_values():
    assert cpr_from_smm(0.01) == pytest.approx(0.11361512828387, rel=1e-12)  # 1 - 0.99^12
    assert smm_from_cpr(0.11361512828387) == pytest.approx(0.01, rel=1e-10)
    smms = np.array([0.0, 0.005, 0.02, 0.3])
    np.testing.assert_allclose(smm_from_cpr(cpr_from_smm(smms)), smms, atol=1e-15)


def test_mdr_cdr_round_trip_and_hand_values():
    assert cdr_from_mdr(0.005) == pytest.approx(0.05837719308562, rel=1e-12)  # 1 - 0.995^12
    assert mdr_from_cdr(0.12) == pytest.approx(0.01059624103532, rel=1e-12)  # 1 - 0.88^(1/12)
    mdrs = np.array([0.0, 0.001, 0.05])
    np.testing.assert_allclose(mdr_from_cdr(cdr_from_mdr(mdrs)), mdrs, atol=1e-15)


# --------------------------------------------------------------------------- projection


@pytest.mark.parametrize("frequency", ["monthly", "biweekly", "weekly"])
def test_level_payment_loan_reproduces_numpy_financial_to_the_cent(frequency):
    # Maturity 15 Jan 2027 seen from 31 Jan 2026: installments Feb 2026 .. Jan 2027 = 12 months.
    principal, apr, n = 10_000.0, 0.30, 12
    projection = project_cashflows(loans(("L1", frequency, D(2027, 1, 15), principal, apr)), AS_OF, assumptions())
    rate = apr / 12
    payment = -npf.pmt(rate, n, principal)
    balance = principal
    for k in range(1, n + 1):
        row = month(projection, k)
        assert row["opening_balance"] == round(balance, 2)
        assert row["scheduled_principal"] == round(float(-npf.ppmt(rate, k, n, principal)), 2)
        assert row["interest"] == round(float(-npf.ipmt(rate, k, n, principal)), 2)
        assert row["net_cash"] == round(float(payment), 2)
        assert row["prepayment"] == row["defaults"] == row["recoveries"] == 0.0
        balance += float(npf.ppmt(rate, k, n, principal))
    assert month(projection, n)["closing_balance"] == 0.0
    assert projection.filter(pl.col("projection_month") > n)["net_cash"].to_list() == [0.0] * 12


def test_projection_shape_dates_and_assumption_columns():
    projection = project_cashflows(loans(("L1", "monthly", D(2027, 1, 15), 1000.0, 0.2)), AS_OF,
                                   assumptions(mdr=0.01, smm=0.02, severity=0.55, lag=6))
    assert projection["projection_month"].to_list() == list(range(1, 25))
    assert projection["projected_month_end"][0] == D(2026, 2, 28)
    assert projection["projected_month_end"][23] == D(2028, 1, 31)
    assert projection.columns[:12] == [
        "as_of", "projection_month", "projected_month_end", "opening_balance", "scheduled_principal", "interest",
        "prepayment", "defaults", "recoveries", "net_cash", "closing_balance", "mdr"]
    assert set(projection["mdr"]) == {0.01} and set(projection["smm"]) == {0.02}
    assert set(projection["severity"]) == {0.55} and set(projection["recovery_lag_months"]) == {6}


def test_bullet_factoring_loan_pays_principal_and_discount_in_its_maturity_month():
    # 31 Jan -> 15 Apr 2026 = 28 + 31 + 15 = 74 days; due in the 3rd projected month (April).
    projection = project_cashflows(loans(("F1", "bullet", D(2026, 4, 15), 5000.0, 0.24)), AS_OF, assumptions())
    for k in (1, 2):
        assert month(projection, k)["net_cash"] == 0.0
        assert month(projection, k)["closing_balance"] == 5000.0
    april = month(projection, 3)
    assert april["scheduled_principal"] == 5000.0
    assert april["interest"] == 246.67  # 5000 x 0.24 x 74 / 360 = 246.666...
    assert april["net_cash"] == 5246.67
    assert april["closing_balance"] == 0.0
    assert projection.filter(pl.col("projection_month") > 3)["opening_balance"].sum() == 0.0


def test_loans_past_maturity_fall_due_in_the_first_projected_month():
    book = loans(
        ("M1", "monthly", D(2025, 12, 10), 1200.0, 0.12),  # one level installment: 1200 + 1 % interest
        ("F1", "bullet", D(2026, 1, 20), 800.0, 0.30),  # no days left: principal only
        ("Z0", "monthly", D(2026, 6, 30), 0.0, 0.12),  # nothing outstanding: ignored
    )
    projection = project_cashflows(book, AS_OF, assumptions())
    first = month(projection, 1)
    assert first["opening_balance"] == 2000.0
    assert first["scheduled_principal"] == 2000.0
    assert first["interest"] == 12.0
    assert first["net_cash"] == 2012.0
    assert projection.filter(pl.col("projection_month") > 1)["opening_balance"].sum() == 0.0


def test_sifma_order_defaults_then_amortisation_then_prepayment():
    # 1000 at 12 % APR (1 % a month), 2 months left, MDR 10 %, SMM 20 %.
    # Month 1: defaults 100; surviving 900 pays 1 % interest = 9 and the level installment of 900 over
    #   2 months, 900 x 0.01 x 1.0201 / 0.0201 = 456.76119403, i.e. principal 447.76119403; prepayment
    #   20 % of the 452.23880597 left = 90.44776119; closing 361.79104478.
    # Month 2: defaults 36.17910448; the surviving 325.61194030 is due in full with 3.25611940 interest.
    projection = project_cashflows(loans(("L1", "monthly", D(2026, 3, 31), 1000.0, 0.12)), AS_OF,
                                   assumptions(mdr=0.10, smm=0.20))
    assert {k: v for k, v in month(projection, 1).items() if k in {
        "opening_balance", "defaults", "scheduled_principal", "interest", "prepayment", "closing_balance",
        "net_cash"}} == {
        "opening_balance": 1000.00, "defaults": 100.00, "scheduled_principal": 447.76, "interest": 9.00,
        "prepayment": 90.45, "closing_balance": 361.79, "net_cash": 547.21}
    second = month(projection, 2)
    assert (second["opening_balance"], second["defaults"], second["scheduled_principal"], second["interest"],
            second["prepayment"], second["closing_balance"]) == (361.79, 36.18, 325.61, 3.26, 0.0, 0.0)


def test_recoveries_arrive_after_the_lag_net_of_severity():
    # Same book as the SIFMA case: defaults 100 (month 1) and 36.17910448 (month 2).
    projection = project_cashflows(loans(("L1", "monthly", D(2026, 3, 31), 1000.0, 0.12)), AS_OF,
                                   assumptions(mdr=0.10, smm=0.20, severity=0.6, lag=6))
    recoveries = projection["recoveries"].to_list()
    assert recoveries[6] == 40.00  # month 7: (1 - 0.6) x 100
    assert recoveries[7] == 14.47  # month 8: 0.4 x 36.17910448
    assert sum(recoveries) == pytest.approx(54.47)
    assert month(projection, 7)["net_cash"] == 40.00


def test_defaults_too_close_to_the_horizon_recover_after_it():
    # A bullet far beyond the horizon only runs off through defaults: defaults_k = 1 % x 10 000 x 0.99^(k-1).
    projection = project_cashflows(loans(("F1", "bullet", D(2029, 1, 31), 10_000.0, 0.2)), AS_OF,
                                   assumptions(mdr=0.01, severity=0.25, lag=6))
    defaults = 100.0 * 0.99 ** np.arange(24)
    expected = np.concatenate([np.zeros(6), 0.75 * defaults[:18]])
    np.testing.assert_allclose(projection["recoveries"].to_numpy(), np.round(expected, 2), atol=1e-9)
    np.testing.assert_allclose(projection["defaults"].to_numpy(), np.round(defaults, 2), atol=1e-9)


def test_null_assumptions_project_as_zero_rates():
    no_history = pl.DataFrame({"mdr": [None], "smm": [None], "severity": [0.6], "recovery_lag_months": [6]},
                              schema_overrides={"mdr": pl.Float64, "smm": pl.Float64})
    projection = project_cashflows(loans(("L1", "monthly", D(2026, 3, 31), 1000.0, 0.0)), AS_OF, no_history)
    assert projection["scheduled_principal"].to_list()[:2] == [500.0, 500.0]  # 0 % APR: straight line
    assert projection["defaults"].sum() == projection["prepayment"].sum() == 0.0


# --------------------------------------------------------------------------- measured assumptions

PANEL_SCHEMA = {"month_end": pl.Date, "loan_id": pl.String, "outstanding_principal": pl.Float64,
                "days_past_due": pl.Int64, "loan_status": pl.String, "is_active": pl.Boolean,
                "write_off_amount": pl.Float64}
FLOW_SCHEMA = {"month_end": pl.Date, "loan_id": pl.String, "paid_principal": pl.Float64,
               "scheduled_principal": pl.Float64}
RECOVERY_SCHEMA = {"month_end": pl.Date, "loan_id": pl.String, "recovered_amount": pl.Float64}
JAN, FEB, MAR = D(2026, 1, 31), D(2026, 2, 28), D(2026, 3, 31)
AUG, SEP = D(2025, 8, 31), D(2025, 9, 30)


def snapshot(month_end, *rows) -> list[tuple]:
    out = []
    for loan_id, outstanding, dpd, status, write_off in rows:
        active = status not in ("Complete", "Written Off") and outstanding > 0
        out.append((month_end, loan_id, outstanding, dpd, status, active, write_off))
    return out


@pytest.fixture()
def history() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Sep 2025 (outside the window) and Feb, Mar 2026 are measurable; Jan 2026 has no December start.

    Feb: start OPB 5500 (L1 1000, L2 3000, L3 1000 at 60 DPD, L4 500 at 95 DPD); L3 is newly at 91 DPD
      (1000); L4 was already defaulted. Performing L1, L2: prepaid (600-100)+(300-300) = 500 over
      (1000-100)+(3000-300) = 3600. L3's scheduled 100 and the new L5's payment are out of SMM.
    Mar: start OPB 6600 (L1 400, L2 2700, L3 1000, L4 500, L5 2000); L5 is written off for 1900 (new
      default); L3 and L4 written off but were already at DPD >= 90. Performing L1, L2, L5: prepaid
      (400-100)+0+0 = 300 over 300+2400+1900 = 4600.
    Severity: written off by March L0 10000 + L3 1000 + L4 500 + L5 1900 = 13400, recovered by March
      2000 + 380 + 300 = 2680 -> 1 - 0.2 = 0.8 (April's 1000 is after as-of).
    """
    rows = (
        snapshot(AUG, ("L0", 10_000.0, 0, "Current", None))
        + snapshot(SEP, ("L0", 0.0, 120, "Written Off", 10_000.0))
        + snapshot(JAN, ("L0", 0.0, 120, "Written Off", 10_000.0), ("L1", 1000.0, 0, "Current", None),
                   ("L2", 3000.0, 0, "Current", None), ("L3", 1000.0, 60, "Delinquent", None),
                   ("L4", 500.0, 95, "Default", None))
        + snapshot(FEB, ("L0", 0.0, 120, "Written Off", 10_000.0), ("L1", 400.0, 0, "Current", None),
                   ("L2", 2700.0, 0, "Current", None), ("L3", 1000.0, 91, "Default", None),
                   ("L4", 500.0, 125, "Default", None), ("L5", 2000.0, 0, "Current", None))
        + snapshot(MAR, ("L0", 0.0, 120, "Written Off", 10_000.0), ("L1", 0.0, 0, "Complete", None),
                   ("L2", 2400.0, 0, "Current", None), ("L3", 0.0, 120, "Written Off", 1000.0),
                   ("L4", 0.0, 150, "Written Off", 500.0), ("L5", 0.0, 30, "Written Off", 1900.0))
    )
    panel = pl.DataFrame(rows, schema=PANEL_SCHEMA, orient="row")
    flows = pl.DataFrame(
        [
            (SEP, "L0", 0.0, 500.0),
            (FEB, "L1", 600.0, 100.0), (FEB, "L2", 300.0, 300.0), (FEB, "L3", 0.0, 100.0), (FEB, "L5", 50.0, 0.0),
            (MAR, "L1", 400.0, 100.0), (MAR, "L2", 300.0, 300.0), (MAR, "L5", 100.0, 100.0),
        ],
        schema=FLOW_SCHEMA, orient="row",
    )
    recoveries = pl.DataFrame(
        [(D(2025, 12, 31), "L0", 2000.0), (MAR, "L3", 380.0), (MAR, "L4", 300.0), (D(2026, 4, 30), "L0", 1000.0)],
        schema=RECOVERY_SCHEMA, orient="row",
    )
    return panel, flows, recoveries


def test_monthly_performance_by_hand(history):
    panel, flows, _ = history
    months = monthly_performance(panel, flows)
    assert months["month_end"].to_list() == [SEP, FEB, MAR]  # January has no December start snapshot
    feb = months.filter(pl.col("month_end") == FEB).row(0, named=True)
    assert (feb["start_opb"], feb["default_principal"], feb["prepaid_principal"], feb["prepay_base"]) == (
        5500.0, 1000.0, 500.0, 3600.0)
    mar = months.filter(pl.col("month_end") == MAR).row(0, named=True)
    assert (mar["start_opb"], mar["default_principal"], mar["prepaid_principal"], mar["prepay_base"]) == (
        6600.0, 1900.0, 300.0, 4600.0)


def test_measure_assumptions_uses_ratios_of_sums_over_the_trailing_window(history):
    panel, flows, recoveries = history
    measured = measure_assumptions(panel, flows, recoveries).row(0, named=True)
    assert measured["month_end"] == MAR
    assert measured["window_start_month_end"] == FEB and measured["window_months_observed"] == 2
    # Ratio of sums; the mean of the monthly ratios would be (1000/5500 + 1900/6600) / 2 = 0.23485.
    assert measured["mdr"] == pytest.approx(2900 / 12100)
    assert abs(measured["mdr"] - (1000 / 5500 + 1900 / 6600) / 2) > 1e-3
    # Ratio of sums; the mean of ratios would be (500/3600 + 300/4600) / 2 = 0.10205.
    assert measured["smm"] == pytest.approx(800 / 8200)
    assert abs(measured["smm"] - (500 / 3600 + 300 / 4600) / 2) > 1e-3
    assert measured["cdr"] == pytest.approx(1 - (1 - 2900 / 12100) ** 12)
    assert measured["cpr"] == pytest.approx(1 - (1 - 800 / 8200) ** 12)
    assert measured["written_off_amount"] == 13_400.0 and measured["recovered_amount"] == 2680.0
    assert measured["severity"] == pytest.approx(0.8)
    assert measured["recovery_lag_months"] == 6


def test_measure_assumptions_at_an_earlier_as_of_sees_only_its_window(history):
    # February's window is Sep 2025 .. Feb 2026, so September (5 months back) is in it: L0's 10000 default
    # on a 10000 start, and its missed 500 installment, -500 over 10000 - 500 = 9500.
    panel, flows, recoveries = history
    measured = measure_assumptions(panel, flows, recoveries, as_of=FEB).row(0, named=True)
    assert measured["window_start_month_end"] == SEP and measured["window_months_observed"] == 2
    assert measured["mdr"] == pytest.approx(11_000 / 15_500)
    assert measured["smm"] == pytest.approx(0.0)  # (-500 + 500) / (9500 + 3600)
    # By February only L0 is written off (10000) and 2000 recovered.
    assert measured["severity"] == pytest.approx(0.8)
    assert measured["written_off_amount"] == 10_000.0


def test_severity_defaults_to_60_percent_without_recoveries(history):
    panel, flows, _ = history
    no_recoveries = pl.DataFrame(schema=RECOVERY_SCHEMA)
    assert measure_assumptions(panel, flows, no_recoveries)["severity"][0] == 0.6
    only_later = pl.DataFrame([(D(2026, 4, 30), "L0", 1000.0)], schema=RECOVERY_SCHEMA, orient="row")
    assert measure_assumptions(panel, flows, only_later)["severity"][0] == 0.6


def test_single_snapshot_gives_null_rates_not_zero():
    panel = pl.DataFrame(snapshot(JAN, ("L1", 1000.0, 0, "Current", None)), schema=PANEL_SCHEMA, orient="row")
    measured = measure_assumptions(panel, pl.DataFrame(schema=FLOW_SCHEMA), pl.DataFrame(schema=RECOVERY_SCHEMA))
    assert measured["mdr"][0] is None and measured["smm"][0] is None
    assert measured["cdr"][0] is None and measured["window_months_observed"][0] == 0


def test_flows_match_their_snapshot_by_calendar_month(history):
    # Flows dated on any day of the month land on that month's tape (here Feb 15 / Mar 1 vs the tape dates).
    panel, flows, _ = history
    shifted = flows.with_columns(pl.col("month_end").dt.truncate("1mo").dt.offset_by("14d"))
    assert monthly_performance(panel, shifted).equals(monthly_performance(panel, flows))


def test_history_older_than_the_metric_window_changes_nothing(history):
    """The metric assets read only HISTORY_MONTHS month-ends back from the latest (memory bounded by
    the book, not its history): month-ends older than that must not move the assumptions."""
    from abaco_assets.defs.metrics.python_metrics import HISTORY_MONTHS

    panel, flows, recoveries = history
    ancient = D(2024, 12, 31)  # 15 months back: outside the window
    assert (MAR.year * 12 + MAR.month) - (ancient.year * 12 + ancient.month) > HISTORY_MONTHS
    noisy_panel = pl.concat([panel, pl.DataFrame(snapshot(ancient, ("L9", 99_000.0, 200, "Default", None)),
                                                 schema=PANEL_SCHEMA, orient="row")])
    noisy_flows = pl.concat([flows, pl.DataFrame([(ancient, "L9", 5_000.0, 1.0)], schema=FLOW_SCHEMA, orient="row")])
    assert measure_assumptions(noisy_panel, noisy_flows, recoveries, MAR).equals(
        measure_assumptions(panel, flows, recoveries, MAR))
