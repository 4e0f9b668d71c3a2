"""Vectorized validation of one upstream CSV against its contract.

The order of the gates matters for the error a user sees: bytes (empty, not
UTF-8) -> CSV structure -> header (which contract version, missing/unknown
columns) -> per-value types -> the pandera schema derived from the contract
(nulls, ranges, enums, uniqueness, cross-column rules).  Every violation
names file, row, column, value, rule and a hint.  Nothing here loops over
rows in Python.
"""

from __future__ import annotations

import datetime as dt
import difflib
import codecs
import csv
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from contracts.base import FeedTable
from contracts.derive import ColumnSpec, column_specs, pandera_schema, passes_in_one_pass

# Samples kept per rule; the rest is counted.
MAX_SAMPLES_PER_RULE = 50
MASK = "***"
# No field of these feeds is legitimately longer; a longer one is a broken export.
MAX_FIELD_BYTES = 4096
# pyarrow parses in blocks; a row must fit in one, so allow generous rows.
CSV_BLOCK_BYTES = 16 << 20

_HINTS = {
    "file.empty": "The file has zero bytes: re-export it from the source system.",
    "file.encoding": "Save the file as UTF-8 (a BOM is allowed).",
    "file.malformed_csv": "Check quoting and that every row has as many fields as the header.",
    "file.delimiter": "Use a comma as the field separator.",
    "file.empty_table": "A header-only tape is not a valid book: re-export with its rows.",
    "header.missing_column": "Add the column, or check it was not renamed.",
    "header.unknown_column": "Remove the column or ask for a new contract version.",
    "header.duplicate_column": "Each header name may appear once.",
    "null": "Fill the value; the column is required.",
    "unique": "Remove the duplicated rows.",
    "unique_together": "Remove the duplicated rows.",
    "type.integer": "Write a whole number without separators.",
    "type.decimal": "Write a '.'-decimal number without thousands separators.",
    "type.decimal_scale": "Round the amount to the number of decimals the contract allows.",
    "type.decimal_range": "No amount of these feeds is that large: check the column (an identifier or a shifted field?).",
    "type.date": "Write the date as YYYY-MM-DD.",
    "type.boolean": "Write true or false.",
}


