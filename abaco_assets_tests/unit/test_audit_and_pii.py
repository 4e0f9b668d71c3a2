"""The audit trail is append-only and tamper-evident; the PII detector flags undeclared PII offline."""

import json

import polars as pl
import pytest

from abaco_assets.lib.audit import AuditContext, AuditLog
from abaco_assets.lib.pii_detect import scan_text_columns

CTX = AuditContext(principal="analyst@abaco", purpose="month-end close", ticket="RISK-42", run_id="r1")


def test_records_chain_and_who_lists_reads_and_writes(tmp_path):
    log = AuditLog(tmp_path / "audit")
    log.record(CTX, action="write", dataset="raw/cascade/loan_data", partition="2026-01-31", rows=3,
               content_hash="ab" * 32)
    log.record(CTX, action="read", dataset="raw/cascade/loan_data", partition="2026-01-31", content_hash="ab" * 32)
    log.record(CTX, action="write", dataset="marts/kpi_portfolio_monthly", rows=12)
    assert log.verify() == (True, "3 records, chain intact")
    who = log.who("raw/cascade/loan_data")
    assert [(e["action"], e["principal"], e["ticket"]) for e in who] == [
        ("write", "analyst@abaco", "RISK-42"), ("read", "analyst@abaco", "RISK-42")]


def test_a_block_of_records_chains_like_single_records(tmp_path):
    log = AuditLog(tmp_path / "audit")
    log.record(CTX, action="read", dataset="landing/cascade/loan_data")
    block = log.record_many(CTX, [dict(action="write", dataset=f"typed/cascade/t{n}", rows=n) for n in range(3)])
    log.record(CTX, action="write", dataset="marts/kpi_portfolio_monthly")
    assert [entry["prev_hash"] for entry in block[1:]] == [entry["hash"] for entry in block[:-1]]
    assert log.verify() == (True, "5 records, chain intact")
    assert [e["rows"] for e in log.who("typed/cascade/t")] == [0, 1, 2]
    assert log.record_many(CTX, []) == []
    with pytest.raises(ValueError, match="unknown audit action 'erase'"):
        log.record_many(CTX, [dict(action="write", dataset="x"), dict(action="erase", dataset="y")])
    assert log.verify() == (True, "5 records, chain intact")  # nothing of a refused block is written


@pytest.mark.parametrize("tamper", ["edit", "delete", "insert"])
@pytest.mark.parametrize("written", ["one by one", "as a block"])
def test_any_tampering_breaks_the_chain(tmp_path, tamper, written):
    log = AuditLog(tmp_path / "audit")
    if written == "one by one":
        for n in range(4):
            log.record(CTX, action="write", dataset=f"d{n}", rows=n)
    else:
        log.record_many(CTX, [dict(action="write", dataset=f"d{n}", rows=n) for n in range(4)])
    (segment,) = log.segments()
    lines = segment.read_bytes().splitlines(keepends=True)
    if tamper == "edit":
        entry = json.loads(lines[1])
        entry["rows"] = 999
        lines[1] = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode()
    elif tamper == "delete":
        del lines[2]
    else:
        lines.insert(1, lines[0])
    segment.write_bytes(b"".join(lines))
    ok, message = log.verify()
    assert not ok and (":2:" in message or ":3:" in message)


def test_detector_flags_undeclared_pii_without_returning_values():
    frame = pl.DataFrame({
        "industry": ["retail", "contact maria.lopez@gmail.com", None, "agro"],
        "region": ["San Salvador", "La Libertad", "Tel +503 7123-4567", "Santa Ana"],
        "kam_id": ["KAM1", "Jose Martinez", "KAM2", "NIT 0614-150390-101-2"],
        "collateral_type": ["invoice", "vehicle", "invoice", "property"],
    })
    found = {(f.column, f.kind): f.rows for f in scan_text_columns(frame, list(frame.columns))}
    assert found == {("industry", "email"): 1, ("region", "phone"): 1, ("kam_id", "person_name"): 1,
                     ("kam_id", "tax_id"): 1}
    assert "maria" not in str([f.as_record() for f in scan_text_columns(frame, ["industry"])])


def test_ingestion_audits_every_write_and_flags_undeclared_pii(tmp_path):
    import datetime as dt

    from abaco_assets.lib.deliveries import Zones, process_delivery
    from abaco_assets.lib.landing import scan_landing
    from abaco_assets_tests.fixtures.landing_writer import customer, loan, write_tape

    landing = tmp_path / "landing"
    write_tape(landing, dt.date(2026, 1, 31), {
        "loan_data": [loan("L1", "C1")],
        "customer_data": [customer("C1", industry="ask ana.perez@example.com")],
        "payment_schedule": [], "historic_real_payment": []})
    log = AuditLog(tmp_path / "audit")
    records = []
    outcome = process_delivery(scan_landing(landing).files, zones=Zones(tmp_path / "data"), pii_key=b"k",
                               run_id="r", audit=lambda batch: records.extend(log.record_many(CTX, batch)))
    assert outcome.accepted
    assert outcome.pii_findings == [{"table": "customer_data", "column": "industry", "kind": "email", "rows": 1,
                                     "share": 1.0}]
    written = {(r["action"], r["dataset"]) for r in records}
    assert ("write", "raw/cascade/loan_data") in written and ("write", "typed/cascade/customer_data") in written
    assert ("read", "landing/cascade/loan_data") in written
    assert all(r["partition"] == "2026-01-31" and r["content_hash"] for r in records)
    assert log.verify()[0]
