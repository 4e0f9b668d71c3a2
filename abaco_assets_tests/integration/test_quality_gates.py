"""A corpus of malformed deliveries, one defect each: every one is caught with the exact rule,
quarantined with its error report, and leaves the typed zone and every mart exactly as they were.

The runs go through the same code as `abaco run` (in-process, to keep the
suite fast); the marts are compared row by row, ordered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import duckdb
import pytest

from abaco_assets_tests.conftest import environment
from abaco_assets_tests.fixtures.landing_writer import (
    CASCADE_FILE_NAMES, csv_bytes, customer, loan, write_collections, write_delinquency, write_file, write_tape,
)

JAN, FEB = dt.date(2026, 1, 31), dt.date(2026, 2, 28)
MARTS = ("kpi_portfolio_monthly", "kpi_portfolio_monthly_by_segment", "kpi_portfolio_monthly_by_product",
         "kpi_roll_rates", "kpi_vintage_curves")
pytestmark = pytest.mark.e2e


def schedule(loan_id, n, due, principal="80.00", interest="30.00", total="110.00"):
    return dict(loan_id=loan_id, installment_number=n, due_date=due, scheduled_principal=principal,
                scheduled_interest=interest, scheduled_fee="0", scheduled_other="0", scheduled_total=total)


def payment(payment_id, loan_id, day, principal, interest, total=None, status="Settled"):
    total = total or f"{float(principal) + float(interest):.2f}"
    return dict(payment_id=payment_id, loan_id=loan_id, payment_date=day, paid_principal=principal,
                paid_interest=interest, paid_fee=None, paid_other=None, paid_tax=None, paid_fee_tax=None,
                rebates=None, paid_total=total, payment_status=status)


def tape(day: dt.date) -> dict[str, list[dict]]:
    """A small, valid book: two customers, a factoring and two term loans (one 45 days late in February)."""
    feb = day == FEB
    loans = [
        loan("L1", "C1", outstanding_principal="920.00" if feb else "1000.00"),
        loan("L2", "C2", disbursement_amount="500.00", outstanding_principal="500.00",
             days_past_due="45" if feb else "14", loan_status="Delinquent"),
        loan("L3", "C1", product_type="factoring", term="60", term_unit="days", payment_frequency="bullet",
             tpv="2500.00", disbursement_amount="2000.00", outstanding_principal="2000.00",
             maturity_date="2026-03-11"),
    ]
    payments = [payment("P1", "L1", "2026-02-10", "80.00", "30.00")] if feb else []
    return {
        "loan_data": loans,
        "customer_data": [customer("C1", "OC"), customer("C2", "Gob")],
        "payment_schedule": [schedule("L1", 1, "2026-02-10"), schedule("L2", 1, "2026-01-17", "40.00", "10.00",
                                                                       "50.00")],
        "historic_real_payment": payments,
    }


COLLECTION = dict(payment_id="P1", loan_id="L1", received_date="2026-02-10", amount="110.00", channel="bank_transfer",
                  is_recovery="false")
DELINQUENT = dict(as_of_date="2026-02-28", loan_id="L2", days_past_due="45", overdue_principal="40.00",
                  overdue_interest="10.00", first_unpaid_due_date="2026-01-17", collection_stage="late",
                  promise_to_pay_date=None)
CURRENT = dict(DELINQUENT, loan_id="L1", days_past_due="0", overdue_principal="0", overdue_interest="0",
               first_unpaid_due_date=None, collection_stage="none")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    root = tmp_path_factory.mktemp("gates")
    landing, data = root / "landing", root / "data"
    env = {"ABACO_DATA": str(data), "DAGSTER_HOME": str(data / "dagster_home"), "ABACO_LANDING": str(landing)}
    with environment(env):
        write_tape(landing, JAN, tape(JAN))
        write_tape(landing, FEB, tape(FEB))
        write_collections(landing, dt.date(2026, 2, 10), [COLLECTION])
        write_delinquency(landing, FEB, [CURRENT, dict(DELINQUENT, loan_id="L3", days_past_due="0",
                                                       overdue_principal="0", overdue_interest="0",
                                                       first_unpaid_due_date=None, collection_stage="none"),
                                         DELINQUENT])
        code = run(landing, data)
        assert code == 0
        yield landing, data


def run(landing: Path, data: Path, force: bool = False) -> int:
    from abaco_assets.cli import _run

    return _run(landing, data, force)


def state(data: Path) -> tuple[dict, dict]:
    typed = {str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted((data / "typed").rglob("*.parquet"))}
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        marts = {m: con.execute(f"select * from marts.{m} order by all").fetchall() for m in MARTS}
    return typed, marts


def _loans_with(**overrides):
    rows = tape(FEB)["loan_data"]
    rows[0] = {**rows[0], **overrides}
    return csv_bytes("cascade", "loan_data", rows)


def _table_with(table, mutate):
    rows = tape(FEB)[table]
    return csv_bytes("cascade", table, mutate(rows))


GOOD_LOANS = csv_bytes("cascade", "loan_data", tape(FEB)["loan_data"])
GOOD_COLLECTIONS = csv_bytes("collections", "collections", [COLLECTION])
GOOD_DELINQUENCY = csv_bytes("delinquency", "delinquency", [CURRENT, DELINQUENT])

# (id, source, table, file bytes, expected rule)
CORPUS = [
    ("renamed_header", "cascade", "loan_data", GOOD_LOANS.replace(b"Loan ID", b"LoanID", 1), "header.missing_column"),
    ("unknown_column", "cascade", "loan_data",
     b"\n".join(line + (b",Notes" if i == 0 else b",x") for i, line in enumerate(GOOD_LOANS.splitlines())) + b"\n",
     "header.unknown_column"),
    ("missing_required_column", "cascade", "loan_data",
     b"\n".join(b",".join(f for i, f in enumerate(line.split(b",")) if i != 10)
                for line in GOOD_LOANS.split(b"\n")), "header.missing_column"),
    ("duplicate_header", "cascade", "loan_data", GOOD_LOANS.replace(b"TPV", b"Term", 1), "header.duplicate_column"),
    ("zero_bytes", "cascade", "loan_data", b"", "file.empty"),
    ("not_utf8", "cascade", "customer_data", _table_with("customer_data", lambda r: r).replace(b"Cliente C1",
                                                                                              b"Cliente \xe9"),
     "file.encoding"),
    ("semicolon_delimiter", "cascade", "loan_data", GOOD_LOANS.replace(b",", b";"), "file.delimiter"),
    ("truncated_last_row", "cascade", "loan_data", GOOD_LOANS.rstrip(b"\n").rsplit(b",", 5)[0],
     "file.malformed_csv"),
    ("sql_in_header", "cascade", "loan_data", GOOD_LOANS.replace(b"Term Unit", b"Term Unit'; DROP TABLE marts.x;--", 1),
     "header.unknown_column"),
    ("one_megabyte_field", "cascade", "loan_data", GOOD_LOANS.replace(b"L2,", b"L" + b"2" * 1_048_576 + b",", 1),
     "file.field_too_long"),
    ("header_only_loan_tape", "cascade", "loan_data", GOOD_LOANS.split(b"\n")[0] + b"\n", "file.empty_table"),
    ("date_format", "cascade", "loan_data", _loans_with(disbursement_date="10/01/2026"), "type.date"),
    ("thousands_separator", "cascade", "loan_data", _loans_with(disbursement_amount="1,000.00"), "type.decimal"),
    ("fractional_term", "cascade", "loan_data", _loans_with(term="12.5"), "type.integer"),
    ("percent_apr", "cascade", "loan_data", _loans_with(interest_rate_apr="36"), "le"),
    ("negative_disbursement", "cascade", "loan_data", _loans_with(disbursement_amount="-5.00"), "gt"),
    ("unknown_status", "cascade", "loan_data", _loans_with(loan_status="Paid"), "isin"),
    ("duplicate_loan_id", "cascade", "loan_data", _loans_with(loan_id="L2"), "unique"),
    ("null_customer", "cascade", "loan_data", _loans_with(customer_id=None), "null"),
    ("complete_with_outstanding", "cascade", "loan_data", _loans_with(loan_status="Complete"),
     "closed_loans_have_zero_outstanding"),
    ("current_with_dpd", "cascade", "loan_data", _loans_with(days_past_due="3"), "current_and_complete_have_zero_dpd"),
    ("write_off_without_date", "cascade", "loan_data",
     _loans_with(loan_status="Written Off", outstanding_principal="0.00", write_off_amount="920.00"),
     "write_off_fields_iff_written_off"),
    ("disbursed_after_tape_date", "cascade", "loan_data",
     _loans_with(disbursement_date="2026-03-01", maturity_date="2027-03-01"), "not_after_delivery"),
    ("maturity_before_disbursement", "cascade", "loan_data", _loans_with(maturity_date="2025-12-31"),
     "maturity_after_disbursement"),
    ("outstanding_above_disbursement", "cascade", "loan_data", _loans_with(outstanding_principal="1500.00"),
     "outstanding_not_above_disbursement"),
    ("tpv_below_disbursement", "cascade", "loan_data", _loans_with(tpv="900.00"), "tpv_covers_disbursement"),
    ("lowercase_currency", "cascade", "loan_data", _loans_with(currency="usd"), "pattern"),
    ("sub_cent_amount", "cascade", "loan_data", _loans_with(disbursement_amount="1000.005"), "type.decimal_scale"),
    ("amount_beyond_precision", "cascade", "loan_data", _loans_with(tpv="99999999999999999.00"), "type.decimal_range"),
    ("schedule_total_mismatch", "cascade", "payment_schedule",
     _table_with("payment_schedule", lambda r: [{**r[0], "scheduled_total": "111.00"}, *r[1:]]),
     "total_equals_components"),
    ("payment_total_mismatch", "cascade", "historic_real_payment",
     _table_with("historic_real_payment", lambda r: [{**r[0], "paid_total": "100.00"}]), "total_equals_components"),
    ("duplicate_installment", "cascade", "payment_schedule",
     _table_with("payment_schedule", lambda r: [r[0], {**r[1], "loan_id": "L1"}]), "unique_together"),
    ("payment_for_unknown_loan", "cascade", "historic_real_payment",
     _table_with("historic_real_payment", lambda r: [{**r[0], "loan_id": "L9"}]),
     "relationship.historic_real_payment.loan_id"),
    ("loan_of_unknown_customer", "cascade", "loan_data", _loans_with(customer_id="C9"),
     "relationship.loan_data.customer_id"),
    ("truncated_tape", "cascade", "loan_data", csv_bytes("cascade", "loan_data", tape(FEB)["loan_data"][:2]),
     "completeness"),
    ("collection_dated_elsewhere", "collections", "collections",
     csv_bytes("collections", "collections", [dict(COLLECTION, received_date="2026-02-11")]), "equals_delivery"),
    ("collection_of_zero", "collections", "collections",
     csv_bytes("collections", "collections", [dict(COLLECTION, amount="0.00")]), "gt"),
    ("recovery_flag_yes", "collections", "collections",
     csv_bytes("collections", "collections", [dict(COLLECTION, is_recovery="yes")]), "type.boolean"),
    ("past_due_without_due_date", "delinquency", "delinquency",
     csv_bytes("delinquency", "delinquency", [CURRENT, dict(DELINQUENT, first_unpaid_due_date=None)]),
     "first_unpaid_due_date_when_past_due"),
]


def _place(landing: Path, source: str, table: str, data: bytes) -> Path:
    """Deliver the defective file as the newest version of an existing date."""
    newer = dt.datetime(2026, 3, 1, 12).timestamp()
    if source == "cascade":
        name = CASCADE_FILE_NAMES[table].replace(".csv", " (2).csv")
        return write_file(landing, "cascade", FEB, name, data, mtime=newer)
    day = dt.date(2026, 2, 10) if source == "collections" else FEB
    return write_file(landing, source, day, f"{source}_{day:%Y%m%d}.csv", data, mtime=newer)


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_defect_is_rejected_with_its_rule_quarantined_and_changes_nothing(baseline, case, capsys):
    case_id, source, table, data, rule = case
    landing, data_dir = baseline
    assert len(CORPUS) >= 25
    before = state(data_dir)
    original = None
    if source != "cascade":
        day = dt.date(2026, 2, 10) if source == "collections" else FEB
        target = landing / source / day.isoformat() / f"{source}_{day:%Y%m%d}.csv"
        original = (target, target.read_bytes(), target.stat().st_mtime)
    placed = _place(landing, source, table, data)
    try:
        code = run(landing, data_dir)
        output = capsys.readouterr().out
        assert code == 1, output
        assert "REJECTED" in output and rule in output, output
        digest = hashlib.sha256(data).hexdigest()
        day = placed.parent.name
        quarantined = data_dir / "quarantine" / source / table / day / f"{digest}.csv"
        report = data_dir / "quarantine" / source / table / day / f"{digest}.error.json"
        assert quarantined.read_bytes() == data
        reported = json.loads(report.read_text())
        assert rule in reported["violation_counts"] or rule in reported["delivery_reason"]
        assert state(data_dir) == before
    finally:
        if original:
            path, content, mtime = original
            path.write_bytes(content)
            os.utime(path, (mtime, mtime))
        else:
            placed.unlink()


def test_incomplete_cascade_delivery_is_reported_not_promoted(baseline, capsys):
    landing, data_dir = baseline
    before = state(data_dir)
    march = dt.date(2026, 3, 31)
    write_file(landing, "cascade", march, CASCADE_FILE_NAMES["loan_data"], GOOD_LOANS)
    try:
        assert run(landing, data_dir) == 1
        assert "incomplete: missing Customer Data, Payment Schedule, Historic Real Payment" in capsys.readouterr().out
        assert state(data_dir) == before
    finally:
        (landing / "cascade" / march.isoformat() / CASCADE_FILE_NAMES["loan_data"]).unlink()
        (landing / "cascade" / march.isoformat()).rmdir()


def test_valid_edge_cases_are_accepted(baseline):
    """A BOM, quoted commas and an absent optional column are a valid restatement."""
    landing, data_dir = baseline
    customers = csv_bytes("cascade", "customer_data", [customer("C1", "OC", customer_name="Pérez, Juan"),
                                                       customer("C2", "Gob")], omit=("phone",))
    assert b'"P\xc3\xa9rez, Juan"' in customers and b"Phone" not in customers
    body = customers.decode()
    placed = write_file(landing, "cascade", FEB, CASCADE_FILE_NAMES["customer_data"].replace(".csv", " (3).csv"),
                        b"\xef\xbb\xbf" + body.encode(), mtime=dt.datetime(2026, 3, 2).timestamp())
    try:
        assert run(landing, data_dir) == 0
    finally:
        placed.unlink()
    assert run(landing, data_dir) == 0
