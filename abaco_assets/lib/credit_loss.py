"""IFRS 9 style expected credit loss of the active book (kpis.md, "Expected credit loss").

A management estimate, not a statutory figure: ECL = PD x LGD x EAD per
loan, with PDs taken from the book's own observed 12-month default
frequency rather than from a rating model the lender does not have.

- Stage by DPD on the as-of snapshot: 1 below 30, 2 from 30 to 89, 3 from 90.
- PD12 per (segment, stage) = outstanding-weighted share of the loans active
  in that cell at the cohort snapshot (12 month-ends before as-of) that
  reached DPD >= 90 or were written off at any month-end snapshot after it,
  up to as-of. A cell absent from the cohort takes the whole-book rate. With
  less than 12 months of history the cohort is the oldest snapshot within
  the last 12 months, w months back, and its rate p_w is annualized as
  1 - (1 - p_w)^(12 / w) (constant monthly hazard).
- Stage 1 PD: the 12-month PD, shortened to the remaining term when the loan
  matures sooner; stage 2: lifetime PD over the remaining term; stage 3: 1.
- LGD = the cashflow severity; EAD = outstanding_principal.

"Months left" is the same integer count the cashflow engine amortizes over
(calendar months from the as-of month to the maturity month, at least 1), so
a loan at or past maturity still carries one month of default risk instead
of a PD of 0.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import polars as pl

from abaco_assets.lib.cashflow import DEFAULT_DPD, month_index, months_to_maturity

PD_HORIZON_MONTHS = 12
STAGE_2_DPD = 30

PANEL_COLUMNS = (
    "month_end", "loan_id", "segment", "outstanding_principal", "days_past_due", "loan_status", "is_active",
    "maturity_date",
)
HISTORY_COLUMNS = ("month_end", "loan_id", "segment", "outstanding_principal", "days_past_due", "loan_status",
                   "is_active")


class ExpectedCreditLoss(NamedTuple):
    loans: pl.DataFrame
    by_segment_stage: pl.DataFrame
    coverage: pl.DataFrame
    pd12: pl.DataFrame


def stage_from_dpd(days_past_due: str | pl.Expr = "days_past_due") -> pl.Expr:
    """IFRS 9 stage from days past due: 1 (< 30), 2 (30..89), 3 (>= 90)."""
    dpd = pl.col(days_past_due) if isinstance(days_past_due, str) else days_past_due
    return (
        pl.when(dpd >= DEFAULT_DPD).then(3).when(dpd >= STAGE_2_DPD).then(2).otherwise(1).cast(pl.Int8).alias("stage")
    )


def _require_columns(frame: pl.DataFrame, columns: tuple[str, ...], frame_name: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"{frame_name} lacks columns {missing}; it has {frame.columns}")


def _annualize(pd_window: pl.Expr, window_months: int) -> pl.Expr:
    return 1.0 - (1.0 - pd_window) ** (PD_HORIZON_MONTHS / window_months)


def measure_pd12(panel: pl.DataFrame, as_of: dt.date | None = None) -> pl.DataFrame:
    """Observed 12-month default frequency per (segment, stage) and for the whole book.

    panel (one row per loan_id and month_end snapshot, history up to as-of):
    month_end, loan_id, segment, outstanding_principal, days_past_due,
    loan_status, is_active. as_of: the latest month_end when None.

    The cohort is the snapshot of the calendar month 12 months before as-of,
    or, when that month has no tape, the oldest snapshot within those 12
    months (window w < 12 months, annualized). The cohort's loans are those
    active at that snapshot, staged by their DPD there and weighted by their
    outstanding there; a loan is defaulted when any later snapshot up to as-of
    shows DPD >= 90 or status Written Off.

    Returns one row per cohort cell (scope "cell") plus one whole-book row
    (scope "book", segment and stage null): month_end (as-of),
    cohort_month_end, window_months, scope, segment, stage, cohort_opb,
    defaulted_opb, pd_window, pd12. Without any earlier snapshot there is no
    cohort: a single book row with null rates.
    """
    _require_columns(panel, HISTORY_COLUMNS, "panel")
    history = panel.with_columns(pl.col("month_end").cast(pl.Date)).with_columns(snapshot_index=month_index("month_end"))
    as_of = as_of or history.get_column("month_end").max()
    as_of_index = as_of.year * 12 + as_of.month - 1
    history = history.filter(pl.col("snapshot_index") <= as_of_index)

    earlier = history.filter(pl.col("snapshot_index").is_between(as_of_index - PD_HORIZON_MONTHS, as_of_index - 1))
    schema = {
        "month_end": pl.Date, "cohort_month_end": pl.Date, "window_months": pl.Int32, "scope": pl.String,
        "segment": pl.String, "stage": pl.Int8, "cohort_opb": pl.Float64, "defaulted_opb": pl.Float64,
        "pd_window": pl.Float64, "pd12": pl.Float64,
    }
    if earlier.height == 0:
        return pl.DataFrame(
            {"month_end": [as_of], "cohort_month_end": [None], "window_months": [None], "scope": ["book"],
             "segment": [None], "stage": [None], "cohort_opb": [0.0], "defaulted_opb": [0.0],
             "pd_window": [None], "pd12": [None]},
            schema=schema,
        )
    cohort_index = earlier.get_column("snapshot_index").min()
    window_months = as_of_index - cohort_index
    cohort_month_end = earlier.filter(pl.col("snapshot_index") == cohort_index).get_column("month_end").max()

    cohort = history.filter((pl.col("snapshot_index") == cohort_index) & pl.col("is_active")).select(
        "loan_id", pl.col("segment").cast(pl.String), stage_from_dpd(),
        cohort_outstanding=pl.col("outstanding_principal").cast(pl.Float64),
    )
    defaulted_loans = (
        history.filter(
            (pl.col("snapshot_index") > cohort_index)
            & ((pl.col("days_past_due") >= DEFAULT_DPD) | (pl.col("loan_status") == "Written Off"))
        )
        .select("loan_id").unique()
        .with_columns(defaulted=pl.lit(True))
    )
    cohort = cohort.join(defaulted_loans, on="loan_id", how="left").with_columns(pl.col("defaulted").fill_null(False))

    def rates(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pd_window=pl.when(pl.col("cohort_opb") > 0).then(pl.col("defaulted_opb") / pl.col("cohort_opb"))
        ).with_columns(pd12=_annualize(pl.col("pd_window"), window_months))

    sums = [
        pl.col("cohort_outstanding").sum().alias("cohort_opb"),
        pl.col("cohort_outstanding").filter(pl.col("defaulted")).sum().alias("defaulted_opb"),
    ]
    cells = rates(cohort.group_by("segment", "stage").agg(*sums)).with_columns(scope=pl.lit("cell"))
    book = rates(cohort.select(*sums)).with_columns(
        scope=pl.lit("book"), segment=pl.lit(None, pl.String), stage=pl.lit(None, pl.Int8)
    )
    return (
        pl.concat([cells.sort("segment", "stage"), book], how="diagonal")
        .with_columns(
            month_end=pl.lit(as_of, pl.Date),
            cohort_month_end=pl.lit(cohort_month_end, pl.Date),
            window_months=pl.lit(window_months, pl.Int32),
        )
        .select(list(schema))
        .cast(schema)
    )


def expected_credit_loss(panel: pl.DataFrame, severity: float, as_of: dt.date | None = None) -> ExpectedCreditLoss:
    """ECL of the as-of snapshot's active loans, per loan and rolled up.

    panel: the month-end loan panel, columns month_end, loan_id, segment,
    outstanding_principal, days_past_due, loan_status, is_active,
    maturity_date; it holds both the as-of snapshot (the book measured) and
    the earlier snapshots (the PD history). severity: LGD, e.g.
    ``measure_assumptions(...)["severity"]``. as_of: a month_end of the panel
    (the latest when None).

    Returns (money rounded to cents after summing, so roll-ups are sums of
    unrounded per-loan values):

    - loans: month_end, loan_id, segment, stage, months_left, ead, pd12,
      pd12_source ("cell" or "whole_book"), pd, lgd, ecl.
    - by_segment_stage: month_end, segment, stage, loans, ead, ecl.
    - coverage: month_end, scope ("book" or "segment"), segment (null for the
      book), ead, ecl, par30_amount (outstanding of active loans with
      DPD >= 30), coverage = ecl / par30_amount (null when par30_amount is 0).
    - pd12: ``measure_pd12``'s table.

    ECL is null for stage 1 and 2 loans when the book has no history at all
    (no PD can be observed), and a roll-up containing such a loan is null
    rather than silently understated.
    """
    _require_columns(panel, PANEL_COLUMNS, "panel")
    as_of = as_of or panel.get_column("month_end").cast(pl.Date).max()
    pd12_table = measure_pd12(panel, as_of)
    book_pd12 = pd12_table.filter(pl.col("scope") == "book").get_column("pd12")[0]
    cell_pd12 = pd12_table.filter(pl.col("scope") == "cell").select("segment", "stage", cell_pd12="pd12")

    months_left = pl.col("months_left")
    pd12 = pl.col("pd12")
    loans = (
        panel.filter((pl.col("month_end").cast(pl.Date) == as_of) & pl.col("is_active"))
        .select(
            month_end=pl.lit(as_of, pl.Date),
            loan_id="loan_id",
            segment=pl.col("segment").cast(pl.String),
            stage=stage_from_dpd(),
            months_left=months_to_maturity(pl.col("maturity_date").cast(pl.Date), as_of),
            ead=pl.col("outstanding_principal").cast(pl.Float64),
        )
        .join(cell_pd12, on=["segment", "stage"], how="left")
        .with_columns(
            pd12=pl.coalesce("cell_pd12", pl.lit(book_pd12, pl.Float64)),
            pd12_source=pl.when(pl.col("cell_pd12").is_not_null()).then(pl.lit("cell")).otherwise(pl.lit("whole_book")),
        )
        .with_columns(
            pd=pl.when(pl.col("stage") == 3).then(pl.lit(1.0))
            .when(pl.col("stage") == 2).then(1.0 - (1.0 - pd12) ** (months_left / PD_HORIZON_MONTHS))
            .otherwise(1.0 - (1.0 - pd12) ** (months_left.clip(upper_bound=PD_HORIZON_MONTHS) / PD_HORIZON_MONTHS)),
            lgd=pl.lit(float(severity)),
        )
        .with_columns(ecl=pl.col("pd") * pl.col("lgd") * pl.col("ead"))
        .select("month_end", "loan_id", "segment", "stage", "months_left", "ead", "pd12", "pd12_source", "pd", "lgd",
                "ecl")
        .sort("loan_id")
    )

    def null_if_any_null(column: str) -> pl.Expr:
        return pl.when(pl.col(column).null_count() > 0).then(None).otherwise(pl.col(column).sum())

    by_segment_stage = (
        loans.group_by("month_end", "segment", "stage")
        .agg(loans=pl.len().cast(pl.Int64), ead=pl.col("ead").sum(), ecl=null_if_any_null("ecl"))
        .sort("segment", "stage")
    )
    coverage_sums = [
        pl.col("ead").sum().alias("ead"),
        null_if_any_null("ecl").alias("ecl"),
        pl.col("ead").filter(pl.col("stage") >= 2).sum().alias("par30_amount"),
    ]
    coverage = pl.concat(
        [
            loans.group_by("month_end").agg(*coverage_sums).with_columns(
                scope=pl.lit("book"), segment=pl.lit(None, pl.String)),
            loans.group_by("month_end", "segment").agg(*coverage_sums).with_columns(scope=pl.lit("segment"))
            .sort("segment"),
        ],
        how="diagonal",
    ).with_columns(
        coverage=pl.when(pl.col("par30_amount") > 0).then(pl.col("ecl") / pl.col("par30_amount"))
    ).select("month_end", "scope", "segment", "ead", "ecl", "par30_amount", "coverage")

    money = ["ead", "ecl"]
    return ExpectedCreditLoss(
        loans=loans.with_columns(pl.col(money).round(2)),
        by_segment_stage=by_segment_stage.with_columns(pl.col(money).round(2)),
        coverage=coverage.with_columns(pl.col(*money, "par30_amount").round(2)),
        pd12=pd12_table,
    )
