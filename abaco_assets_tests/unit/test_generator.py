"""The sample landing zone must obey every rule of spec/feeds.md, per file and across files.

The headers below are copied from feeds.md on purpose (not imported from the generator),
so a drift between the spec and the generator fails here.
"""

from __future__ import annotations

import re
import zipfile
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from abaco_assets.lib.generator import (
    GenerationSummary,
    GeneratorRates,
    delivery_mtime,
    generate_landing,
    tape_dates_for,
)

LOANS, MONTHS, SEED = 2_000, 12, 7
END = date(2026, 10, 31)
FIRST_DAY = date(2025, 11, 1)

TAPE_FILES = {
    "Loan Data": "Abaco - Loan Tape_Loan Data_Table.csv",
    "Customer Data": "Abaco - Loan Tape_Customer Data_Table.csv",
    "Payment Schedule": "Abaco - Loan Tape_Payment Schedule_Table.csv",
    "Historic Real Payment": "Abaco - Loan Tape_Historic Real Payment_Table.csv",
    "Collateral": "Abaco - Loan Tape_Collateral_Table.csv",
}
SPEC_HEADERS = {
    "Loan Data": [
        "Loan ID", "Customer ID", "Product Type", "Disbursement Date", "Disbursement Amount", "TPV",
        "Loan Currency", "Interest Rate APR", "Origination Fee", "Origination Fee Taxes", "Term",
        "Term Unit", "Payment Frequency", "Maturity Date", "Outstanding Loan Value", "Days in Default",
        "Loan Status", "Write Off Date", "Write Off Amount",
    ],
    "Customer Data": [
        "Customer ID", "Cliente", "Tax ID", "Email", "Phone", "Segment", "Industry", "Region",
        "Sales Agent", "Legal Type",
    ],
    "Payment Schedule": [
        "Loan ID", "Installment Number", "Due Date", "Principal Payment", "Interest Payment",
        "Fee Payment", "Other Payment", "Total Payment",
    ],
    "Historic Real Payment": [
        "Payment ID", "Loan ID", "True Payment Date", "True Principal Payment", "True Interest Payment",
        "True Fee Payment", "True Other Payment", "True Tax Payment", "True Fee Tax Payment",
        "True Rabates", "True Total Payment", "True Payment Status",
    ],
    "Collateral": ["Loan ID", "Collateral Type", "Collateral Current"],
    "collections": ["payment_id", "loan_id", "received_date", "amount", "channel", "is_recovery"],
    "delinquency": [
        "as_of_date", "loan_id", "days_past_due", "overdue_principal", "overdue_interest",
        "first_unpaid_due_date", "collection_stage", "promise_to_pay_date",
    ],
}
MONEY = {
    "Loan Data": ["Disbursement Amount", "TPV", "Origination Fee", "Origination Fee Taxes",
                  "Outstanding Loan Value", "Write Off Amount"],
    "Payment Schedule": ["Principal Payment", "Interest Payment", "Fee Payment", "Other Payment", "Total Payment"],
    "Historic Real Payment": ["True Principal Payment", "True Interest Payment", "True Fee Payment",
                              "True Other Payment", "True Tax Payment", "True Fee Tax Payment", "True Rabates",
                              "True Total Payment"],
    "Collateral": ["Collateral Current"],
    "collections": ["amount"],
    "delinquency": ["overdue_principal", "overdue_interest"],
}
DATES = {
    "Loan Data": ["Disbursement Date", "Maturity Date", "Write Off Date"],
    "Payment Schedule": ["Due Date"],
    "Historic Real Payment": ["True Payment Date"],
    "collections": ["received_date"],
    "delinquency": ["as_of_date", "first_unpaid_due_date", "promise_to_pay_date"],
}
INTEGERS = {
    "Loan Data": ["Term", "Days in Default"],
    "Payment Schedule": ["Installment Number"],
    "delinquency": ["days_past_due"],
}
SEGMENTS = {"Gob", "OC", "CCF", "DTE", "Nimal", "Top", "Other"}
CLOSED = ["Complete", "Written Off"]


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _read(path: Path, table: str) -> pl.DataFrame:
    """Typed read: money to integer cents, dates to Date, as a contract would."""
    frame = pl.read_csv(path, infer_schema=False)
    return frame.with_columns(
        *[(pl.col(c).cast(pl.Float64) * 100).round().cast(pl.Int64) for c in MONEY.get(table, [])],
        *[pl.col(c).str.to_date("%Y-%m-%d") for c in DATES.get(table, [])],
        *[pl.col(c).cast(pl.Int64) for c in INTEGERS.get(table, [])],
        *([pl.col("is_recovery").replace_strict({"true": True, "false": False})] if table == "collections" else []),
    )


