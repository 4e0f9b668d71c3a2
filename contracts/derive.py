"""Everything derived from a contract model: column specs, the typed schema,
the pandera (polars) schema and the dbt sources YAML.

No other module lists a table's columns; they all ask this one.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

import polars as pl
from annotated_types import Ge, Gt, Le

from contracts.base import DEFAULT_DECIMAL_SCALE, FeedTable

Kind = Literal["string", "enum", "integer", "decimal", "date", "boolean"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of one contract, flattened for vectorized validation."""

    name: str  # canonical name
    header: str  # header in the upstream file
    kind: Kind
    description: str
    header_required: bool
    nullable: bool
    default: Any  # None when there is no default
    enum_values: tuple[str, ...] = ()
    scale: int | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    unique: bool = False
    pii: str | None = None
    not_after_delivery: bool = False
    equals_delivery: bool = False
    pattern: str | None = None
    hint: str | None = None

    @property
    def typed_name(self) -> str:
        """Name of the column in the typed (masked) zone; PII that is hashed says so."""
        return f"{self.name}_hmac" if self.pii == "hash" else self.name

    @property
    def polars_dtype(self) -> pl.DataType:
        return _POLARS_TYPES[self.kind](self)

    @property
    def sql_type(self) -> str:
        return _SQL_TYPES[self.kind](self)

    def describe_rule(self) -> str:
        """The rule in words, as printed in docs and error reports."""
        parts = ["required" if not self.nullable else "optional"]
        if self.kind == "enum":
            parts.append("one of " + ", ".join(self.enum_values))
        elif self.kind == "decimal":
            parts.append(f"decimal with at most {self.scale} decimals")
        else:
            parts.append(self.kind)
        for word, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le)):
            if bound is not None:
                parts.append(f"{word} {bound:g}")
        if self.default is not None:
            parts.append(f"default {self.default}")
        if self.unique:
            parts.append("unique")
        if self.not_after_delivery:
            parts.append("not after the delivery date")
        if self.equals_delivery:
            parts.append("equals the delivery date")
        if self.pii:
            parts.append(f"PII ({'keyed hash' if self.pii == 'hash' else 'dropped'} outside raw)")
        return "; ".join(parts)


_POLARS_TYPES = {
    "string": lambda c: pl.String(),
    "enum": lambda c: pl.String(),
    "integer": lambda c: pl.Int64(),
    "decimal": lambda c: pl.Decimal(18, c.scale),
    "date": lambda c: pl.Date(),
    "boolean": lambda c: pl.Boolean(),
}
_SQL_TYPES = {
    "string": lambda c: "VARCHAR",
    "enum": lambda c: "VARCHAR",
    "integer": lambda c: "BIGINT",
    "decimal": lambda c: f"DECIMAL(18,{c.scale})",
    "date": lambda c: "DATE",
    "boolean": lambda c: "BOOLEAN",
}


