"""Reconcile the daily feeds with the Cascade tape (the book of record).

* collections vs Cascade: for each collections date D, cash per loan equals
  the Settled ``paid_total`` dated D in the tape of D, or the next tape that
  covers D; a date with no covering tape yet is pending, not passed.
* delinquency vs Cascade: on dates that have both, ``days_past_due`` per
  loan equals the tape's Days in Default, and the two agree on which loans
  are active.

Both run as one DuckDB query each over the typed Parquet (no Python loop
over loans); the result is a per-loan diff table.

``reconcile_changed`` runs them on the dates whose inputs changed only: a
date that reconciled cleanly against the same delivery versions (and the same
code) keeps its result, so a new day costs one day, not the whole history.
Dates with breaks, and collections dates without a covering tape yet, are
compared again on every run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from abaco_assets.lib.run_plan import Versions

TOLERANCE = 0.01


@dataclass
class Reconciliation:
    name: str
    checked_dates: int
    pending_dates: int
    breaks: pl.DataFrame  # one row per (date, loan) that does not reconcile
    unchanged_dates: int = 0  # reconciled cleanly before against the same deliveries, not compared again

    @property
    def passed(self) -> bool:
        return self.breaks.height == 0

    def summary(self) -> str:
        if self.passed:
            unchanged = f"; {self.unchanged_dates} unchanged since they reconciled" if self.unchanged_dates else ""
            return (f"{self.name}: {self.checked_dates} dates reconcile ({self.pending_dates} pending a covering tape"
                    f"{unchanged})")
        dates = self.breaks["date"].n_unique()
        return f"{self.name}: {self.breaks.height} loan breaks on {dates} of {self.checked_dates} dates"


def _glob(typed_root: Path, source: str, table: str) -> str:
    return f"read_parquet('{typed_root}/{source}/{table}/*/data.parquet', union_by_name = true)"


def _dates(days: list[dt.date]) -> str:
    """A SQL relation of dates (from the catalog: a header-only file has no rows but is a delivery)."""
    if not days:
        return "(select cast(null as date) as d where false)"
    return "(select unnest([" + _literals(days) + "]) as d)"


def _literals(days: list[dt.date]) -> str:
    return ", ".join(f"date '{day.isoformat()}'" for day in days) or "null"


def collections_vs_cascade(typed_root: Path, collection_dates: list[dt.date]) -> Reconciliation:
    sql = f"""
    with tapes as (select distinct delivery_date as tape_date from {_glob(typed_root, 'cascade', 'loan_data')}),
    collection_dates as {_dates(collection_dates)},
    covering as (
        select c.d, min(t.tape_date) as tape_date
        from collection_dates c left join tapes t on t.tape_date >= c.d
        group by c.d
    ),
    cash as (
        select delivery_date as d, loan_id, sum(amount) as collections_amount
        from {_glob(typed_root, 'collections', 'collections')}
        where delivery_date in ({_literals(collection_dates)})  -- constant: files of other dates are skipped
        group by all
    ),
    tape_cash as (
        select cv.d, p.loan_id, sum(p.paid_total) as cascade_amount
        from covering cv
        join {_glob(typed_root, 'cascade', 'historic_real_payment')} p
          on p.delivery_date = cv.tape_date and p.payment_date = cv.d and p.payment_status = 'Settled'
        group by all
    ),
    compared as (
        select coalesce(cash.d, tape_cash.d) as date, coalesce(cash.loan_id, tape_cash.loan_id) as loan_id,
               coalesce(collections_amount, 0) as collections_amount, coalesce(cascade_amount, 0) as cascade_amount
        from cash full outer join tape_cash on cash.d = tape_cash.d and cash.loan_id = tape_cash.loan_id
    )
    select c.date, c.loan_id, cv.tape_date,
           cast(c.collections_amount as double) as collections_amount,
           cast(c.cascade_amount as double) as cascade_amount,
           cast(c.collections_amount - c.cascade_amount as double) as difference
    from compared c join covering cv on cv.d = c.date
    where cv.tape_date is not null and abs(c.collections_amount - c.cascade_amount) > {TOLERANCE}
    order by c.date, c.loan_id
    """
    counts = f"""
    with tapes as (select distinct delivery_date as tape_date from {_glob(typed_root, 'cascade', 'loan_data')})
    select count(*) filter (where exists (select 1 from tapes where tape_date >= d)),
           count(*) filter (where not exists (select 1 from tapes where tape_date >= d))
    from {_dates(collection_dates)}
    """
    with duckdb.connect() as con:
        breaks = con.sql(sql).pl()
        checked, pending = con.execute(counts).fetchone()
    return Reconciliation("collections_vs_cascade", checked, pending, breaks)


def delinquency_vs_cascade(typed_root: Path, delinquency_dates: list[dt.date]) -> Reconciliation:
    sql = f"""
    with tape as (
        select delivery_date as date, loan_id, days_past_due as cascade_dpd
        from {_glob(typed_root, 'cascade', 'loan_data')}
        where loan_status not in ('Complete', 'Written Off') and outstanding_principal > 0
          and delivery_date in ({_literals(delinquency_dates)})
    ),
    feed as (
        select delivery_date as date, loan_id, days_past_due as delinquency_dpd
        from {_glob(typed_root, 'delinquency', 'delinquency')}
        where delivery_date in ({_literals(delinquency_dates)})
    ),
    shared_dates as (
        select distinct date from (select distinct date from tape) t
        semi join (select d as date from {_dates(delinquency_dates)}) f using (date)
    )
    select coalesce(t.date, f.date) as date, coalesce(t.loan_id, f.loan_id) as loan_id,
           t.cascade_dpd, f.delinquency_dpd,
           case when t.loan_id is null then 'not active in the tape'
                when f.loan_id is null then 'missing from the delinquency file'
                else 'days_past_due differs' end as issue
    from (select * from tape semi join shared_dates using (date)) t
    full outer join (select * from feed semi join shared_dates using (date)) f
      on t.date = f.date and t.loan_id = f.loan_id
    where t.loan_id is null or f.loan_id is null or t.cascade_dpd <> f.delinquency_dpd
    order by 1, 2
    """
    counts = f"""
    select count(distinct t.delivery_date)
    from {_glob(typed_root, 'cascade', 'loan_data')} t
    semi join {_dates(delinquency_dates)} f on f.d = t.delivery_date
    """
    with duckdb.connect() as con:
        breaks = con.sql(sql).pl()
        checked = con.execute(counts).fetchone()[0]
    return Reconciliation("delinquency_vs_cascade", checked, 0, breaks)


# ---------------------------------------------------------------------------------------------
# Only what changed
# ---------------------------------------------------------------------------------------------

CODE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def collections_inputs(in_force: Versions) -> dict[dt.date, str | None]:
    """Per collections date: its version and the version of the tape that covers it (None: no tape yet)."""
    tapes = sorted((dt.date.fromisoformat(day), version) for day, version in in_force.get("cascade", {}).items()
                   if version)
    inputs = {}
    for day, version in in_force.get("collections", {}).items():
        if not version:
            continue
        date = dt.date.fromisoformat(day)
        covering = next((tape_version for tape_date, tape_version in tapes if tape_date >= date), None)
        inputs[date] = f"{version}|{covering}" if covering else None
    return inputs


def delinquency_inputs(in_force: Versions) -> dict[dt.date, str]:
    """Per delinquency date that has a tape of the same date: the two versions (other dates are not compared)."""
    tapes = in_force.get("cascade", {})
    return {dt.date.fromisoformat(day): f"{version}|{tapes[day]}"
            for day, version in in_force.get("delinquency", {}).items() if version and tapes.get(day)}


def reconcile_changed(compare: Callable[[Path, list[dt.date]], Reconciliation], typed_root: Path,
                      inputs: Mapping[dt.date, str | None], ledger: Mapping) -> tuple[Reconciliation, dict]:
    """Compare the dates whose inputs changed since they last reconciled cleanly; returns the new ledger.

    ``inputs``: date -> the versions it is compared on (None: nothing to compare it with yet, so it is
    passed on every run and reported as pending). The ledger holds date -> versions of the dates that
    reconciled without a break, and the code they were compared by.
    """
    clean = dict(ledger.get("dates", {})) if ledger.get("code") == CODE else {}
    changed = sorted(day for day, key in inputs.items() if key is None or clean.get(day.isoformat()) != key)
    result = compare(typed_root, changed)
    broken = set(result.breaks["date"].to_list()) if result.breaks.height else set()
    current = {day.isoformat() for day in inputs}
    clean = {day: key for day, key in clean.items() if day in current}
    for day in changed:
        if inputs[day] is not None and day not in broken:
            clean[day.isoformat()] = inputs[day]
    result.unchanged_dates = len(inputs) - len(changed)
    result.checked_dates += result.unchanged_dates
    return result, {"code": CODE, "dates": dict(sorted(clean.items()))}
