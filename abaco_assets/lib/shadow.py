"""Shadow runs for the cut-over: our kpi_portfolio_monthly against a legacy/Cascade KPI export.

During the cut-over both systems compute the portfolio KPIs for the same month-ends. The
reference export is a CSV with a month column and one column per KPI under its own names;
a small YAML maps those names to ours and sets how far each KPI may differ. The report has
one row per (month_end, kpi) with both values, the absolute and relative difference, the
tolerance and a status (ok, off, missing_ours, missing_reference), written as CSV for
analysts and as markdown for the cut-over ticket. A KPI that is off, or a month present on
one side only, fails the comparison; the CLI (`abaco shadow`) exits non-zero on it.

Mapping file (YAML):

    month_column: Month End          # the reference's month column (default: month_end)
    defaults: {abs: 0.01, rel: 0.0}  # tolerance when a KPI sets none
    kpis:                            # our column: reference column (+ tolerance)
      opb: {reference: Outstanding Principal, abs: 1.0}
      par30: {reference: PAR30, abs: 0.0005}
      weighted_apr: APR              # shorthand: just the reference name

A difference is within tolerance when |ours - reference| <= abs OR, for rel > 0,
|ours - reference| <= rel * |reference|. Both missing counts as equal, one missing as off.
Pure polars, no Dagster: unit-tested in abaco_assets_tests/unit/test_shadow.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

OUR_MONTH_COLUMN = "month_end"
STATUS_ORDER = ["off", "missing_ours", "missing_reference", "ok"]


@dataclass(frozen=True)
class KpiRule:
    kpi: str  # our column in kpi_portfolio_monthly
    reference: str  # the reference export's column
    abs_tolerance: float
    rel_tolerance: float


@dataclass(frozen=True)
class ShadowMapping:
    rules: tuple[KpiRule, ...]
    month_column: str = OUR_MONTH_COLUMN

    @staticmethod
    def from_dict(document: dict[str, Any]) -> ShadowMapping:
        defaults = document.get("defaults") or {}
        default_abs = float(defaults.get("abs", 0.0))
        default_rel = float(defaults.get("rel", 0.0))
        rules = []
        for kpi, spec in (document.get("kpis") or {}).items():
            if isinstance(spec, str):
                spec = {"reference": spec}
            spec = spec or {}
            rules.append(KpiRule(kpi=kpi, reference=str(spec.get("reference", kpi)),
                                 abs_tolerance=float(spec.get("abs", default_abs)),
                                 rel_tolerance=float(spec.get("rel", default_rel))))
        if not rules:
            raise ValueError("the shadow mapping lists no KPI (kpis: {our_column: reference_column})")
        for rule in rules:
            if rule.abs_tolerance < 0 or rule.rel_tolerance < 0:
                raise ValueError(f"negative tolerance for {rule.kpi}")
        return ShadowMapping(rules=tuple(rules), month_column=str(document.get("month_column", OUR_MONTH_COLUMN)))

    @staticmethod
    def load(path: Path) -> ShadowMapping:
        return ShadowMapping.from_dict(yaml.safe_load(Path(path).read_text()) or {})


def month_ends(values: pl.Expr) -> pl.Expr:
    """Month labels as the month's last day: 2026-10-31, 2026-10-15 and 2026-10 all mean October 2026."""
    text = values.cast(pl.Utf8).str.strip_chars()
    parsed = pl.coalesce(text.str.to_date("%Y-%m-%d", strict=False), text.str.to_date("%Y-%m", strict=False),
                         text.str.to_date("%d/%m/%Y", strict=False))
    return parsed.dt.month_end()


def _long(frame: pl.DataFrame, month_column: str, columns: dict[str, str], side: str) -> pl.DataFrame:
    """(month_end, kpi, value) from a wide frame; `columns` maps the frame's column -> our KPI name."""
    selected = frame.select(
        month_ends(pl.col(month_column)).alias("month_end"),
        *[pl.col(source).cast(pl.Float64, strict=False).alias(kpi) for source, kpi in columns.items()],
    )
    bad = selected.filter(pl.col("month_end").is_null()).height
    if bad:
        raise ValueError(f"{side}: {bad} row(s) with a month that is not a date in column {month_column!r}")
    duplicated = selected.group_by("month_end").len().filter(pl.col("len") > 1)
    if duplicated.height:
        months = ", ".join(str(m) for m in duplicated["month_end"].sort().to_list())
        raise ValueError(f"{side}: more than one row for month_end {months}")
    return selected.unpivot(index="month_end", variable_name="kpi", value_name=side)


