"""`abaco kpis`: one month's portfolio KPIs as a table, for the whole book or one segment.

Why a module of its own: the CLI should only parse options and map errors to
exit codes; reading the mart, choosing the month, labelling and formatting
the figures is tested here without a terminal. Labels and units come from
the metric store, so the table names a KPI as the catalog does (and a ratio
is printed as a percentage because the store says it is a ratio, not
because of its column name).

Reads ``marts.kpi_portfolio_monthly`` or, with a segment,
``marts.kpi_portfolio_monthly_by_segment``, through a read-only DuckDB
connection. Pure: no Dagster, no click.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

import duckdb

from abaco_assets.lib.metric_store import MetricStore, MetricStoreError, load_metric_store

PORTFOLIO_MART = "kpi_portfolio_monthly"
SEGMENT_MART = "kpi_portfolio_monthly_by_segment"
HEADLINE_COLUMNS = ("opb", "par30", "par90", "collection_rate", "weighted_apr")
_MONTH = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")

EXIT_NO_DATA, EXIT_USAGE = 1, 2


class KpiTableError(Exception):
    """A message for the user, with the exit code `abaco kpis` should end with."""

    exit_code = EXIT_NO_DATA


class NoWarehouse(KpiTableError):
    exit_code = EXIT_USAGE


class BadArgument(KpiTableError):
    exit_code = EXIT_USAGE


class NoData(KpiTableError):
    exit_code = EXIT_NO_DATA


@dataclass(frozen=True)
class KpiRow:
    column: str
    label: str
    unit: str
    value: Any

    def formatted(self) -> str:
        return format_kpi_value(self.value, self.unit)


@dataclass(frozen=True)
class KpiTable:
    """One month's KPI row (of the book or of one segment), labelled and typed."""

    month_end: dt.date
    segment: str | None
    rows: tuple[KpiRow, ...]

    def render(self) -> str:
        """Fixed-width text: KPI label, column name, value right-aligned."""
        scope = f"segment {self.segment}" if self.segment else "whole book"
        label_width = max((len(row.label) for row in self.rows), default=3)
        column_width = max((len(row.column) for row in self.rows), default=6)
        values = [row.formatted() for row in self.rows]
        value_width = max((len(value) for value in values), default=5)
        lines = [f"portfolio KPIs, month_end {self.month_end.isoformat()}, {scope}:",
                 f"  {'KPI':<{label_width}}  {'column':<{column_width}}  {'value':>{value_width}}"]
        lines += [f"  {row.label:<{label_width}}  {row.column:<{column_width}}  {value:>{value_width}}"
                  for row, value in zip(self.rows, values)]
        return "\n".join(lines)


def format_kpi_value(value: Any, unit: str) -> str:
    """USD with cents and thousands separators, ratios as percentages (4 decimals), counts as integers."""
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{float(value):.4%}"
    if unit == "count":
        return f"{int(value):,}"
    if unit == "usd":
        return f"{Decimal(str(value)):,.2f}"
    return str(value)


def parse_month(text: str) -> tuple[int, int]:
    """YYYY-MM (a full YYYY-MM-DD is accepted and read as its month)."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise BadArgument(f"--month {text!r} is not a month: use YYYY-MM, e.g. 2026-10")
    return int(match.group(1)), int(match.group(2))


def _units(store: MetricStore | None) -> dict[str, tuple[str, str]]:
    """column -> (label, unit) of the portfolio KPIs."""
    if store is None:
        return {}
    return {kpi.computed_by.column: (kpi.label, kpi.unit) for kpi in store.kpis
            if kpi.computed_by.model == PORTFOLIO_MART}


def _fallback_unit(column: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return "count"
    return "ratio" if isinstance(value, float) else "usd"


def read_kpi_table(warehouse: Path, month: str | None = None, segment: str | None = None,
                   columns: Sequence[str] | None = None, store: MetricStore | None = None) -> KpiTable:
    """The KPI row of ``month`` (default: the latest month_end), for the book or ``segment``.

    ``columns`` restricts and orders the KPIs (default: every KPI column of the mart, in mart order).
    Raises KpiTableError subclasses with a message that tells the user what to do.
    """
    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise NoWarehouse(f"no warehouse at {warehouse} yet: run `abaco run` first")
    wanted_month = parse_month(month) if month else None
    mart = SEGMENT_MART if segment else PORTFOLIO_MART
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        exists = connection.execute("select count(*) from information_schema.tables "
                                    "where table_schema = 'marts' and table_name = ?", [mart]).fetchone()[0]
        if not exists:
            raise NoData(f"marts.{mart} does not exist yet: run `abaco run` first")
        months = [row[0] for row in connection.execute(
            f"select distinct month_end from marts.{mart} order by month_end").fetchall()]
        if not months:
            raise NoData(f"marts.{mart} is empty: no month-end tape has been processed yet")
        if wanted_month:
            matching = [day for day in months if (day.year, day.month) == wanted_month]
            if not matching:
                raise NoData(f"no KPI row for {wanted_month[0]:04d}-{wanted_month[1]:02d}; months with a tape: "
                             f"{', '.join(day.strftime('%Y-%m') for day in months)}")
            month_end = matching[0]
        else:
            month_end = months[-1]
        parameters: list[Any] = [month_end]
        where = "month_end = ?"
        if segment:
            segments = [row[0] for row in connection.execute(
                f"select segment from marts.{mart} where month_end = ? order by segment", [month_end]).fetchall()]
            chosen = next((name for name in segments if name == segment), None) or next(
                (name for name in segments if name is not None and name.lower() == segment.lower()), None)
            if chosen is None:
                raise BadArgument(f"no segment {segment!r} on {month_end}; segments: {', '.join(map(str, segments))}")
            segment = chosen
            where += " and segment = ?"
            parameters.append(chosen)
        cursor = connection.execute(f"select * from marts.{mart} where {where}", parameters)
        names = [description[0] for description in cursor.description]
        record = dict(zip(names, cursor.fetchone()))
    if store is None:
        try:
            store = load_metric_store()
        except MetricStoreError:  # the figures do not depend on it; labels fall back to column names
            store = None
    units = _units(store)
    chosen_columns = list(columns) if columns else [name for name in names if name not in ("month_end", "segment")]
    unknown = [name for name in chosen_columns if name not in record]
    if unknown:
        raise BadArgument(f"marts.{mart} has no column {', '.join(unknown)}")
    rows = tuple(KpiRow(column=name, label=units.get(name, (name, ""))[0],
                        unit=units.get(name, ("", _fallback_unit(name, record[name])))[1],
                        value=record[name])
                 for name in chosen_columns)
    return KpiTable(month_end=month_end, segment=segment, rows=rows)
