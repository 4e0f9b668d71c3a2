"""Borrowing base and covenant guardrails (kpis.md, "Covenant / borrowing-base monitor").

The monitor reads the KPI mart (``kpi_portfolio_monthly``) instead of
recomputing PAR, concentration or collections, so the board pack and the
lender's compliance certificate can never disagree with the marts. The only
thing the mart does not carry is each customer's balance, which the single
obligor limit and the borrowing base's concentration haircut need; that comes
in as a small per-customer frame.

Limits are fractions, compared after rounding the measured value to 12
decimals: the mart's ratios are computed in SQL and a value that is exactly
4 % on paper must not fail "<= 4 %" because of a stray 1e-17.
"""

from __future__ import annotations

import operator
from typing import Callable

import polars as pl

ADVANCE_RATE = 0.8
"""Borrowing base = advance rate x eligible OPB."""

ELIGIBLE_MAX_DPD = 60
"""Loans at DPD >= 60 are ineligible collateral (eligible means DPD < 60)."""

OBLIGOR_LIMIT = 0.04
"""Per-customer share of total OPB above which the balance is ineligible, and the single-obligor covenant."""

NPL180_LIMIT = 0.04
TOP10_LIMIT = 0.30
COLLECTION_RATE_FLOOR = 0.96
COLLECTION_WINDOW_MONTHS = 6
COMPARISON_DECIMALS = 12

KPI_COLUMNS = ("month_end", "opb", "npl180_ratio", "top10_concentration", "collected_total", "scheduled_due")
CUSTOMER_COLUMNS = ("month_end", "customer_id", "opb", "opb_dpd_lt60")

OPERATORS: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def _require_columns(frame: pl.DataFrame, columns: tuple[str, ...], frame_name: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"{frame_name} lacks columns {missing}; it has {frame.columns}")


def _month_index(column: str) -> pl.Expr:
    return pl.col(column).dt.year().cast(pl.Int32) * 12 + pl.col(column).dt.month().cast(pl.Int32) - 1


def _kpis(kpi_monthly: pl.DataFrame) -> pl.DataFrame:
    _require_columns(kpi_monthly, KPI_COLUMNS, "kpi_monthly")
    return kpi_monthly.select(
        pl.col("month_end").cast(pl.Date),
        *[pl.col(name).cast(pl.Float64) for name in KPI_COLUMNS[1:]],
    )


def _customers(customer_opb: pl.DataFrame) -> pl.DataFrame:
    _require_columns(customer_opb, CUSTOMER_COLUMNS, "customer_opb")
    return customer_opb.select(
        pl.col("month_end").cast(pl.Date), "customer_id",
        customer_opb=pl.col("opb").cast(pl.Float64), customer_opb_dpd_lt60=pl.col("opb_dpd_lt60").cast(pl.Float64),
    )


def borrowing_base(kpi_monthly: pl.DataFrame, customer_opb: pl.DataFrame) -> pl.DataFrame:
    """Eligible OPB and borrowing base per month_end.

    Eligible OPB = OPB of active loans with DPD < 60, less each customer's
    excess above 4 % of total OPB; only the excess is ineligible, so a
    customer contributes min(its DPD < 60 balance, 4 % x total OPB). The cap
    applies to the customer's eligible balance: a customer whose excess is
    already delinquent collateral loses nothing twice.

    kpi_monthly (mart kpi_portfolio_monthly): month_end, opb (total OPB, the
    4 % base), plus the other KPI_COLUMNS.
    customer_opb (one row per month_end and customer with active loans):
    month_end, customer_id, opb (the customer's OPB), opb_dpd_lt60 (its OPB
    over active loans with DPD < 60).

    Returns one row per month_end of kpi_monthly: month_end, opb,
    opb_dpd_lt60, concentration_excess, eligible_opb, advance_rate,
    borrowing_base (money rounded to cents at the end).
    """
    kpis = _kpis(kpi_monthly).select("month_end", "opb")
    per_customer = (
        _customers(customer_opb)
        .join(kpis, on="month_end", how="inner")
        .with_columns(
            concentration_excess=(pl.col("customer_opb_dpd_lt60") - OBLIGOR_LIMIT * pl.col("opb")).clip(lower_bound=0.0)
        )
        .group_by("month_end")
        .agg(
            opb_dpd_lt60=pl.col("customer_opb_dpd_lt60").sum(),
            concentration_excess=pl.col("concentration_excess").sum(),
        )
    )
    money = ["opb", "opb_dpd_lt60", "concentration_excess", "eligible_opb", "borrowing_base"]
    return (
        kpis.join(per_customer, on="month_end", how="left")
        .with_columns(pl.col("opb_dpd_lt60", "concentration_excess").fill_null(0.0))
        .with_columns(eligible_opb=pl.col("opb_dpd_lt60") - pl.col("concentration_excess"))
        .with_columns(advance_rate=pl.lit(ADVANCE_RATE), borrowing_base=ADVANCE_RATE * pl.col("eligible_opb"))
        .with_columns(pl.col(money).round(2))
        .select("month_end", *money[:4], "advance_rate", "borrowing_base")
        .sort("month_end")
    )


