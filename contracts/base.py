"""The contract vocabulary: a feed table is a pydantic model, a column is a field.

Why pydantic models: the header name (alias), canonical name (field name),
type (annotation), nullability (``| None``), header optionality (a default),
bounds (``ge``/``gt``/``le``) and the PII flag are all declared once, on one
line per column.  Everything else (pandera checks, typed Parquet schema, dbt
sources, docs) is derived from these models by ``contracts.derive``; nothing
repeats a column list.

Conventions the derivation relies on:

* a field with no default -> the header is required;
* ``X | None`` -> the value may be empty (null);
* a default (e.g. ``Decimal(0)``) -> the header may be absent and an empty
  value takes the default;
* ``Literal[...]`` -> an enum; ``Decimal`` with ``decimal_places`` -> a
  decimal of that scale (money amounts declared decimal(18,2) in feeds.md
  use 2, bare "decimal" uses 6);
* ``json_schema_extra`` keys: ``unique``, ``pii`` (``"hash"`` = keyed hash
  in the typed zone, ``"drop"`` = never leaves raw), ``not_after_delivery``,
  ``equals_delivery``, ``pattern``, ``hint``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

PiiPolicy = Literal["hash", "drop"]

# Scale used for values feeds.md declares as a bare "decimal".
DEFAULT_DECIMAL_SCALE = 6


def column(
    header: str,
    *,
    description: str,
    default: Any = ...,
    unique: bool = False,
    pii: PiiPolicy | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    decimal_places: int | None = None,
    not_after_delivery: bool = False,
    equals_delivery: bool = False,
    pattern: str | None = None,
    hint: str | None = None,
) -> Any:
    """Declare one feed column (see the module docstring for the conventions)."""
    extra: dict[str, Any] = {
        "unique": unique,
        "pii": pii,
        "not_after_delivery": not_after_delivery,
        "equals_delivery": equals_delivery,
        "pattern": pattern,
        "hint": hint,
    }
    return Field(
        default,
        alias=header,
        description=description,
        ge=ge,
        gt=gt,
        le=le,
        decimal_places=decimal_places,
        json_schema_extra=extra,
    )


@dataclass(frozen=True)
class RowRule:
    """A cross-column rule, evaluated vectorized over the typed frame.

    ``valid`` returns a boolean polars expression that is true for rows that
    satisfy the rule (nulls in it count as violations, so write rules that
    decide every row).
    """

    name: str
    description: str
    columns: tuple[str, ...]
    valid: Callable[[], pl.Expr]
    hint: str = ""


@dataclass(frozen=True)
class FreshnessSla:
    """When a source's delivery is due, in Abaco's local time zone.

    ``shape`` is ``month_end`` (the tape of each month-end, due on the first
    business day after it) or ``business_daily`` (each business day's file,
    due on the next business day).  ``cron`` is set only where a cron can
    express (part of) the SLA; the business-day calendar covers the rest.
    """

    description: str
    shape: Literal["month_end", "business_daily"]
    deadline: dt.time
    cron: str | None = None
    timezone: str = "America/El_Salvador"


DAILY_FEED_SLA = FreshnessSla(
    description="Each business day's file by 08:00 local time on the next business day",
    shape="business_daily",
    deadline=dt.time(8, 0),
    # Tue-Fri 08:00 each expect the previous day's file; Mondays and holidays need the calendar sensor.
    cron="0 8 * * 2-5",
)


class FeedTable(BaseModel):
    """Base class of every table contract (one subclass per table and version)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    source: ClassVar[str]
    table: ClassVar[str]
    version: ClassVar[int]
    title: ClassVar[str]
    # case-insensitive regular expression for the landing file name
    file_pattern: ClassVar[str]
    owner: ClassVar[str]
    row_rules: ClassVar[tuple[RowRule, ...]] = ()
    unique_together: ClassVar[tuple[tuple[str, ...], ...]] = ()
    # a header-only file is an error for tables that must never be empty
    min_rows: ClassVar[int] = 0
    required_in_delivery: ClassVar[bool] = True
    freshness: ClassVar[FreshnessSla | None] = None

    @classmethod
    def contract_id(cls) -> str:
        return f"{cls.source}/{cls.table}@v{cls.version}"


__all__ = [
    "DEFAULT_DECIMAL_SCALE",
    "Decimal",
    "FeedTable",
    "FreshnessSla",
    "Literal",
    "RowRule",
    "column",
    "dt",
]
