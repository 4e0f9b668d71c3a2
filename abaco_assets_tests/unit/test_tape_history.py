"""Tape-to-tape rules on hand-made snapshots: each one passes on a consistent pair and fails on a broken one."""

import datetime as dt
from decimal import Decimal

import polars as pl

from abaco_assets.lib.tape_history import completeness, history_consistency, opb_roll_forward

T0, T1 = dt.date(2026, 1, 31), dt.date(2026, 2, 28)
D = Decimal


def loans(rows):
    base = dict(customer_id="C1", product_type="term_loan", disbursement_date=dt.date(2026, 1, 5),
                disbursement_amount=D("1000.00"), interest_rate_apr=D("0.30"), term=12, term_unit="months",
                payment_frequency="monthly", days_past_due=0, loan_status="Current", write_off_date=None,
                write_off_amount=None)
    return pl.DataFrame([{**base, **row} for row in rows])


def payments(rows):
    return pl.DataFrame(rows, schema={"loan_id": pl.String, "payment_date": pl.Date,
                                      "paid_principal": pl.Decimal(18, 2), "payment_status": pl.String})


PREVIOUS = loans([dict(loan_id="A", outstanding_principal=D("1000.00")),
                  dict(loan_id="B", outstanding_principal=D("500.00"), disbursement_amount=D("500.00"))])


def test_completeness_flags_a_loan_that_vanished():
    current = loans([dict(loan_id="A", outstanding_principal=D("900.00"))])
    result = completeness(PREVIOUS, current, T0)
    assert not result.passed and result.severity == "ERROR"
    assert [d["loan_id"] for d in result.details] == ["B"] and "full book" in result.message
    assert completeness(PREVIOUS, PREVIOUS, T0).passed


def test_roll_forward_holds_to_the_cent_and_breaks_beyond_half_a_percent():
    # A pays 100 principal, B is written off at 500, C is disbursed for 300: 1500 + 300 - 100 - 500 = 1200
    current = loans([
        dict(loan_id="A", outstanding_principal=D("900.00")),
        dict(loan_id="B", outstanding_principal=D("0.00"), disbursement_amount=D("500.00"), loan_status="Written Off",
             write_off_date=dt.date(2026, 2, 20), write_off_amount=D("500.00")),
        dict(loan_id="C", outstanding_principal=D("300.00"), disbursement_amount=D("300.00"),
             disbursement_date=dt.date(2026, 2, 10)),
    ])
    paid = payments([
        {"loan_id": "A", "payment_date": dt.date(2026, 2, 15), "paid_principal": D("100.00"), "payment_status": "Settled"},
        {"loan_id": "A", "payment_date": dt.date(2026, 2, 16), "paid_principal": D("100.00"), "payment_status": "Reversed"},
        {"loan_id": "B", "payment_date": dt.date(2026, 2, 25), "paid_principal": D("50.00"), "payment_status": "Settled"},
        {"loan_id": "A", "payment_date": dt.date(2026, 1, 20), "paid_principal": D("70.00"), "payment_status": "Settled"},
    ])
    result = opb_roll_forward(PREVIOUS, current, paid, T0, T1)
    assert result.passed, result.message
    assert D(result.measures["difference"]) == 0 and D(result.measures["principal_collected"]) == D("100.00")
    broken = current.with_columns(pl.when(pl.col("loan_id") == "A").then(D("950.00"))
                                  .otherwise(pl.col("outstanding_principal")).alias("outstanding_principal"))
    failed = opb_roll_forward(PREVIOUS, broken, paid, T0, T1)
    assert not failed.passed and failed.severity == "WARN" and D(failed.measures["difference"]) == D("50.00")


def test_history_consistency_lists_each_break():
    current = loans([
        dict(loan_id="A", outstanding_principal=D("1100.00")),  # grew
        dict(loan_id="B", outstanding_principal=D("500.00"), disbursement_amount=D("600.00")),  # terms changed
    ])
    result = history_consistency(PREVIOUS, current)
    assert not result.passed
    assert {(d["loan_id"], d["rule"]) for d in result.details} == {
        ("A", "outstanding_increased"), ("B", "disbursement_fields_changed")}
    written_off = loans([dict(loan_id="A", outstanding_principal=D("0"), loan_status="Written Off",
                              write_off_date=T0, write_off_amount=D("1000.00"))])
    back = loans([dict(loan_id="A", outstanding_principal=D("0"))])
    revived = history_consistency(written_off, back)
    assert [d["rule"] for d in revived.details] == ["written_off_back_to_current"]
    assert history_consistency(PREVIOUS, PREVIOUS).passed