def collection_rate_trailing(kpi_monthly: pl.DataFrame, window_months: int = COLLECTION_WINDOW_MONTHS) -> pl.DataFrame:
    """Sum collected_total / sum scheduled_due over the calendar months M-5..M, per month_end.

    A ratio of sums (a month with little due cannot swing it), over the mart
    rows whose month falls in the window (a month without a tape has no row).
    Returns month_end, collected_total_6m, scheduled_due_6m,
    collection_rate_6m (null when nothing was due).
    """
    kpis = _kpis(kpi_monthly).with_columns(month_index=_month_index("month_end"))
    windows = (
        kpis.select("month_end", "month_index")
        .join(kpis.select(past_index="month_index", past_collected="collected_total", past_due="scheduled_due"),
              how="cross")
        .filter(pl.col("past_index").is_between(pl.col("month_index") - window_months + 1, pl.col("month_index")))
        .group_by("month_end")
        .agg(collected_total_6m=pl.col("past_collected").sum(), scheduled_due_6m=pl.col("past_due").sum())
    )
    return windows.with_columns(
        collection_rate_6m=pl.when(pl.col("scheduled_due_6m") != 0).then(
            pl.col("collected_total_6m") / pl.col("scheduled_due_6m"))
    ).sort("month_end")


def covenant_guardrails(kpi_monthly: pl.DataFrame, customer_opb: pl.DataFrame) -> pl.DataFrame:
    """Pass/fail rows of the four guardrails per month_end.

    - ``npl180``: npl180_ratio (mart) < 4 %
    - ``top10_concentration``: top10_concentration (mart) <= 30 %
    - ``single_obligor``: largest customer OPB / opb <= 4 %
    - ``collection_rate_6m``: ``collection_rate_trailing`` >= 96 %

    Inputs as in ``borrowing_base``. Returns one row per (month_end,
    covenant): month_end, covenant, measured_value, threshold, operator,
    passed. measured_value is null when its denominator is 0 (or the mart
    value is null), and then passed is null too: an unmeasurable covenant is
    neither met nor breached, the board pack shows it as such.
    """
    kpis = _kpis(kpi_monthly)
    largest_customer = _customers(customer_opb).group_by("month_end").agg(
        largest_customer_opb=pl.col("customer_opb").max())
    measured = (
        kpis.join(largest_customer, on="month_end", how="left")
        .join(collection_rate_trailing(kpi_monthly).select("month_end", "collection_rate_6m"), on="month_end",
              how="left")
        .with_columns(
            single_obligor=pl.when(pl.col("opb") != 0).then(
                pl.col("largest_customer_opb").fill_null(0.0) / pl.col("opb"))
        )
    )
    rules = [
        ("npl180", "npl180_ratio", "<", NPL180_LIMIT),
        ("top10_concentration", "top10_concentration", "<=", TOP10_LIMIT),
        ("single_obligor", "single_obligor", "<=", OBLIGOR_LIMIT),
        ("collection_rate_6m", "collection_rate_6m", ">=", COLLECTION_RATE_FLOOR),
    ]
    rows = [
        measured.select(
            "month_end",
            covenant=pl.lit(covenant),
            measured_value=pl.col(column),
            threshold=pl.lit(threshold),
            operator=pl.lit(symbol),
            passed=OPERATORS[symbol](pl.col(column).round(COMPARISON_DECIMALS), pl.lit(threshold)),
        )
        for covenant, column, symbol, threshold in rules
    ]
    order = pl.Enum([rule[0] for rule in rules])
    return (
        pl.concat(rows)
        .sort("month_end", pl.col("covenant").cast(order))
    )
