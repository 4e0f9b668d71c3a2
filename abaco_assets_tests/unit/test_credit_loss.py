"""IFRS 9 style ECL: stages, observed PD12 (cells, whole-book fallback, short history), roll-ups."""

import datetime as dt

import polars as pl
import pytest

from abaco_assets.lib.credit_loss import expected_credit_loss, measure_pd12, stage_from_dpd

D = dt.date
SCHEMA = {"month_end": pl.Date, "loan_id": pl.String, "segment": pl.String, "outstanding_principal": pl.Float64,
          "days_past_due": pl.Int64, "loan_status": pl.String, "is_active": pl.Boolean, "maturity_date": pl.Date}
FAR = D(2030, 12, 31)


def panel(*rows: tuple) -> pl.DataFrame:
    out = []
    for month_end, loan_id, segment, outstanding, dpd, status, maturity in rows:
        active = status not in ("Complete", "Written Off") and outstanding > 0
        out.append((month_end, loan_id, segment, outstanding, dpd, status, active, maturity))
    return pl.DataFrame(out, schema=SCHEMA, orient="row")


def test_stage_boundaries():
    dpd = pl.DataFrame({"days_past_due": [0, 29, 30, 89, 90, 400]})
    assert dpd.select(stage_from_dpd())["stage"].to_list() == [1, 1, 2, 2, 3, 3]


COHORT, MID, AS_OF = D(2025, 12, 31), D(2026, 6, 30), D(2026, 12, 31)


@pytest.fixture()
def book() -> pl.DataFrame:
    """Cohort Dec 2025 (12 month-ends before Dec 2026):

    Gob stage 1: A1 1000 (at 95 DPD in June -> defaulted, later cured), A2 3000 -> PD12 = 1000/4000 = 0.25
    Gob stage 2: A3 2000 (written off in June), A4 2000                  -> PD12 = 2000/4000 = 0.5
    OC  stage 1: B1 5000 (90+ only at as-of)                              -> PD12 = 5000/5000 = 1.0
    whole book: 8000 defaulted of 13000 = 8/13
    """
    return panel(
        (COHORT, "A1", "Gob", 1000.0, 0, "Current", D(2027, 6, 15)),
        (COHORT, "A2", "Gob", 3000.0, 0, "Current", D(2028, 12, 31)),
        (COHORT, "A3", "Gob", 2000.0, 45, "Delinquent", FAR),
        (COHORT, "A4", "Gob", 2000.0, 30, "Delinquent", D(2028, 12, 15)),
        (COHORT, "B1", "OC", 5000.0, 10, "Delinquent", FAR),
        (COHORT, "Z9", "OC", 0.0, 0, "Complete", FAR),  # not active: not in the cohort
        (MID, "A1", "Gob", 900.0, 95, "Default", D(2027, 6, 15)),
        (MID, "A3", "Gob", 0.0, 120, "Written Off", FAR),
        (AS_OF, "A1", "Gob", 800.0, 0, "Current", D(2027, 6, 15)),  # stage 1, 6 months left
        (AS_OF, "A2", "Gob", 3000.0, 0, "Current", D(2028, 12, 31)),  # stage 1, 24 months left
        (AS_OF, "A3", "Gob", 0.0, 150, "Written Off", FAR),  # not active
        (AS_OF, "A4", "Gob", 2000.0, 40, "Delinquent", D(2028, 12, 15)),  # stage 2, 24 months left
        (AS_OF, "A5", "Gob", 100.0, 0, "Current", D(2026, 10, 31)),  # stage 1, past maturity -> 1 month
        (AS_OF, "B1", "OC", 5000.0, 120, "Default", FAR),  # stage 3
        (AS_OF, "C1", "OC", 1000.0, 60, "Delinquent", D(2027, 3, 1)),  # stage 2, no OC stage-2 cell, 3 months
        (AS_OF, "T1", "Top", 1000.0, 0, "Current", D(2027, 12, 31)),  # stage 1, no Top cell, 12 months
    )