def _snapshot(root: Path) -> dict[str, tuple[bytes, float]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    out = tmp_path_factory.mktemp("landing")
    return out, generate_landing(out, LOANS, MONTHS, SEED, end_date=END)


@pytest.fixture(scope="module")
def tape_dates() -> list[date]:
    return tape_dates_for(END, MONTHS)


@pytest.fixture(scope="module")
def tapes(landing, tape_dates) -> dict[date, dict[str, pl.DataFrame]]:
    root, _ = landing
    out = {}
    for tape in tape_dates:
        folder = root / "cascade" / tape.isoformat()
        out[tape] = {table: _read(folder / name, table) for table, name in TAPE_FILES.items()}
    return out


@pytest.fixture(scope="module")
def collections(landing) -> pl.DataFrame:
    root, _ = landing
    frames = [
        _read(root / "collections" / d.isoformat() / f"collections_{d:%Y%m%d}.csv", "collections").with_columns(
            file_date=pl.lit(d)
        )
        for d in _days(FIRST_DAY, END)
    ]
    return pl.concat(frames)


@pytest.fixture(scope="module")
def delinquency(landing) -> pl.DataFrame:
    root, _ = landing
    frames = [
        _read(root / "delinquency" / d.isoformat() / f"delinquency_{d:%Y%m%d}.csv", "delinquency").with_columns(
            file_date=pl.lit(d)
        )
        for d in _days(FIRST_DAY, END)
    ]
    return pl.concat(frames)


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two runs with identical arguments, to prove byte-for-byte determinism."""
    a, b = tmp_path_factory.mktemp("small_a"), tmp_path_factory.mktemp("small_b")
    for out in (a, b):
        generate_landing(out, 300, 3, 11, end_date=END)
    return a, b


def _last(tapes) -> dict[str, pl.DataFrame]:
    return tapes[max(tapes)]


def _active(loan_data: pl.DataFrame) -> pl.DataFrame:
    return loan_data.filter(~pl.col("Loan Status").is_in(CLOSED) & (pl.col("Outstanding Loan Value") > 0))


# --------------------------------------------------------------------------- layout and format


def test_tree_has_one_tape_per_month_end_and_daily_feeds(landing, tape_dates):
    root, summary = landing
    assert sorted(p.name for p in root.iterdir()) == ["cascade", "collections", "delinquency"]
    assert tape_dates[0] == date(2025, 11, 30) and tape_dates[-1] == END and len(tape_dates) == MONTHS
    assert sorted(p.name for p in (root / "cascade").iterdir()) == [t.isoformat() for t in tape_dates]
    for tape in tape_dates:
        assert sorted(p.name for p in (root / "cascade" / tape.isoformat()).iterdir()) == sorted(TAPE_FILES.values())
    every_day = _days(FIRST_DAY, END)
    for source in ("collections", "delinquency"):
        assert sorted(p.name for p in (root / source).iterdir()) == [d.isoformat() for d in every_day]
        for d in every_day:
            assert [p.name for p in (root / source / d.isoformat()).iterdir()] == [f"{source}_{d:%Y%m%d}.csv"]
    assert summary.tapes == MONTHS and summary.collections_files == summary.delinquency_files == len(every_day)
    assert summary.files_written == MONTHS * 5 + 2 * len(every_day)
    assert summary.bytes_written == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_headers_and_value_formats_follow_feeds_md(landing, tape_dates):
    root, _ = landing
    files = {table: root / "cascade" / tape_dates[-1].isoformat() / name for table, name in TAPE_FILES.items()}
    files["collections"] = root / "collections" / "2026-10-30" / "collections_20261030.csv"
    files["delinquency"] = root / "delinquency" / "2026-10-30" / "delinquency_20261030.csv"
    for table, path in files.items():
        raw = path.read_bytes()
        raw.decode("utf-8")
        assert raw.split(b"\n", 1)[0].decode() == ",".join(SPEC_HEADERS[table]), table
        text = pl.read_csv(path, infer_schema=False)
        assert text.height > 0, table
        for column in MONEY.get(table, []):
            values = text.get_column(column).drop_nulls()
            assert values.str.contains(r"^\d+\.\d{2}$").all(), (table, column)
        for column in DATES.get(table, []):
            values = text.get_column(column).drop_nulls()
            assert values.str.contains(r"^\d{4}-\d{2}-\d{2}$").all(), (table, column)
    loan_data = pl.read_csv(files["Loan Data"], infer_schema=False)
    assert loan_data["Interest Rate APR"].str.contains(r"^[01]\.\d{4}$").all()
    collections = pl.read_csv(files["collections"], infer_schema=False)
    assert collections["is_recovery"].is_in(["true", "false"]).all()


def test_header_only_collections_file_when_no_cash(landing):
    root, _ = landing
    sizes = {p: p.stat().st_size for p in (root / "collections").rglob("*.csv")}
    header = (",".join(SPEC_HEADERS["collections"]) + "\n").encode()
    empty = [p for p, size in sizes.items() if size == len(header)]
    assert empty, "some day (a Sunday) should have no cash"
    assert all(p.read_bytes() == header for p in empty)


def test_files_carry_the_deterministic_delivery_mtime(landing):
    root, _ = landing
    for path in root.rglob("*.csv"):
        as_of = date.fromisoformat(path.parent.name)
        assert path.stat().st_mtime == delivery_mtime(as_of), path


# --------------------------------------------------------------------------- determinism and options


def test_same_seed_gives_identical_bytes_and_mtimes(small_pair):
    a, b = small_pair
    snap_a, snap_b = _snapshot(a), _snapshot(b)
    assert snap_a.keys() == snap_b.keys() and len(snap_a) > 0
    assert snap_a == snap_b


def test_different_seed_gives_different_data(small_pair, tmp_path):
    a, _ = small_pair
    generate_landing(tmp_path, 300, 3, 12, end_date=END)
    name = f"cascade/{END.isoformat()}/{TAPE_FILES['Loan Data']}"
    assert (a / name).read_bytes() != (tmp_path / name).read_bytes()


def test_zip_tapes_hold_the_same_csvs(small_pair, tmp_path):
    a, _ = small_pair
    summary = generate_landing(tmp_path, 300, 3, 11, end_date=END, zip_tapes=True)
    for tape in summary.tape_dates:
        folder = tmp_path / "cascade" / tape.isoformat()
        assert [p.name for p in folder.iterdir()] == [f"Abaco - Loan Tape_{tape.isoformat()}.zip"]
        with zipfile.ZipFile(folder / f"Abaco - Loan Tape_{tape.isoformat()}.zip") as archive:
            assert sorted(archive.namelist()) == sorted(TAPE_FILES.values())
            for name in TAPE_FILES.values():
                assert archive.read(name) == (a / "cascade" / tape.isoformat() / name).read_bytes()
    again = tmp_path / "again"
    generate_landing(again, 300, 3, 11, end_date=END, zip_tapes=True)
    assert _snapshot(again) == {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith("again")}


def test_month_end_cadence_writes_delinquency_only_on_tape_dates(small_pair, tmp_path):
    a, _ = small_pair
    summary = generate_landing(tmp_path, 300, 3, 11, end_date=END, delinquency_cadence="month-end")
    folders = sorted(p.name for p in (tmp_path / "delinquency").iterdir())
    assert folders == [t.isoformat() for t in summary.tape_dates]
    for tape in summary.tape_dates:
        name = f"delinquency/{tape.isoformat()}/delinquency_{tape:%Y%m%d}.csv"
        assert (tmp_path / name).read_bytes() == (a / name).read_bytes()
    assert len(list((tmp_path / "collections").iterdir())) == len(list((a / "collections").iterdir()))


def test_mid_month_end_date_caps_every_date(tmp_path):
    end = date(2026, 10, 15)
    assert tape_dates_for(end, 3) == [date(2026, 8, 31), date(2026, 9, 30), end]
    summary = generate_landing(tmp_path, 200, 3, 3, end_date=end)
    folder = tmp_path / "cascade" / end.isoformat()
    loans = _read(folder / TAPE_FILES["Loan Data"], "Loan Data")
    payments = _read(folder / TAPE_FILES["Historic Real Payment"], "Historic Real Payment")
    assert loans["Disbursement Date"].max() <= end and payments["True Payment Date"].max() <= end
    assert max(p.name for p in (tmp_path / "collections").iterdir()) == end.isoformat()
    assert summary.tape_dates[-1] == end


def test_rates_are_validated():
    with pytest.raises(ValueError):
        GeneratorRates(reversal_rate=1.5)
    with pytest.raises(ValueError):
        GeneratorRates(cure_rate=0.8, partial_payment_rate=0.5)
    with pytest.raises(ValueError):
        GeneratorRates(max_payment_lag_days=7)


def _last_tape(root: Path, summary: GenerationSummary) -> dict[str, pl.DataFrame]:
    folder = root / "cascade" / summary.tape_dates[-1].isoformat()
    return {table: _read(folder / name, table) for table, name in TAPE_FILES.items()}


def test_rates_change_the_book(tmp_path):
    def run(name: str, **rates) -> tuple[GenerationSummary, dict[str, pl.DataFrame]]:
        out = tmp_path / name
        summary = generate_landing(
            out, 800, 6, 5, end_date=END, rates=GeneratorRates(**rates), delinquency_cadence="month-end"
        )
        return summary, _last_tape(out, summary)

    def delinquent_share(tape: dict[str, pl.DataFrame]) -> float:
        active = _active(tape["Loan Data"])
        late = active.filter(pl.col("Days in Default") > 0)["Outstanding Loan Value"].sum()
        return late / active["Outstanding Loan Value"].sum()

    calm, calm_tape = run("calm", delinquency_rate=0.01, reversal_rate=0.0, prepayment_rate=0.0, recovery_rate=0.0)
    assert calm.reversals == calm.prepayments == calm.recoveries == 0
    assert calm_tape["Historic Real Payment"]["True Payment Status"].unique().to_list() == ["Settled"]
    stressed, stressed_tape = run("stressed", delinquency_rate=0.15, reversal_rate=0.2, factoring_share=1.0,
                                  credit_line_share=0.0)
    assert delinquent_share(stressed_tape) > 2 * delinquent_share(calm_tape)
    assert stressed.reversals > 0
    assert stressed_tape["Loan Data"]["Product Type"].unique().to_list() == ["factoring"]
    fast_writeoff, _ = run("fast_writeoff", writeoff_dpd=60, delinquency_rate=0.1)
    assert fast_writeoff.write_offs > stressed.write_offs > 0


# --------------------------------------------------------------------------- every case occurs


def test_every_case_occurs_at_demo_scale(landing, tapes, collections, delinquency):
    _, summary = landing
    last = _last(tapes)
    loans, customers, payments = last["Loan Data"], last["Customer Data"], last["Historic Real Payment"]
    assert loans.height == LOANS and summary.loans == LOANS
    assert set(loans["Loan Status"]) == {"Current", "Delinquent", "Default", "Complete", "Written Off"}
    assert set(loans["Product Type"]) == {"factoring", "term_loan", "credit_line"}
    assert set(loans["Payment Frequency"]) == {"bullet", "monthly", "biweekly", "weekly"}
    assert set(customers["Segment"]) == SEGMENTS
    assert set(customers["Legal Type"]) == {"company", "individual", "government"}
    # DPD buckets of kpis.md among active loans of the last tape
    dpd = _active(loans)["Days in Default"]
    for low, high in [(0, 0), (1, 29), (30, 59), (60, 89), (90, 179), (180, 10**6)]:
        assert ((dpd >= low) & (dpd <= high)).sum() > 0, (low, high)
    # events
    assert (payments["True Payment Status"] == "Reversed").sum() == summary.reversals > 0
    assert (loans["Loan Status"] == "Written Off").sum() == summary.write_offs > 0
    recoveries = collections.filter(pl.col("is_recovery"))
    assert recoveries.height > 0
    # prepayment: a Complete term loan whose last settled payment came before maturity
    last_paid = payments.filter(pl.col("True Payment Status") == "Settled").group_by("Loan ID").agg(
        pl.col("True Payment Date").max().alias("last_paid")
    )
    prepaid = loans.join(last_paid, on="Loan ID").filter(
        (pl.col("Loan Status") == "Complete") & (pl.col("last_paid") < pl.col("Maturity Date"))
    )
    assert prepaid.height > 0 and summary.prepayments > 0
    assert (payments["True Rabates"] > 0).any() and (payments["True Fee Payment"] > 0).any()
    assert (payments["True Tax Payment"] > 0).any() and (payments["True Fee Tax Payment"] > 0).any()
    assert (payments["True Other Payment"] > 0).any()
    # customers: repeat business, both products, concentration
    per_customer = loans.group_by("Customer ID").agg(
        pl.len().alias("loans"), pl.col("Product Type").n_unique().alias("products")
    )
    assert (per_customer["loans"] > 1).any() and (per_customer["products"] > 1).any()
    active = _active(loans)
    exposure = active.group_by("Customer ID").agg(pl.col("Outstanding Loan Value").sum()).sort(
        "Outstanding Loan Value", descending=True
    )
    top10 = exposure.head(10)["Outstanding Loan Value"].sum() / active["Outstanding Loan Value"].sum()
    assert 0.05 < top10 < 0.6
    # optional columns are sometimes empty
    for column in ["Email", "Phone", "Industry", "Region", "Sales Agent"]:
        assert customers[column].null_count() > 0, column
    assert loans.filter(pl.col("Product Type") == "term_loan")["TPV"].null_count() > 0
    assert loans.filter(pl.col("Product Type") == "factoring")["TPV"].null_count() == 0
    assert last["Collateral"].height > 0
    # servicing feed
    assert set(delinquency["collection_stage"]) == {"none", "early", "late", "legal", "agency"}
    assert delinquency["promise_to_pay_date"].null_count() < delinquency.height
    assert set(collections["channel"]) == {"bank_transfer", "cash", "card", "direct_debit", "agency"}


def test_summary_matches_the_files(landing, tapes):
    _, summary = landing
    last = _last(tapes)
    loans = last["Loan Data"]
    assert summary.customers == last["Customer Data"].height
    assert summary.installments == last["Payment Schedule"].height
    assert summary.completed_loans == (loans["Loan Status"] == "Complete").sum()
    assert summary.loans_by_product == {
        p: int((loans["Product Type"] == p).sum()) for p in ["factoring", "term_loan", "credit_line"]
    }
    segments = loans.join(last["Customer Data"], on="Customer ID")["Segment"]
    assert summary.loans_by_segment == {s: int((segments == s).sum()) for s in summary.loans_by_segment}
    dpd = _active(loans)["Days in Default"]
    buckets = summary.dpd_buckets_last_tape
    assert buckets["current"] == (dpd == 0).sum() and buckets["180+"] == (dpd >= 180).sum()
    assert sum(buckets.values()) == LOANS
    assert summary.opb_last_tape == pytest.approx(_active(loans)["Outstanding Loan Value"].sum() / 100)


# --------------------------------------------------------------------------- per-file rules


def test_loan_data_rules_hold_on_every_tape(tapes):
    for tape, tables in tapes.items():
        loans = tables["Loan Data"]
        assert loans["Loan ID"].is_unique().all()
        assert loans["Customer ID"].is_in(tables["Customer Data"]["Customer ID"].implode()).all()
        assert (loans["Disbursement Date"] <= tape).all() and (loans["Disbursement Amount"] > 0).all()
        assert loans.filter(pl.col("TPV") < pl.col("Disbursement Amount")).height == 0
        assert (loans["Loan Currency"] == "USD").all()
        apr = loans["Interest Rate APR"].cast(pl.Float64)
        assert ((apr > 0) & (apr <= 2)).all()
        assert ((loans["Origination Fee"] >= 0) & (loans["Origination Fee Taxes"] >= 0)).all()
        assert (loans["Term"] > 0).all()
        assert (loans["Maturity Date"] > loans["Disbursement Date"]).all()
        outstanding, dpd, status = loans["Outstanding Loan Value"], loans["Days in Default"], loans["Loan Status"]
        assert ((outstanding >= 0) & (outstanding <= loans["Disbursement Amount"])).all()
        assert (outstanding.filter(status.is_in(CLOSED)) == 0).all()
        assert (dpd.filter(status.is_in(["Current", "Complete"])) == 0).all()
        delinquent = dpd.filter(status == "Delinquent")
        assert ((delinquent >= 1) & (delinquent <= 89)).all()
        assert (dpd.filter(status == "Default") >= 90).all()
        assert (outstanding.filter(status.is_in(["Current", "Delinquent", "Default"])) > 0).all()
        written_off = loans.filter(status == "Written Off")
        others = loans.filter(status != "Written Off")
        assert written_off["Write Off Date"].null_count() == 0 and (written_off["Write Off Amount"] > 0).all()
        assert (written_off["Write Off Date"] <= tape).all()
        assert others["Write Off Date"].null_count() == others.height == others["Write Off Amount"].null_count()
        factoring = loans.filter(pl.col("Product Type") == "factoring")
        assert (factoring["Payment Frequency"] == "bullet").all() and (factoring["Term Unit"] == "days").all()
        assert factoring["Term"].is_between(30, 120).all()
        term = loans.filter(pl.col("Product Type") == "term_loan")
        assert term["Payment Frequency"].is_in(["monthly", "biweekly", "weekly"]).all()
        assert (term["Term Unit"] == "months").all() and term["Term"].is_between(3, 24).all()


def test_customer_and_collateral_rules(tapes):
    for tables in tapes.values():
        customers, loans = tables["Customer Data"], tables["Loan Data"]
        assert customers["Customer ID"].is_unique().all()
        # the customer table is exactly the customers the tape's loans reference
        assert set(customers["Customer ID"]) == set(loans["Customer ID"])
        assert customers["Cliente"].null_count() == customers["Tax ID"].null_count() == 0
        assert customers["Segment"].is_in(list(SEGMENTS)).all()
        assert customers["Legal Type"].is_in(["company", "individual", "government"]).all()
        collateral = tables["Collateral"]
        assert collateral["Loan ID"].is_in(loans["Loan ID"].implode()).all()
        assert collateral["Collateral Type"].null_count() == 0 and (collateral["Collateral Current"] >= 0).all()
    customers = customers.filter(pl.col("Email").is_not_null() & pl.col("Phone").is_not_null())
    assert customers["Tax ID"].str.contains(r"^\d{4}-\d{6}-\d{3}-\d$").all()
    assert customers["Phone"].str.contains(r"^\+503 [267]\d{3}-\d{4}$").all()
    assert customers["Email"].str.contains(r"^[a-z0-9.]+@[a-z0-9.]+\.[a-z]{2,}$").all()
    assert customers["Tax ID"].is_unique().mean() > 0.99


def test_payment_rows_price_correctly(tapes):
    for tape, tables in tapes.items():
        payments, loans = tables["Historic Real Payment"], tables["Loan Data"]
        assert payments["Payment ID"].is_unique().all()
        assert payments["Loan ID"].is_in(loans["Loan ID"].implode()).all()
        assert (payments["True Payment Date"] <= tape).all()
        assert payments["True Payment Status"].is_in(["Settled", "Reversed"]).all()
        parts = MONEY["Historic Real Payment"][:-2]
        assert all((payments[c] >= 0).all() for c in MONEY["Historic Real Payment"])
        total = payments.select(pl.sum_horizontal(parts) - pl.col("True Rabates")).to_series()
        assert (total == payments["True Total Payment"]).all()
        assert (payments["True Total Payment"] > 0).all()
        dated = payments.join(loans.select("Loan ID", "Disbursement Date"), on="Loan ID")
        assert (dated["True Payment Date"] > dated["Disbursement Date"]).all()


def test_schedule_rules(tapes):
    for tables in tapes.values():
        schedule, loans = tables["Payment Schedule"], tables["Loan Data"]
        assert schedule.select("Loan ID", "Installment Number").is_unique().all()
        parts = ["Principal Payment", "Interest Payment", "Fee Payment", "Other Payment"]
        assert (schedule.select(pl.sum_horizontal(parts)).to_series() == schedule["Total Payment"]).all()
        per_loan = schedule.group_by("Loan ID").agg(
            pl.len().alias("n"),
            pl.col("Installment Number").max().alias("max_no"),
            pl.col("Principal Payment").sum().alias("principal"),
            pl.col("Due Date").max().alias("last_due"),
        )
        joined = loans.join(per_loan, on="Loan ID", how="left")
        assert joined["n"].null_count() == 0  # every loan has its full schedule
        assert (joined["n"] == joined["max_no"]).all()
        assert (joined["principal"] == joined["Disbursement Amount"]).all()
        assert (joined["last_due"] == joined["Maturity Date"]).all()
        assert (joined.filter(pl.col("Product Type") == "factoring")["n"] == 1).all()
    # level payments: principal + interest constant within two cents on amortising loans
    term = loans.filter(pl.col("Product Type") == "term_loan").select("Loan ID")
    level = schedule.join(term, on="Loan ID").group_by("Loan ID").agg(
        (pl.col("Principal Payment") + pl.col("Interest Payment")).alias("pi")
    ).with_columns(spread=pl.col("pi").list.max() - pl.col("pi").list.min())
    assert (level["spread"] <= 2).all()


# --------------------------------------------------------------------------- cross-tape rules


def test_tapes_are_consistent_over_time(tapes):
    static = ["Customer ID", "Product Type", "Disbursement Date", "Disbursement Amount", "TPV", "Loan Currency",
              "Interest Rate APR", "Origination Fee", "Origination Fee Taxes", "Term", "Term Unit",
              "Payment Frequency", "Maturity Date"]
    dates = sorted(tapes)
    for before, after in zip(dates, dates[1:]):
        old, new = tapes[before], tapes[after]
        joined = old["Loan Data"].join(new["Loan Data"], on="Loan ID", how="left", suffix="_new")
        assert joined["Loan Status_new"].null_count() == 0  # every loan stays in the book
        for column in static:
            assert joined[column].equals(joined[f"{column}_new"]), column
        assert (joined["Outstanding Loan Value_new"] <= joined["Outstanding Loan Value"]).all()
        closed = joined.filter(pl.col("Loan Status").is_in(CLOSED))
        assert closed["Loan Status"].equals(closed["Loan Status_new"])
        wo = closed.filter(pl.col("Loan Status") == "Written Off")
        assert wo["Write Off Date"].equals(wo["Write Off Date_new"])
        assert wo["Write Off Amount"].equals(wo["Write Off Amount_new"])
        # payments: full history, stable ids and values
        old_pay = old["Historic Real Payment"]
        new_pay = new["Historic Real Payment"]
        assert new_pay.filter(pl.col("True Payment Date") <= before).equals(old_pay)
        old_sched = old["Payment Schedule"]
        assert new["Payment Schedule"].head(old_sched.height).equals(old_sched)


def test_opb_roll_forward_is_exact(tapes):
    dates = sorted(tapes)
    for before, after in zip(dates, dates[1:]):
        old, new = tapes[before]["Loan Data"], tapes[after]["Loan Data"]
        payments = tapes[after]["Historic Real Payment"]
        opb_old = _active(old)["Outstanding Loan Value"].sum()
        opb_new = _active(new)["Outstanding Loan Value"].sum()
        disbursed = new.filter(pl.col("Disbursement Date") > before)["Disbursement Amount"].sum()
        paid = (
            payments.filter(
                (pl.col("True Payment Status") == "Settled")
                & (pl.col("True Payment Date") > before)
                & (pl.col("True Payment Date") <= after)
            )
            .join(new.select("Loan ID", "Write Off Date"), on="Loan ID")
            .filter(pl.col("Write Off Date").is_null() | (pl.col("True Payment Date") < pl.col("Write Off Date")))
        )["True Principal Payment"].sum()
        written_off = new.filter(
            (pl.col("Write Off Date") > before) & (pl.col("Write Off Date") <= after)
        )["Write Off Amount"].sum()
        assert opb_old + disbursed - paid - written_off == opb_new, after


def test_outstanding_is_disbursed_minus_settled_principal(tapes):
    for tables in tapes.values():
        loans, payments = tables["Loan Data"], tables["Historic Real Payment"]
        settled = payments.filter(pl.col("True Payment Status") == "Settled").join(
            loans.select("Loan ID", "Write Off Date"), on="Loan ID"
        )
        before_wo = settled.filter(
            pl.col("Write Off Date").is_null() | (pl.col("True Payment Date") < pl.col("Write Off Date"))
        )
        after_wo = settled.filter(pl.col("True Payment Date") >= pl.col("Write Off Date"))
        assert (after_wo["True Payment Date"] > after_wo["Write Off Date"]).all()  # recoveries strictly after
        repaid = before_wo.group_by("Loan ID").agg(pl.col("True Principal Payment").sum().alias("repaid"))
        book = loans.join(repaid, on="Loan ID", how="left").with_columns(pl.col("repaid").fill_null(0))
        remaining = book["Disbursement Amount"] - book["repaid"]
        status = book["Loan Status"]
        assert (remaining.filter(status == "Complete") == 0).all()
        is_wo = status == "Written Off"
        assert remaining.filter(is_wo).equals(book["Write Off Amount"].filter(is_wo), check_names=False)
        open_ = ~status.is_in(CLOSED)
        assert remaining.filter(open_).equals(book["Outstanding Loan Value"].filter(open_), check_names=False)
        recovered = after_wo.group_by("Loan ID").agg(pl.col("True Total Payment").sum().alias("recovered"))
        capped = recovered.join(loans.select("Loan ID", "Write Off Amount"), on="Loan ID")
        assert (capped["recovered"] <= capped["Write Off Amount"]).all()


# --------------------------------------------------------------------------- collections and delinquency


def test_collections_reconcile_with_the_covering_tape(collections, tapes, tape_dates):
    assert (collections["received_date"] == collections["file_date"]).all()
    assert collections["payment_id"].is_unique().all() and (collections["amount"] > 0).all()
    cover = pl.DataFrame({"file_date": _days(FIRST_DAY, END)}).with_columns(
        tape=pl.col("file_date").map_elements(lambda d: min(t for t in tape_dates if t >= d), return_dtype=pl.Date)
    )
    for tape in tape_dates:
        days = cover.filter(pl.col("tape") == tape)["file_date"]
        cash = collections.filter(pl.col("file_date").is_in(days.implode()))
        loans = tapes[tape]["Loan Data"].select("Loan ID", "Write Off Date")
        settled = (
            tapes[tape]["Historic Real Payment"]
            .filter((pl.col("True Payment Status") == "Settled") & pl.col("True Payment Date").is_in(days.implode()))
            .join(loans, on="Loan ID")
        )
        matched = settled.join(cash, left_on="Payment ID", right_on="payment_id", how="full")
        assert matched["Payment ID"].null_count() == 0 and matched["payment_id"].null_count() == 0
        assert (matched["Loan ID"] == matched["loan_id"]).all()
        assert (matched["True Total Payment"] == matched["amount"]).all()
        assert (matched["True Payment Date"] == matched["received_date"]).all()
        after_wo = matched["Write Off Date"].is_not_null() & (matched["True Payment Date"] > matched["Write Off Date"])
        assert (matched["is_recovery"] == after_wo).all()
        per_day_cash = cash.group_by("file_date").agg(pl.col("amount").sum())
        per_day_tape = settled.group_by("True Payment Date").agg(pl.col("True Total Payment").sum())
        both = per_day_cash.join(per_day_tape, left_on="file_date", right_on="True Payment Date", how="full")
        assert (both["amount"] == both["True Total Payment"]).all()
    reversed_ids = _last(tapes)["Historic Real Payment"].filter(pl.col("True Payment Status") == "Reversed")
    assert not collections["payment_id"].is_in(reversed_ids["Payment ID"].implode()).any()


def test_delinquency_equals_tape_on_tape_dates(delinquency, tapes):
    for tape, tables in tapes.items():
        feed = delinquency.filter(pl.col("file_date") == tape)
        active = _active(tables["Loan Data"])
        joined = active.join(feed, left_on="Loan ID", right_on="loan_id", how="full")
        assert joined["Loan ID"].null_count() == 0 and joined["loan_id"].null_count() == 0, tape
        assert (joined["Days in Default"] == joined["days_past_due"]).all(), tape


def test_delinquency_rows_are_well_formed(delinquency):
    feed = delinquency
    assert (feed["as_of_date"] == feed["file_date"]).all()
    assert feed.select("file_date", "loan_id").is_unique().all()
    late = feed.filter(pl.col("days_past_due") > 0)
    on_time = feed.filter(pl.col("days_past_due") == 0)
    assert late["first_unpaid_due_date"].null_count() == 0
    gap = late.select((pl.col("as_of_date") - pl.col("first_unpaid_due_date")).dt.total_days()).to_series()
    assert (gap == late["days_past_due"]).all()
    assert ((late["overdue_principal"] + late["overdue_interest"]) > 0).all()
    assert (on_time["overdue_principal"] == 0).all() and (on_time["overdue_interest"] == 0).all()
    assert (on_time["collection_stage"] == "none").all()
    expected = (
        pl.when(pl.col("days_past_due") == 0).then(pl.lit("none"))
        .when(pl.col("days_past_due") < 30).then(pl.lit("early"))
        .when(pl.col("days_past_due") < 90).then(pl.lit("late"))
        .otherwise(pl.lit("legal"))
    )
    stages = feed.with_columns(expected=expected)
    agency = stages.filter(pl.col("collection_stage") == "agency")
    assert (agency["days_past_due"] >= 60).all()
    others = stages.filter(pl.col("collection_stage") != "agency")
    assert (others["collection_stage"] == others["expected"]).all()
    promised = feed.filter(pl.col("promise_to_pay_date").is_not_null())
    assert (promised["days_past_due"] > 0).all() and (promised["promise_to_pay_date"] > promised["as_of_date"]).all()


def test_delinquency_between_tapes_follows_payments(delinquency, collections, tapes, tape_dates):
    """DPD grows by one a day unless the loan paid that day; the loan set follows the book."""
    feed = delinquency.select("file_date", "loan_id", "days_past_due")
    paid = collections.select(pl.col("file_date"), "loan_id").unique().with_columns(paid=pl.lit(True))
    nxt = feed.with_columns(file_date=pl.col("file_date") - pl.duration(days=1)).rename({"days_past_due": "dpd_next"})
    steps = feed.join(nxt, on=["file_date", "loan_id"]).join(
        paid.with_columns(pl.col("file_date") - pl.duration(days=1)), on=["file_date", "loan_id"], how="left"
    )
    assert (steps["dpd_next"] <= steps["days_past_due"] + 1).all()
    unpaid_late = steps.filter(pl.col("paid").is_null() & (pl.col("days_past_due") > 0))
    assert (unpaid_late["dpd_next"] == unpaid_late["days_past_due"] + 1).all()
    # loan set on every day: disbursed, not yet written off, not yet fully repaid
    last = _last(tapes)
    payments = last["Historic Real Payment"].filter(pl.col("True Payment Status") == "Settled")
    loans = last["Loan Data"].join(
        payments.group_by("Loan ID").agg(pl.col("True Payment Date").max().alias("last_paid")), on="Loan ID", how="left"
    )
    for day in [date(2025, 11, 17), date(2026, 2, 3), date(2026, 6, 15), date(2026, 10, 1)]:
        expected = loans.filter(
            (pl.col("Disbursement Date") <= day)
            & (pl.col("Write Off Date").is_null() | (pl.col("Write Off Date") > day))
            & ((pl.col("Loan Status") != "Complete") | (pl.col("last_paid") > day))
        )["Loan ID"]
        got = feed.filter(pl.col("file_date") == day)["loan_id"]
        assert set(got) == set(expected), day


@pytest.mark.parametrize(
    ("loans", "months", "end", "rates"),
    [
        (400, 4, END, GeneratorRates(writeoff_dpd=45, delinquency_rate=0.3, recovery_rate=0.5)),
        (300, 14, date(2026, 1, 31), GeneratorRates(history_months=0, prepayment_rate=0.1)),
        (300, 3, date(2026, 3, 15), GeneratorRates(factoring_share=0.0, credit_line_share=0.5, max_payment_lag_days=0)),
    ],
    ids=["fast-writeoff", "no-history", "mid-month-lines"],
)
def test_cross_file_invariants_hold_for_unusual_settings(tmp_path, loans, months, end, rates):
    summary = generate_landing(tmp_path, loans, months, 21, end_date=end, rates=rates)
    dates = list(summary.tape_dates)
    tapes = {
        t: {table: _read(tmp_path / "cascade" / t.isoformat() / name, table) for table, name in TAPE_FILES.items()}
        for t in dates
    }
    assert all(tables["Loan Data"].height > 0 for tables in tapes.values())
    test_opb_roll_forward_is_exact(tapes)
    test_outstanding_is_disbursed_minus_settled_principal(tapes)
    test_loan_data_rules_hold_on_every_tape(tapes)
    first = date(dates[0].year, dates[0].month, 1)
    delinquency = pl.concat(
        _read(tmp_path / "delinquency" / d.isoformat() / f"delinquency_{d:%Y%m%d}.csv", "delinquency").with_columns(
            file_date=pl.lit(d)
        )
        for d in _days(first, end)
    )
    test_delinquency_equals_tape_on_tape_dates(delinquency, tapes)
    test_delinquency_rows_are_well_formed(delinquency)
    cash = pl.concat(
        _read(tmp_path / "collections" / d.isoformat() / f"collections_{d:%Y%m%d}.csv", "collections")
        for d in _days(first, end)
    )
    settled = tapes[dates[-1]]["Historic Real Payment"].filter(
        (pl.col("True Payment Status") == "Settled") & (pl.col("True Payment Date") >= first)
    )
    assert sorted(cash["payment_id"]) == sorted(settled["Payment ID"])
    assert cash["amount"].sum() == settled["True Total Payment"].sum()