def _kind_of(annotation: Any) -> tuple[Kind, tuple[str, ...], bool]:
    """(kind, enum values, nullable) of a field annotation."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(annotation))
        (annotation,) = args
        origin = typing.get_origin(annotation)
    if origin is Literal:
        return "enum", tuple(str(v) for v in typing.get_args(annotation)), nullable
    simple: dict[Any, Kind] = {
        str: "string",
        int: "integer",
        Decimal: "decimal",
        dt.date: "date",
        bool: "boolean",
    }
    if annotation not in simple:
        raise TypeError(f"unsupported contract column type {annotation!r}")
    return simple[annotation], (), nullable


@lru_cache(maxsize=None)
def column_specs(contract: type[FeedTable]) -> tuple[ColumnSpec, ...]:
    specs = []
    for name, field in contract.model_fields.items():
        kind, enum_values, nullable = _kind_of(field.annotation)
        extra = dict(field.json_schema_extra or {})
        bounds: dict[str, float] = {}
        scale = None
        for meta in field.metadata:
            if isinstance(meta, Ge):
                bounds["ge"] = float(meta.ge)
            elif isinstance(meta, Gt):
                bounds["gt"] = float(meta.gt)
            elif isinstance(meta, Le):
                bounds["le"] = float(meta.le)
            elif getattr(meta, "decimal_places", None) is not None:
                scale = meta.decimal_places
        if kind == "decimal" and scale is None:
            scale = DEFAULT_DECIMAL_SCALE
        header_required = field.is_required()
        default = None if header_required else field.default
        specs.append(
            ColumnSpec(
                name=name,
                header=field.alias or name,
                kind=kind,
                description=field.description or "",
                header_required=header_required,
                nullable=nullable,
                default=default,
                enum_values=enum_values,
                scale=scale,
                unique=bool(extra.get("unique")),
                pii=extra.get("pii"),
                not_after_delivery=bool(extra.get("not_after_delivery")),
                equals_delivery=bool(extra.get("equals_delivery")),
                pattern=extra.get("pattern"),
                hint=extra.get("hint"),
                **bounds,
            )
        )
    return tuple(specs)


def typed_columns(contract: type[FeedTable]) -> list[tuple[str, ColumnSpec]]:
    """(typed name, spec) of the columns that leave the raw zone (PII 'drop' excluded)."""
    return [(spec.typed_name, spec) for spec in column_specs(contract) if spec.pii != "drop"]


def typed_polars_schema(contract: type[FeedTable]) -> dict[str, pl.DataType]:
    """Schema of the typed Parquet: delivery_date first, then the typed columns."""
    schema: dict[str, pl.DataType] = {"delivery_date": pl.Date()}
    for typed_name, spec in typed_columns(contract):
        schema[typed_name] = pl.String() if spec.pii == "hash" else spec.polars_dtype
    return schema


def _value_rules(spec: ColumnSpec, delivery_date: dt.date) -> list[tuple[str, Any, str]]:
    """The checks of one column's values as (pandera built-in check, argument, error text): the one
    list both the pandera schema and the one-pass check are made from."""
    rules = []
    if spec.kind == "enum":
        rules.append(("isin", list(spec.enum_values), f"isin: one of {', '.join(spec.enum_values)}"))
    if spec.ge is not None:
        rules.append(("ge", _bound(spec, spec.ge), f"ge: >= {spec.ge:g}"))
    if spec.gt is not None:
        rules.append(("gt", _bound(spec, spec.gt), f"gt: > {spec.gt:g}"))
    if spec.le is not None:
        rules.append(("le", _bound(spec, spec.le), f"le: <= {spec.le:g}"))
    if spec.pattern:
        rules.append(("str_matches", spec.pattern, f"pattern: matches {spec.pattern}"))
    if spec.not_after_delivery:
        rules.append(("le", delivery_date, f"not_after_delivery: not after {delivery_date}"))
    if spec.equals_delivery:
        rules.append(("eq", delivery_date, f"equals_delivery: equals {delivery_date}"))
    return rules


# pandera's built-in checks (polars backend) as polars expressions, for the one-pass check
_POLARS_CHECKS = {
    "isin": lambda column, values: column.cast(pl.String).is_in(values),
    "ge": lambda column, bound: column >= bound,
    "gt": lambda column, bound: column > bound,
    "le": lambda column, bound: column <= bound,
    "eq": lambda column, value: column == value,
    # pandera anchors the pattern at the start when it is not already
    "str_matches": lambda column, pattern: column.str.contains(pattern if pattern.startswith("^") else f"^{pattern}"),
}


def pandera_schema(contract: type[FeedTable], delivery_date: dt.date):
    """The vectorized pandera (polars backend) schema of one delivery of ``contract``.

    Built per delivery date because a few rules compare against it.
    """
    import pandera.polars as pa

    columns = {}
    for spec in column_specs(contract):
        columns[spec.name] = pa.Column(
            spec.polars_dtype,
            checks=[getattr(pa.Check, check)(argument, error=error)
                    for check, argument, error in _value_rules(spec, delivery_date)],
            nullable=spec.nullable,
            unique=spec.unique,
            required=True,
        )
    frame_checks = [
        pa.Check(_rule_check(rule.valid), name=rule.name, error=f"{rule.name}: {rule.description}")
        for rule in contract.row_rules
    ]
    unique = [list(group) for group in contract.unique_together] or None
    return pa.DataFrameSchema(
        columns,
        checks=frame_checks,
        unique=unique[0] if unique else None,
        strict=True,
        name=contract.contract_id(),
    )


def passes_in_one_pass(frame: pl.DataFrame, contract: type[FeedTable], delivery_date: dt.date) -> bool:
    """True when ``frame`` passes every check of ``pandera_schema(contract, delivery_date)``.

    The same rules from the same specs, decided by one polars query instead of one per check
    (pandera's fixed cost is ~12 ms a file, and most daily files are small). Every condition is
    pandera's or stricter, so False never means "accept"; it means "ask pandera", which then
    names each failing row.
    """
    specs = column_specs(contract)
    if list(frame.columns) != [spec.name for spec in specs] or any(
            frame.schema[spec.name] != spec.polars_dtype for spec in specs):
        return False  # strict schema and dtypes: pandera's own words are needed
    conditions, distinct = [], []
    for spec in specs:
        column = pl.col(spec.name)
        if not spec.nullable:
            conditions.append(column.is_not_null())
        # pandera's checks skip nulls (ignore_na)
        conditions += [(_POLARS_CHECKS[check](column, argument).fill_null(False) | column.is_null())
                       for check, argument, _ in _value_rules(spec, delivery_date)]
        if spec.unique:
            distinct.append(column.n_unique() == pl.len())  # no duplicates (nulls count as one value)
    conditions += [rule.valid().fill_null(False) for rule in contract.row_rules]
    # the keys' 64-bit hashes all distinct: a duplicate always collides, and a rare collision
    # between distinct keys only sends the frame to pandera (several times cheaper than is_duplicated)
    distinct += [pl.struct(list(group)).hash().n_unique() == pl.len() for group in contract.unique_together[:1]]
    if frame.height == 0:
        return True  # columns and dtypes are checked above; every rule holds on no rows
    verdicts = [pl.all_horizontal(conditions).all()] if conditions else []
    if not verdicts + distinct:
        return True
    return all(frame.select(*(v.alias(f"v{i}") for i, v in enumerate(verdicts + distinct))).row(0))


def _bound(spec: ColumnSpec, value: float):
    if spec.kind == "decimal":
        return Decimal(str(value))
    if spec.kind == "integer":
        return int(value)
    return value


def _rule_check(valid_expr):
    def check(data):
        return data.lazyframe.select(valid_expr().fill_null(False))

    return check


def render_dbt_sources(contracts: list[type[FeedTable]]) -> dict[str, Any]:
    """dbt sources over the typed Parquet, one source per feed.

    The external location reads every accepted delivery (``*/data.parquet``)
    plus the zero-row ``_schema`` file that keeps the glob non-empty.
    """
    by_source: dict[str, list[type[FeedTable]]] = {}
    for contract in contracts:
        by_source.setdefault(contract.source, []).append(contract)
    sources = []
    for source, members in by_source.items():
        tables = []
        for contract in members:
            location = (
                "read_parquet('{{ env_var('ABACO_DATA') }}/typed/"
                f"{contract.source}/{contract.table}/*/data.parquet', union_by_name = true)"
            )
            cols = [{"name": "delivery_date", "description": "Delivery (as-of) date of the file: the partition key",
                     "data_type": "DATE"}]
            for typed_name, spec in typed_columns(contract):
                description = spec.description + (" (keyed HMAC-SHA256 of the clear value)" if spec.pii else "")
                cols.append({
                    "name": typed_name,
                    "description": f"{description}. Upstream header '{spec.header}'; rule: {spec.describe_rule()}",
                    "data_type": "VARCHAR" if spec.pii == "hash" else spec.sql_type,
                })
            tables.append({
                "name": contract.table,
                "description": f"{contract.title} ({contract.contract_id()}), typed and masked; one file per accepted delivery",
                "meta": {
                    "external_location": location,
                    "contract": contract.contract_id(),
                    "dagster": {"asset_key": ["raw", contract.source, contract.table]},
                },
                "columns": cols,
            })
        sources.append({"name": source, "description": f"Feed '{source}' as accepted by its contract", "tables": tables})
    return {"version": 2, "sources": sources}


def diff_contracts(old: type[FeedTable], new: type[FeedTable]) -> list[str]:
    """Human-readable differences between two versions of a table's contract."""
    before = {spec.name: spec for spec in column_specs(old)}
    after = {spec.name: spec for spec in column_specs(new)}
    lines = []
    for name in after.keys() - before.keys():
        lines.append(f"+ added   {name} (header '{after[name].header}'): {after[name].describe_rule()}")
    for name in before.keys() - after.keys():
        lines.append(f"- removed {name} (header '{before[name].header}')")
    for name in before.keys() & after.keys():
        if before[name] != after[name]:
            lines.append(f"~ changed {name}: {before[name].describe_rule()}  ->  {after[name].describe_rule()}")
    old_rules = {rule.name for rule in old.row_rules}
    new_rules = {rule.name for rule in new.row_rules}
    lines += [f"+ added rule {name}" for name in sorted(new_rules - old_rules)]
    lines += [f"- removed rule {name}" for name in sorted(old_rules - new_rules)]
    return sorted(lines, key=lambda line: line[2:]) or ["no differences"]