def test_pd12_cells_and_whole_book(book):
    pd12 = measure_pd12(book)
    assert set(pd12["window_months"]) == {12} and set(pd12["cohort_month_end"]) == {COHORT}
    cells = {(r["segment"], r["stage"]): r["pd12"] for r in pd12.filter(pl.col("scope") == "cell").iter_rows(named=True)}
    assert cells == {("Gob", 1): 0.25, ("Gob", 2): 0.5, ("OC", 1): 1.0}
    whole = pd12.filter(pl.col("scope") == "book").row(0, named=True)
    assert (whole["cohort_opb"], whole["defaulted_opb"]) == (13_000.0, 8000.0)
    assert whole["pd12"] == pytest.approx(8 / 13)


def test_ecl_per_loan_for_each_branch(book):
    result = expected_credit_loss(book, severity=0.5)
    loans = {r["loan_id"]: r for r in result.loans.iter_rows(named=True)}
    assert set(loans) == {"A1", "A2", "A4", "A5", "B1", "C1", "T1"}
    book_pd12 = 8 / 13

    # Stage 1 shorter than 12 months: 1 - 0.75^(6/12).
    assert loans["A1"]["stage"] == 1 and loans["A1"]["months_left"] == 6
    assert loans["A1"]["pd"] == pytest.approx(1 - 0.75 ** 0.5)
    assert loans["A1"]["ecl"] == round((1 - 0.75 ** 0.5) * 0.5 * 800, 2) == 53.59
    # Stage 1 longer than 12 months: capped at the 12-month PD.
    assert loans["A2"]["pd"] == pytest.approx(0.25) and loans["A2"]["ecl"] == 375.0
    # Stage 1 past maturity still carries one month: 1 - 0.75^(1/12).
    assert loans["A5"]["months_left"] == 1 and loans["A5"]["pd"] == pytest.approx(1 - 0.75 ** (1 / 12))
    assert loans["A5"]["ecl"] == 1.18
    # Stage 2 lifetime over 24 months: 1 - 0.5^2.
    assert loans["A4"]["stage"] == 2 and loans["A4"]["pd"] == pytest.approx(0.75) and loans["A4"]["ecl"] == 750.0
    # Stage 2 in a cell without history: whole-book PD12, lifetime of 3 months.
    assert loans["C1"]["pd12_source"] == "whole_book" and loans["C1"]["pd12"] == pytest.approx(book_pd12)
    assert loans["C1"]["pd"] == pytest.approx(1 - (1 - book_pd12) ** 0.25)
    # Stage 1 in a segment without history: whole-book PD12 over 12 months.
    assert loans["T1"]["pd12_source"] == "whole_book" and loans["T1"]["pd"] == pytest.approx(book_pd12)
    assert loans["T1"]["ecl"] == round(book_pd12 * 0.5 * 1000, 2)
    # Stage 3: PD 1, ECL = LGD x EAD.
    assert loans["B1"]["stage"] == 3 and loans["B1"]["pd"] == 1.0 and loans["B1"]["ecl"] == 2500.0
    assert {r["lgd"] for r in loans.values()} == {0.5}
    assert {r["ead"] for r in loans.values()} >= {800.0, 3000.0, 5000.0}


def test_rollups_and_coverage(book):
    result = expected_credit_loss(book, severity=0.5)
    book_pd12 = 8 / 13
    ecl = {
        "A1": (1 - 0.75 ** 0.5) * 400, "A2": 375.0, "A4": 750.0, "A5": (1 - 0.75 ** (1 / 12)) * 50,
        "B1": 2500.0, "C1": (1 - (1 - book_pd12) ** 0.25) * 500, "T1": book_pd12 * 500,
    }
    rollup = {(r["segment"], r["stage"]): r for r in result.by_segment_stage.iter_rows(named=True)}
    assert set(rollup) == {("Gob", 1), ("Gob", 2), ("OC", 2), ("OC", 3), ("Top", 1)}
    assert rollup[("Gob", 1)]["loans"] == 3 and rollup[("Gob", 1)]["ead"] == 3900.0
    assert rollup[("Gob", 1)]["ecl"] == round(ecl["A1"] + ecl["A2"] + ecl["A5"], 2)

    coverage = {r["segment"]: r for r in result.coverage.iter_rows(named=True)}
    total_ecl = sum(ecl.values())
    assert coverage[None]["scope"] == "book"
    assert coverage[None]["par30_amount"] == 8000.0  # A4 2000 + B1 5000 + C1 1000
    assert coverage[None]["ecl"] == round(total_ecl, 2)
    assert coverage[None]["coverage"] == pytest.approx(total_ecl / 8000)
    assert coverage["OC"]["coverage"] == pytest.approx((ecl["B1"] + ecl["C1"]) / 6000)
    assert coverage["Top"]["par30_amount"] == 0.0 and coverage["Top"]["coverage"] is None


