"""Write typed Parquet deliveries straight into an ABACO_DATA tree, bypassing ingestion.

The dbt sources read ``typed/<source>/<table>/<YYYY-MM-DD>/data.parquet`` plus a
zero-row ``typed/<source>/<table>/_schema/data.parquet`` that keeps each glob
non-empty.  Tests that pin the KPI marts write exactly that layout with the
column types the ingestion promises (listed here, not imported from the
contracts), so the dbt project is tested on its own interface and the
expected numbers never depend on the code that produces them.

Rows are dicts keyed by canonical column name; ``delivery_date`` is added
from the delivery.  A money column whose feed rule says "default 0" may be
left out of a row and is written as 0, as ingestion does; any other missing
column is written as NULL.  Every value goes through its text form and a SQL
CAST, so ``"7000.00"``, ``Decimal("7000.00")`` and ``7000`` all land as the
same DECIMAL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Iterable, Mapping

import duckdb

# (source, table) -> columns after delivery_date, with their exact typed-zone SQL types.
TYPED_COLUMNS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("cascade", "loan_data"): (
        ("loan_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("product_type", "VARCHAR"),
        ("disbursement_date", "DATE"),
        ("disbursement_amount", "DECIMAL(18,2)"),
        ("tpv", "DECIMAL(18,2)"),
        ("currency", "VARCHAR"),
        ("interest_rate_apr", "DECIMAL(18,6)"),
        ("origination_fee", "DECIMAL(18,6)"),
        ("origination_fee_taxes", "DECIMAL(18,6)"),
        ("term", "BIGINT"),
        ("term_unit", "VARCHAR"),
        ("payment_frequency", "VARCHAR"),
        ("maturity_date", "DATE"),
        ("outstanding_principal", "DECIMAL(18,2)"),
        ("days_past_due", "BIGINT"),
        ("loan_status", "VARCHAR"),
        ("write_off_date", "DATE"),
        ("write_off_amount", "DECIMAL(18,6)"),
    ),
    ("cascade", "customer_data"): (
        ("customer_id", "VARCHAR"),
        ("tax_id_hmac", "VARCHAR"),
        ("email_hmac", "VARCHAR"),
        ("segment", "VARCHAR"),
        ("industry", "VARCHAR"),
        ("region", "VARCHAR"),
        ("kam_id", "VARCHAR"),
        ("legal_type", "VARCHAR"),
    ),
    ("cascade", "payment_schedule"): (
        ("loan_id", "VARCHAR"),
        ("installment_number", "BIGINT"),
        ("due_date", "DATE"),
        ("scheduled_principal", "DECIMAL(18,6)"),
        ("scheduled_interest", "DECIMAL(18,6)"),
        ("scheduled_fee", "DECIMAL(18,6)"),
        ("scheduled_other", "DECIMAL(18,6)"),
        ("scheduled_total", "DECIMAL(18,6)"),
    ),
    ("cascade", "historic_real_payment"): (
        ("payment_id", "VARCHAR"),
        ("loan_id", "VARCHAR"),
        ("payment_date", "DATE"),
        ("paid_principal", "DECIMAL(18,6)"),
        ("paid_interest", "DECIMAL(18,6)"),
        ("paid_fee", "DECIMAL(18,6)"),
        ("paid_other", "DECIMAL(18,6)"),
        ("paid_tax", "DECIMAL(18,6)"),
        ("paid_fee_tax", "DECIMAL(18,6)"),
        ("rebates", "DECIMAL(18,6)"),
        ("paid_total", "DECIMAL(18,6)"),
        ("payment_status", "VARCHAR"),
    ),
    ("cascade", "collateral"): (
        ("loan_id", "VARCHAR"),
        ("collateral_type", "VARCHAR"),
        ("collateral_value", "DECIMAL(18,6)"),
    ),
    ("collections", "collections"): (
        ("payment_id", "VARCHAR"),
        ("loan_id", "VARCHAR"),
        ("received_date", "DATE"),
        ("amount", "DECIMAL(18,6)"),
        ("channel", "VARCHAR"),
        ("is_recovery", "BOOLEAN"),
    ),
    ("delinquency", "delinquency"): (
        ("as_of_date", "DATE"),
        ("loan_id", "VARCHAR"),
        ("days_past_due", "BIGINT"),
        ("overdue_principal", "DECIMAL(18,6)"),
        ("overdue_interest", "DECIMAL(18,6)"),
        ("first_unpaid_due_date", "DATE"),
        ("collection_stage", "VARCHAR"),
        ("promise_to_pay_date", "DATE"),
    ),
}

# Optional columns whose feed rule gives "default 0": ingestion writes 0, never NULL.
ZERO_DEFAULTS: dict[tuple[str, str], frozenset[str]] = {
    ("cascade", "loan_data"): frozenset({"origination_fee", "origination_fee_taxes"}),
    ("cascade", "payment_schedule"): frozenset({"scheduled_fee", "scheduled_other"}),
    ("cascade", "historic_real_payment"): frozenset(
        {"paid_fee", "paid_other", "paid_tax", "paid_fee_tax", "rebates"}),
}

CASCADE_TABLES = ("loan_data", "customer_data", "payment_schedule", "historic_real_payment", "collateral")


def typed_path(data_dir: Path, source: str, table: str, partition: str) -> Path:
    """Where the dbt source glob of ``source.table`` finds one partition."""
    return Path(data_dir) / "typed" / source / table / partition / "data.parquet"


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _write_parquet(path: Path, source: str, table: str, rows: Iterable[Mapping[str, Any]],
                   delivery_date: dt.date | None) -> None:
    """Land ``rows`` as text in a scratch table, then CAST every column on the way out,
    so the file carries exactly the declared types whatever Python types the rows use."""
    columns = (("delivery_date", "DATE"),) + TYPED_COLUMNS[(source, table)]
    names = [name for name, _ in columns]
    zero_defaults = ZERO_DEFAULTS.get((source, table), frozenset())
    values = []
    for row in rows:
        unknown = set(row) - set(names)
        if unknown:
            raise KeyError(f"unknown columns for {source}/{table}: {sorted(unknown)}")
        record = {**{name: 0 for name in zero_defaults}, **row, "delivery_date": delivery_date}
        values.append([_as_text(record.get(name)) for name in names])

    path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect()
    try:
        connection.execute("create table incoming (" + ", ".join(f'"{name}" varchar' for name in names) + ")")
        if values:
            placeholders = ", ".join("?" for _ in names)
            connection.executemany(f"insert into incoming values ({placeholders})", values)
        typed_select = ", ".join(f'cast("{name}" as {sql_type}) as "{name}"' for name, sql_type in columns)
        target = str(path).replace("'", "''")
        connection.execute(f"copy (select {typed_select} from incoming) to '{target}' (format parquet)")
    finally:
        connection.close()


def write_schema_files(data_dir: Path) -> None:
    """The zero-row ``_schema/data.parquet`` of every table, as ingestion keeps them."""
    for source, table in TYPED_COLUMNS:
        _write_parquet(typed_path(data_dir, source, table, "_schema"), source, table, [], None)


def write_delivery(data_dir: Path, source: str, table: str, delivery_date: dt.date,
                   rows: Iterable[Mapping[str, Any]]) -> Path:
    """One accepted delivery of one table (rows without ``delivery_date``)."""
    path = typed_path(data_dir, source, table, delivery_date.isoformat())
    _write_parquet(path, source, table, rows, delivery_date)
    return path


def write_cascade_tape(data_dir: Path, tape_date: dt.date,
                       tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
    """A whole Cascade delivery; an omitted table (e.g. the optional Collateral) is written
    with zero rows, as ingestion does for an accepted delivery without it."""
    unknown = set(tables) - set(CASCADE_TABLES)
    if unknown:
        raise KeyError(f"unknown cascade tables: {sorted(unknown)}")
    for table in CASCADE_TABLES:
        write_delivery(data_dir, "cascade", table, tape_date, tables.get(table, []))