@dataclass(frozen=True)
class Violation:
    file: str
    rule: str
    message: str
    row: int | None = None  # 1-based line in the file; the header is row 1
    column: str | None = None  # upstream header name
    value: str | None = None
    hint: str = ""

    def masked(self, pii_headers: frozenset[str]) -> "Violation":
        if self.column in pii_headers and self.value is not None:
            return Violation(**{**asdict(self), "value": MASK})
        return self

    def render(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        value = f" (value {self.value!r})" if self.value is not None else ""
        hint = f" Hint: {self.hint}" if self.hint else ""
        return f"{', '.join(where)}: rule {self.rule}: {self.message}{value}.{hint}"


@dataclass
class TableValidation:
    """The outcome of validating one file against one table's contract versions."""

    file: str
    contract: type[FeedTable] | None
    rows: int = 0
    violations: list[Violation] = field(default_factory=list)
    violation_counts: Counter = field(default_factory=Counter)
    frame: pl.DataFrame | None = None  # canonical, typed, clear values (stays in the secure zone)

    @property
    def ok(self) -> bool:
        return not self.violation_counts

    @property
    def contract_id(self) -> str | None:
        return self.contract.contract_id() if self.contract else None

    def add(self, violations: list[Violation]) -> None:
        for violation in violations:
            self.violation_counts[violation.rule] += 1
            if self.violation_counts[violation.rule] <= MAX_SAMPLES_PER_RULE:
                self.violations.append(violation)

    def pii_headers(self) -> frozenset[str]:
        if self.contract is None:
            return frozenset()
        return frozenset(spec.header for spec in column_specs(self.contract) if spec.pii)

    def report(self, *, mask_pii: bool) -> dict[str, Any]:
        pii = self.pii_headers() if mask_pii else frozenset()
        return {
            "file": self.file,
            "contract": self.contract_id,
            "rows": self.rows,
            "ok": self.ok,
            "violation_counts": dict(self.violation_counts),
            "violations": [asdict(v.masked(pii)) for v in self.violations],
            "samples_capped_at": MAX_SAMPLES_PER_RULE,
        }


def validate_csv(
    data: bytes,
    *,
    file: str,
    versions: tuple[type[FeedTable], ...],
    delivery_date: dt.date,
) -> TableValidation:
    """Validate the bytes of one CSV against the versions of its table's contract."""
    result = TableValidation(file=file, contract=None)
    frame = _read_csv(data, result)
    if frame is None:
        return result
    contract = _choose_version(list(frame.columns), versions, result)
    if contract is None:
        return result
    result.contract = contract
    result.rows = frame.height
    if frame.height < contract.min_rows:
        result.add([Violation(file, "file.empty_table", f"{contract.title} has no rows", hint=_HINTS["file.empty_table"])])
        return result
    typed = _parse_types(frame, contract, result)
    _run_pandera(typed, contract, delivery_date, result)
    if result.ok:
        result.frame = typed
    return result


def _read_csv(data: bytes, result: TableValidation) -> pl.DataFrame | None:
    """Bytes -> a frame of strings, or violations explaining why the bytes are not a valid CSV.

    pyarrow's reader is strict about the number of fields per row (a
    truncated last row is an error, not silently padded with nulls) and
    fast; every column is read as text so that typing is the contract's job.
    """
    file = result.file
    if not data:
        result.add([Violation(file, "file.empty", "the file is empty (0 bytes)", hint=_HINTS["file.empty"])])
        return None
    if not data.isascii():  # ASCII is UTF-8; checking that copies nothing, decoding copies the file
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            result.add([Violation(file, "file.encoding", f"not UTF-8 at byte {exc.start}", row=line,
                                  hint=_HINTS["file.encoding"])])
            return None
    body = data[3:] if data.startswith(codecs.BOM_UTF8) else data
    newline = body.find(b"\n")  # not split(): that would copy the whole body
    first_line = (body if newline < 0 else body[:newline]).decode("utf-8").rstrip("\r")
    header = next(csv.reader([first_line]), [])
    names = [name.strip() for name in header]
    if len(names) == 1 and any(sep in first_line for sep in (";", "\t", "|")):
        result.add([Violation(file, "file.delimiter", "the header has a single column: wrong field separator",
                              row=1, hint=_HINTS["file.delimiter"])])
        return None
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        result.add([Violation(file, "header.duplicate_column", "duplicate header", row=1, column=name,
                              hint=_HINTS["header.duplicate_column"]) for name in duplicates])
        return None
    positional = [f"c{i}" for i in range(len(names))]
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=positional, skip_rows=1, block_size=CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                # 64-bit offsets: polars converts them to its string views in half the time of 32-bit ones
                column_types={name: pa.large_string() for name in positional},
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        message = str(exc).removeprefix("CSV parse error: ").strip()
        snippet = message.split(": ", 1)[1] if ": " in message else ""
        offset = data.find(snippet.encode("utf-8")) if snippet else -1
        row = data.count(b"\n", 0, offset) + 1 if offset >= 0 else None
        result.add([Violation(file, "file.malformed_csv", f"cannot be parsed as CSV: {message[:300]}", row=row,
                              hint=_HINTS["file.malformed_csv"])])
        return None
    frame = pl.from_arrow(table).rename(dict(zip(positional, names)))
    # one cheap aggregate per column first; the rows are looked up only when a field is too long
    longest = frame.select(pl.max_horizontal(pl.col(names).str.len_bytes().max()).fill_null(0)).item()
    if longest > MAX_FIELD_BYTES:
        too_long = frame.select(
            pl.max_horizontal(pl.col(names).str.len_bytes()).fill_null(0).alias("longest"),
        ).with_row_index("row", offset=2).filter(pl.col("longest") > MAX_FIELD_BYTES)
        result.add([Violation(file, "file.field_too_long", f"a field of {longest:,} bytes exceeds {MAX_FIELD_BYTES:,}",
                              row=row, hint="Check the export: no field of these feeds is that long.")
                    for row, longest in too_long.iter_rows()])
        return None
    return frame


def _choose_version(
    header: list[str], versions: tuple[type[FeedTable], ...], result: TableValidation
) -> type[FeedTable] | None:
    """The version the header describes best: it must satisfy the version (no missing required,
    no unknown column); among those, the one with the fewest of its own columns absent, then the newest.
    Otherwise explain the differences from the closest version (schema drift)."""
    present = set(header)
    fitting, scored = [], []
    for contract in versions:
        specs = column_specs(contract)
        known = {spec.header for spec in specs}
        missing = [spec.header for spec in specs if spec.header_required and spec.header not in present]
        unknown = [name for name in header if name not in known]
        if not missing and not unknown:
            fitting.append((len(known - present), -contract.version, contract))
        scored.append((len(missing) + len(unknown), -contract.version, contract, missing, unknown))
    if fitting:
        return min(fitting, key=lambda item: item[:2])[2]
    _, _, closest, missing, unknown = min(scored, key=lambda item: item[:2])
    violations = []
    for name in missing:
        guess = difflib.get_close_matches(name, unknown, n=1, cutoff=0.6)
        hint = f"Found '{guess[0]}': was '{name}' renamed?" if guess else _HINTS["header.missing_column"]
        violations.append(Violation(result.file, "header.missing_column",
                                    f"required column '{name}' of {closest.contract_id()} is missing",
                                    row=1, column=name, hint=hint))
    for name in unknown:
        violations.append(Violation(result.file, "header.unknown_column",
                                    f"column '{name}' is not in {closest.contract_id()} (closest version; schema drift)",
                                    row=1, column=name, hint=_HINTS["header.unknown_column"]))
    result.add(violations)
    return None


# [0-9], not \d: polars' regular expressions are Unicode-aware, so \d also matches other scripts'
# digits ('١٢'), which the casts do not read: such a value would pass its screen and become null.
_INTEGER = r"^[+-]?[0-9]{1,18}$"
_DECIMAL = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _parse_expr(spec: ColumnSpec) -> tuple[pl.Expr, pl.Expr, list[tuple[pl.Expr, str, str]]]:
    """(typed value, screen, checks) for one column, as polars expressions.

    ``checks`` are (is-valid, rule, message); ``screen`` is valid exactly when every check is,
    in one expression (a decimal's format and scale in one regular expression): it is counted
    for every file, and the checks only for a column whose screen failed, to name the rule.
    """
    raw = pl.col(spec.header)
    if spec.kind == "integer":
        valid = raw.str.contains(_INTEGER)
        return raw.cast(pl.Int64, strict=False), valid, [(valid, "type.integer", "not an integer")]
    if spec.kind == "decimal":
        # decimal(18, 2) holds 16 digits before the point: the cast makes a longer value null (and a
        # default then replaces it), so the screen bounds the digits after any leading zeros
        whole = spec.polars_dtype.precision - spec.scale
        well_formed = raw.str.contains(_DECIMAL)
        fine_enough = ~raw.str.contains(rf"\.[0-9]{{{spec.scale + 1},}}$")
        small_enough = ~raw.str.contains(rf"^[+-]?0*[1-9][0-9]{{{whole},}}(\.|$)")
        decimals = rf"(\.[0-9]{{1,{spec.scale}}})?" if spec.scale else ""
        screen = raw.str.contains(rf"^[+-]?0*[0-9]{{1,{whole}}}{decimals}$")
        return raw.cast(spec.polars_dtype, strict=False), screen, [
            (well_formed, "type.decimal", "not a decimal number"),
            (fine_enough, "type.decimal_scale", f"more than {spec.scale} decimals"),
            (small_enough, "type.decimal_range", f"more than {whole} digits before the decimal point"),
        ]
    if spec.kind == "date":
        parsed = raw.str.to_date("%Y-%m-%d", strict=False)
        valid = raw.str.contains(_DATE) & parsed.is_not_null()
        return parsed, valid, [(valid, "type.date", "not a valid YYYY-MM-DD date")]
    if spec.kind == "boolean":
        lowered = raw.str.to_lowercase()
        valid = lowered.is_in(["true", "false"])
        return lowered == "true", valid, [(valid, "type.boolean", "not true/false")]
    return raw, pl.lit(True), []


def _parse_types(frame: pl.DataFrame, contract: type[FeedTable], result: TableValidation) -> pl.DataFrame:
    """The typed frame (the contract's column names and dtypes); type violations added to ``result``."""
    screened, typed_exprs = [], []
    for spec in column_specs(contract):
        if spec.header not in frame.columns:
            typed_exprs.append(pl.lit(spec.default, dtype=spec.polars_dtype).alias(spec.name))
            continue
        value, screen, checks = _parse_expr(spec)
        if spec.default is not None:
            value = value.fill_null(pl.lit(spec.default, dtype=spec.polars_dtype))
        typed_exprs.append(value.cast(spec.polars_dtype).alias(spec.name))
        if checks:
            screened.append((spec, screen, checks))
    if screened:
        # one aggregate per column; a column's rules and rows are looked up only when it failed
        present = [pl.col(spec.header).is_not_null() for spec, _, _ in screened]
        counts = frame.select([(is_present & ~screen).sum().alias(f"__bad{i}")
                               for i, ((_, screen, _), is_present) in enumerate(zip(screened, present))]).row(0)
        for (spec, _, checks), is_present, count in zip(screened, present, counts):
            if count:
                _add_type_violations(frame, spec, is_present, checks, result)
    return frame.select(typed_exprs)


def _add_type_violations(frame: pl.DataFrame, spec: ColumnSpec, is_present: pl.Expr,
                         checks: list[tuple[pl.Expr, str, str]], result: TableValidation) -> None:
    numbered = frame.with_row_index("__row", offset=2)  # the header is line 1
    for valid, rule, message in checks:
        failing = numbered.filter(is_present & ~valid)
        rows = failing["__row"].to_list()
        values = failing[spec.header].head(MAX_SAMPLES_PER_RULE).to_list()
        result.add([
            Violation(result.file, rule, message, row=row, column=spec.header, value=value,
                      hint=spec.hint or _HINTS.get(rule, ""))
            for row, value in zip(rows, values + [None] * (len(rows) - len(values)))
        ])


def _run_pandera(body: pl.DataFrame, contract: type[FeedTable], delivery_date: dt.date,
                 result: TableValidation) -> None:
    if passes_in_one_pass(body, contract, delivery_date):
        return  # the same rules in one polars pass; pandera is asked only to name failures
    import pandera.errors  # imported when a file fails, not by every run

    schema = pandera_schema(contract, delivery_date)
    try:
        schema.validate(body, lazy=True)
        return
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    specs = {spec.name: spec for spec in column_specs(contract)}
    type_flagged = {(v.row, v.column) for v in result.violations if v.rule.startswith("type.")}
    violations = []
    for case in cases.iter_rows(named=True):
        check = str(case["check"])
        column_name = case.get("column")
        spec = specs.get(column_name) if column_name else None
        rule, _, message = check.partition(": ")
        rule = {"not_nullable": "null", "field_uniqueness": "unique",
                "multiple_fields_uniqueness": "unique_together"}.get(rule, rule)
        if not message:
            message = {"null": "required value is empty", "unique": "duplicate value",
                       "unique_together": f"duplicate {contract.unique_together}"}.get(rule, check)
        index = case.get("index")
        row = int(index) + 2 if index is not None else None  # the frame's rows are the file's lines after the header
        header = spec.header if spec else None
        if rule == "null" and (row, header) in type_flagged:
            continue  # already reported as a type error
        if rule in ("dtype", "column_in_dataframe", "column_in_schema"):
            rule = "schema"
        hint = (spec.hint if spec and spec.hint else "") or _HINTS.get(rule, "")
        value = case.get("failure_case")
        rule_obj = next((r for r in contract.row_rules if r.name == rule), None)
        if rule_obj is not None:
            hint = rule_obj.hint or f"Fix the row so that: {rule_obj.description}."
            # show only the columns the rule reads, under their upstream headers
            row_values = json.loads(value) if isinstance(value, str) else {}
            value = json.dumps({specs[c].header: row_values.get(c) for c in rule_obj.columns}, default=str)
        violations.append(Violation(result.file, rule, message, row=row, column=header,
                                    value=None if value is None else str(value), hint=hint))
    violations.sort(key=lambda v: (v.row or 0, v.column or ""))
    result.add(violations)