def test_short_history_uses_the_longest_window_and_annualizes():
    as_of = D(2026, 6, 30)
    history = panel(
        (D(2025, 5, 31), "X0", "Gob", 9000.0, 0, "Current", FAR),  # 13 months back: outside the 12
        (D(2026, 3, 31), "X1", "Gob", 1000.0, 0, "Current", FAR),
        (D(2026, 3, 31), "X2", "Gob", 3000.0, 0, "Current", FAR),
        (D(2026, 4, 30), "X1", "Gob", 0.0, 0, "Written Off", FAR),
        (as_of, "X1", "Gob", 0.0, 0, "Written Off", FAR),
        (as_of, "X2", "Gob", 3000.0, 0, "Current", FAR),
    )
    pd12 = measure_pd12(history)
    cell = pd12.filter(pl.col("scope") == "cell").row(0, named=True)
    assert (cell["cohort_month_end"], cell["window_months"]) == (D(2026, 3, 31), 3)
    assert cell["pd_window"] == 0.25
    assert cell["pd12"] == pytest.approx(1 - 0.75 ** 4)  # 0.68359375
    loan = expected_credit_loss(history, severity=0.6).loans.row(0, named=True)
    assert loan["pd"] == pytest.approx(0.68359375)
    assert loan["ecl"] == 1230.47  # 0.68359375 x 0.6 x 3000 = 1230.46875


def test_no_history_leaves_stage_1_and_2_unmeasured_but_stage_3_certain():
    as_of = D(2026, 1, 31)
    first_tape = panel(
        (as_of, "N1", "Gob", 1000.0, 0, "Current", FAR),
        (as_of, "N2", "Gob", 400.0, 95, "Default", FAR),
    )
    result = expected_credit_loss(first_tape, severity=0.6)
    loans = {r["loan_id"]: r for r in result.loans.iter_rows(named=True)}
    assert loans["N1"]["pd12"] is None and loans["N1"]["ecl"] is None
    assert loans["N2"]["pd"] == 1.0 and loans["N2"]["ecl"] == 240.0
    coverage = result.coverage.filter(pl.col("scope") == "book").row(0, named=True)
    assert coverage["ecl"] is None and coverage["coverage"] is None  # not silently understated
    assert coverage["par30_amount"] == 400.0


def test_history_older_than_the_metric_window_changes_nothing(book):
    """The ECL asset reads only HISTORY_MONTHS month-ends back from the latest: older ones must not matter."""
    from abaco_assets.defs.metrics.python_metrics import HISTORY_MONTHS

    ancient = D(2025, 6, 30)  # 18 months before the as-of
    assert (AS_OF.year * 12 + AS_OF.month) - (ancient.year * 12 + ancient.month) > HISTORY_MONTHS
    noisy = pl.concat([panel((ancient, "A1", "Gob", 50.0, 200, "Default", FAR),
                             (ancient, "Q1", "OC", 9000.0, 0, "Current", FAR)), book])
    full, windowed = expected_credit_loss(noisy, 0.6, AS_OF), expected_credit_loss(book, 0.6, AS_OF)
    assert full.loans.equals(windowed.loans) and full.by_segment_stage.equals(windowed.by_segment_stage)
    assert measure_pd12(noisy, AS_OF).equals(measure_pd12(book, AS_OF))