@dataclass
class ShadowReport:
    rows: pl.DataFrame
    mapping: ShadowMapping
    written: list[Path] = field(default_factory=list)

    @property
    def failures(self) -> pl.DataFrame:
        return self.rows.filter(pl.col("status") != "ok")

    @property
    def ok(self) -> bool:
        return self.failures.height == 0

    def per_kpi(self) -> pl.DataFrame:
        return (self.rows.group_by("kpi", maintain_order=True)
                .agg(pl.len().alias("months"), (pl.col("status") != "ok").sum().alias("not_ok"),
                     pl.col("abs_diff").max().alias("max_abs_diff"), pl.col("rel_diff").max().alias("max_rel_diff")))

    def markdown(self, max_rows: int = 50) -> str:
        months = self.rows["month_end"].n_unique()
        lines = [
            "# Shadow run: kpi_portfolio_monthly against the reference",
            "",
            f"**{'PASS' if self.ok else 'FAIL'}**: {months} month-end(s), {len(self.mapping.rules)} KPI(s), "
            f"{self.failures.height} difference(s) outside tolerance or missing.",
            "",
            "| kpi | months | not ok | max abs diff | max rel diff |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for row in self.per_kpi().iter_rows(named=True):
            lines.append(f"| {row['kpi']} | {row['months']} | {row['not_ok']} | {_fmt(row['max_abs_diff'])} | "
                         f"{_fmt(row['max_rel_diff'])} |")
        if self.failures.height:
            lines += ["", "## Outside tolerance or missing", "",
                      "| month_end | kpi | ours | reference | abs diff | rel diff | tolerance | status |",
                      "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]
            for row in self.failures.head(max_rows).iter_rows(named=True):
                lines.append(f"| {row['month_end']} | {row['kpi']} | {_fmt(row['ours'])} | {_fmt(row['reference'])} | "
                             f"{_fmt(row['abs_diff'])} | {_fmt(row['rel_diff'])} | {row['tolerance']} | "
                             f"{row['status']} |")
            if self.failures.height > max_rows:
                lines.append(f"\n… and {self.failures.height - max_rows} more in the CSV.")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path, stem: str = "shadow_kpi_portfolio_monthly") -> list[Path]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
        self.rows.write_csv(csv_path)
        md_path.write_text(self.markdown())
        self.written = [csv_path, md_path]
        return self.written


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def compare(ours: pl.DataFrame, reference: pl.DataFrame, mapping: ShadowMapping) -> ShadowReport:
    """Every (month_end, kpi) of either side, with both values and whether they agree."""
    missing_ours = [rule.kpi for rule in mapping.rules if rule.kpi not in ours.columns]
    missing_reference = [rule.reference for rule in mapping.rules if rule.reference not in reference.columns]
    if OUR_MONTH_COLUMN not in ours.columns or missing_ours:
        raise ValueError(f"kpi_portfolio_monthly lacks column(s): {[OUR_MONTH_COLUMN, *missing_ours]}")
    if mapping.month_column not in reference.columns or missing_reference:
        raise ValueError(f"the reference lacks column(s) {[mapping.month_column, *missing_reference]}; "
                         f"it has {reference.columns}")

    ours_long = _long(ours, OUR_MONTH_COLUMN, {rule.kpi: rule.kpi for rule in mapping.rules}, "ours")
    reference_long = _long(reference, mapping.month_column, {rule.reference: rule.kpi for rule in mapping.rules},
                           "reference")
    months_ours = ours_long.select("month_end").unique().with_columns(pl.lit(True).alias("in_ours"))
    months_reference = reference_long.select("month_end").unique().with_columns(pl.lit(True).alias("in_reference"))
    tolerances = pl.DataFrame({
        "kpi": [rule.kpi for rule in mapping.rules],
        "abs_tolerance": [rule.abs_tolerance for rule in mapping.rules],
        "rel_tolerance": [rule.rel_tolerance for rule in mapping.rules],
    })
    diff = pl.col("ours") - pl.col("reference")
    rows = (
        ours_long.join(reference_long, on=["month_end", "kpi"], how="full", coalesce=True)
        .join(months_ours, on="month_end", how="left")
        .join(months_reference, on="month_end", how="left")
        .join(tolerances, on="kpi", how="left")
        .with_columns(
            diff.abs().alias("abs_diff"),
            pl.when(pl.col("reference").abs() > 0).then(diff.abs() / pl.col("reference").abs()).alias("rel_diff"),
        )
        .with_columns(
            pl.when(pl.col("in_ours").is_null()).then(pl.lit("missing_ours"))
            .when(pl.col("in_reference").is_null()).then(pl.lit("missing_reference"))
            .when(pl.col("ours").is_null() & pl.col("reference").is_null()).then(pl.lit("ok"))
            .when(pl.col("ours").is_null() | pl.col("reference").is_null()).then(pl.lit("off"))
            .when(pl.col("abs_diff") <= pl.col("abs_tolerance")).then(pl.lit("ok"))
            .when((pl.col("rel_tolerance") > 0)
                  & (pl.col("abs_diff") <= pl.col("rel_tolerance") * pl.col("reference").abs())).then(pl.lit("ok"))
            .otherwise(pl.lit("off"))
            .alias("status"),
            pl.format("abs<={} or rel<={}", pl.col("abs_tolerance"), pl.col("rel_tolerance")).alias("tolerance"),
        )
        .with_columns(pl.col("kpi").cast(pl.Enum([rule.kpi for rule in mapping.rules])).alias("kpi_order"))
        .sort(["month_end", "kpi_order"])
        .select("month_end", "kpi", "ours", "reference", "abs_diff", "rel_diff", "tolerance", "status")
    )
    return ShadowReport(rows=rows, mapping=mapping)


def run_shadow(ours: pl.DataFrame, reference_csv: Path, mapping_yaml: Path, out_dir: Path | None = None) -> ShadowReport:
    """Read the export (every column as text, then numbers parsed per KPI), compare, write the report."""
    reference = pl.read_csv(reference_csv, infer_schema=False)
    report = compare(ours, reference, ShadowMapping.load(mapping_yaml))
    if out_dir is not None:
        report.write(out_dir)
    return report
