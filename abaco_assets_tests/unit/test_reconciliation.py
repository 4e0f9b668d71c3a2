"""Collections and delinquency vs the Cascade tape: breaks are listed per loan, pending dates are not passes."""

import datetime as dt

from abaco_assets.lib.deliveries import Zones, accepted_dates, process_delivery
from abaco_assets.lib.landing import scan_landing
from abaco_assets.lib.reconciliation import (
    collections_inputs, collections_vs_cascade, delinquency_inputs, delinquency_vs_cascade, reconcile_changed,
)
from abaco_assets.lib.run_plan import in_force_versions
from abaco_assets_tests.fixtures.landing_writer import (
    customer, loan, write_collections, write_delinquency, write_tape,
)

TAPE = dt.date(2026, 1, 31)


def payment(payment_id, loan_id, day, total):
    return dict(payment_id=payment_id, loan_id=loan_id, payment_date=day, paid_principal=total, paid_interest="0",
                paid_fee=None, paid_other=None, paid_tax=None, paid_fee_tax=None, rebates=None, paid_total=total,
                payment_status="Settled")


def collection(payment_id, loan_id, day, amount):
    return dict(payment_id=payment_id, loan_id=loan_id, received_date=day, amount=amount, channel="cash",
                is_recovery="false")


def delinquent(loan_id, dpd):
    return dict(as_of_date=TAPE.isoformat(), loan_id=loan_id, days_past_due=dpd, overdue_principal="0",
                overdue_interest="0", first_unpaid_due_date="2026-01-01" if int(dpd) else None,
                collection_stage="early" if int(dpd) else "none", promise_to_pay_date=None)


def ingest_all(landing, data_dir):
    zones = Zones(data_dir)
    for files in scan_landing(landing).deliveries().values():
        outcome = process_delivery(files, zones=zones, pii_key=b"k", run_id="t")
        assert outcome.accepted, outcome.message
    return zones


def test_breaks_pending_dates_and_dpd_mismatches(tmp_path):
    landing = tmp_path / "landing"
    write_tape(landing, TAPE, {
        "loan_data": [loan("L1", "C1", outstanding_principal="900.00"),
                      loan("L2", "C1", days_past_due="10", loan_status="Delinquent")],
        "customer_data": [customer("C1")],
        "payment_schedule": [],
        "historic_real_payment": [payment("P1", "L1", "2026-01-20", "100.00"), payment("P2", "L2", "2026-01-21", "5.00")],
    })
    write_collections(landing, dt.date(2026, 1, 20), [collection("P1", "L1", "2026-01-20", "100.00")])
    write_collections(landing, dt.date(2026, 1, 21), [])  # header-only, but Cascade says 5.00 arrived
    write_collections(landing, dt.date(2026, 2, 3), [collection("P9", "L1", "2026-02-03", "50.00")])  # no tape yet
    write_delinquency(landing, TAPE, [delinquent("L1", "0"), delinquent("L2", "12"), delinquent("L7", "3")])
    zones = ingest_all(landing, tmp_path / "data")

    cash = collections_vs_cascade(zones.typed.path(""), accepted_dates(zones, "collections"))
    assert (cash.checked_dates, cash.pending_dates) == (2, 1)
    assert cash.breaks.select("date", "loan_id", "difference").rows() == [(dt.date(2026, 1, 21), "L2", -5.0)]
    assert not cash.passed and "1 loan breaks on 1 of 2 dates" in cash.summary()

    dpd = delinquency_vs_cascade(zones.typed.path(""), accepted_dates(zones, "delinquency"))
    assert dpd.breaks.select("loan_id", "cascade_dpd", "delinquency_dpd", "issue").rows() == [
        ("L2", 10, 12, "days_past_due differs"), ("L7", None, 3, "not active in the tape")]


def test_a_consistent_day_reconciles(tmp_path):
    landing = tmp_path / "landing"
    write_tape(landing, TAPE, {"loan_data": [loan("L1", "C1", outstanding_principal="900.00")],
                               "customer_data": [customer("C1")], "payment_schedule": [],
                               "historic_real_payment": [payment("P1", "L1", "2026-01-20", "100.00")]})
    write_collections(landing, dt.date(2026, 1, 20), [collection("P1", "L1", "2026-01-20", "100.00")])
    write_delinquency(landing, TAPE, [delinquent("L1", "0")])
    zones = ingest_all(landing, tmp_path / "data")
    assert collections_vs_cascade(zones.typed.path(""), accepted_dates(zones, "collections")).passed
    assert delinquency_vs_cascade(zones.typed.path(""), accepted_dates(zones, "delinquency")).passed


def test_only_dates_whose_deliveries_changed_are_compared_again(tmp_path):
    landing = tmp_path / "landing"
    write_tape(landing, TAPE, {
        "loan_data": [loan("L1", "C1", outstanding_principal="900.00")], "customer_data": [customer("C1")],
        "payment_schedule": [],
        "historic_real_payment": [payment("P1", "L1", "2026-01-20", "100.00"), payment("P2", "L1", "2026-01-21", "5.00")],
    })
    write_collections(landing, dt.date(2026, 1, 20), [collection("P1", "L1", "2026-01-20", "100.00")])
    write_collections(landing, dt.date(2026, 1, 21), [])  # breaks: Cascade says 5.00 arrived
    write_collections(landing, dt.date(2026, 2, 3), [collection("P9", "L1", "2026-02-03", "50.00")])  # no tape yet
    write_delinquency(landing, TAPE, [delinquent("L1", "0")])
    zones = ingest_all(landing, tmp_path / "data")
    root, in_force = zones.typed.path(""), in_force_versions(zones)
    compared = []

    def spy(typed_root, days):
        compared.append(days)
        return collections_vs_cascade(typed_root, days)

    inputs = collections_inputs(in_force)
    assert inputs[dt.date(2026, 2, 3)] is None  # nothing covers it yet
    first, ledger = reconcile_changed(spy, root, inputs, {})
    assert (first.checked_dates, first.pending_dates, first.unchanged_dates) == (2, 1, 0) and not first.passed
    assert set(ledger["dates"]) == {"2026-01-20"}  # only the clean date is remembered
    second, ledger = reconcile_changed(spy, root, inputs, ledger)
    assert compared[-1] == [dt.date(2026, 1, 21), dt.date(2026, 2, 3)]  # the break and the pending date again
    assert (second.checked_dates, second.pending_dates, second.unchanged_dates) == (2, 1, 1)
    assert second.breaks.rows() == first.breaks.rows() and "1 loan breaks on 1 of 2 dates" in second.summary()
    # a restated collections file, or another tape version, changes the inputs: compared again
    restated = {**in_force, "collections": {**in_force["collections"], "2026-01-20": "restated"}}
    reconcile_changed(spy, root, collections_inputs(restated), ledger)
    assert dt.date(2026, 1, 20) in compared[-1]
    # the code changed: every date again
    reconcile_changed(spy, root, inputs, {**ledger, "code": "an older reconciliation"})
    assert compared[-1] == sorted(inputs)

    dpd_inputs = delinquency_inputs(in_force)
    assert list(dpd_inputs) == [TAPE]
    dpd, dpd_ledger = reconcile_changed(delinquency_vs_cascade, root, dpd_inputs, {})
    assert dpd.passed and dpd.checked_dates == 1
    again, _ = reconcile_changed(delinquency_vs_cascade, root, dpd_inputs, dpd_ledger)
    assert again.passed and (again.checked_dates, again.unchanged_dates) == (1, 1)
