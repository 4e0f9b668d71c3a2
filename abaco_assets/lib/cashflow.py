"""Cashflow projection of the active book (kpis.md, "Cashflow projection").

Two steps, both pure functions over polars frames:

* ``measure_assumptions`` turns the month-end loan panel and the monthly
  principal flows into the default (MDR), prepayment (SMM) and loss-severity
  assumptions, with Cascade's definitions and trailing-window ratios of sums.
* ``project_cashflows`` re-amortizes every active loan itself and runs the
  book forward month by month in SIFMA order (defaults, then scheduled
  amortisation, then prepayment).

Why re-amortize instead of reading the schedule: the schedule on the tape is
the contractual one at origination; after partial payments, restructurings
and delinquency it no longer describes what the outstanding balance will pay.
A level payment of today's outstanding over the months left is what a
servicer would re-bill, and it is checkable against numpy-financial.

Money is float64 throughout the projection and rounded to cents once, after
summing over loans: rounding per loan and month would make the portfolio
totals drift by up to half a cent per loan.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import TypeVar

import numpy as np
import polars as pl

DEFAULT_SEVERITY = 0.6
"""Loss severity used until the book has observed any recovery cash (kpis.md)."""

RECOVERY_LAG_MONTHS = 6
"""Months between a default and the cash recovered on it (kpis.md)."""

TRAILING_WINDOW_MONTHS = 6
"""MDR and SMM are measured over the 6 calendar months ending at the as-of month."""

DEFAULT_DPD = 90
"""Days past due at which a loan counts as defaulted (and stage 3 in ECL)."""

PROJECTION_MONTHS = 24

DAY_COUNT_BASIS = 360
"""Factoring discounts accrue actual days over a 360-day year."""

CLOSED_STATUSES = ("Complete", "Written Off")

ArrayOrFloat = TypeVar("ArrayOrFloat", float, np.ndarray)


# --------------------------------------------------------------------------- rate conversions


def cpr_from_smm(smm: ArrayOrFloat) -> ArrayOrFloat:
    """Annual constant prepayment rate from a single monthly mortality: 1 - (1 - SMM)^12."""
    return 1.0 - (1.0 - smm) ** 12


def smm_from_cpr(cpr: ArrayOrFloat) -> ArrayOrFloat:
    """Single monthly mortality from an annual CPR: 1 - (1 - CPR)^(1/12)."""
    return 1.0 - (1.0 - cpr) ** (1.0 / 12.0)


def cdr_from_mdr(mdr: ArrayOrFloat) -> ArrayOrFloat:
    """Annual constant default rate from a monthly default rate: 1 - (1 - MDR)^12."""
    return 1.0 - (1.0 - mdr) ** 12


def mdr_from_cdr(cdr: ArrayOrFloat) -> ArrayOrFloat:
    """Monthly default rate from an annual CDR: 1 - (1 - CDR)^(1/12)."""
    return 1.0 - (1.0 - cdr) ** (1.0 / 12.0)


# --------------------------------------------------------------------------- shared calendar helpers


def month_index(column: str | pl.Expr) -> pl.Expr:
    """Months since year 0 of a date column, so calendar-month arithmetic is integer subtraction."""
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.dt.year().cast(pl.Int32) * 12 + expr.dt.month().cast(pl.Int32) - 1


def months_to_maturity(maturity_date: str | pl.Expr, as_of: dt.date) -> pl.Expr:
    """Projected months through the maturity month, at least 1.

    Counted in calendar months from the as-of month to the maturity month: a
    monthly loan observed on 31 Jan and maturing on 15 Jul has installments
    in Feb..Jul, i.e. 6. A loan maturing in the as-of month or earlier gets 1,
    so whatever is still outstanding falls due in the first projected month.
    """
    as_of_index = as_of.year * 12 + as_of.month - 1
    return (month_index(maturity_date) - as_of_index).clip(lower_bound=1).cast(pl.Int32)


def add_months_month_end(day: dt.date, months: int) -> dt.date:
    """Last calendar day of the month ``months`` after the month of ``day``."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def _require_columns(frame: pl.DataFrame, columns: tuple[str, ...], frame_name: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"{frame_name} lacks columns {missing}; it has {frame.columns}")


def _ratio(numerator: float, denominator: float) -> float | None:
    """A ratio that is null, not 0 or inf, when its denominator is 0 (kpis.md conventions)."""
    return None if denominator == 0 else numerator / denominator


# --------------------------------------------------------------------------- assumptions

PANEL_COLUMNS_FOR_ASSUMPTIONS = (
    "month_end", "loan_id", "outstanding_principal", "days_past_due", "loan_status", "is_active",
    "write_off_amount",
)
FLOW_COLUMNS = ("month_end", "loan_id", "paid_principal", "scheduled_principal")
RECOVERY_COLUMNS = ("month_end", "loan_id", "recovered_amount")


def monthly_performance(panel: pl.DataFrame, principal_flows: pl.DataFrame) -> pl.DataFrame:
    """Per calendar month with a start and an end snapshot: the MDR and SMM numerators and denominators.

    A month M is measured only when the month-end snapshot of M-1 (its start)
    exists, as roll rates do; the population is the loans active at that start
    snapshot (loans disbursed during M have no start balance and are left out
    of both numerator and denominator).

    - ``start_opb``: OPB of the start snapshot (MDR denominator).
    - ``default_principal``: exposure of loans with DPD < 90 at the start that
      are at DPD >= 90 (still active) or Written Off at the end snapshot; the
      exposure is the end outstanding, or write_off_amount when written off,
      as the vintage curves measure it. Loans already at DPD >= 90 at the start
      are not *newly* defaulted and do not count again when written off.
    - ``prepaid_principal`` = sum(paid_principal - scheduled_principal) and
      ``prepay_base`` = sum(start outstanding - scheduled_principal), both over
      the loans non-delinquent (DPD 0) at the start snapshot: Cascade's SMM
      measures voluntary prepayment of the performing pool, so the delinquent
      balances (which move through MDR) are kept out of both sides.

    panel (one row per loan_id and month_end snapshot): month_end, loan_id,
    outstanding_principal, days_past_due, loan_status, is_active,
    write_off_amount.
    principal_flows (one row per loan_id and month, absent = 0; month_end is
    any date in the calendar month of the flows, matched to that month's
    snapshot): month_end, loan_id, paid_principal (Settled
    principal paid in the month), scheduled_principal (principal of
    installments due in the month).

    Returns one row per measured month: month_end, start_month_end, start_opb,
    default_principal, prepaid_principal, prepay_base, mdr, smm (monthly
    ratios, for audit only: the trailing assumptions are ratios of the sums).
    """
    _require_columns(panel, PANEL_COLUMNS_FOR_ASSUMPTIONS, "panel")
    _require_columns(principal_flows, FLOW_COLUMNS, "principal_flows")
    snapshots = (
        panel.select(pl.col("month_end").cast(pl.Date)).unique()
        .with_columns(month_index=month_index("month_end"))
    )
    panel_lazy, flows_lazy = panel.lazy(), principal_flows.lazy()
    months = snapshots.join(
        snapshots.select(start_month_end="month_end", month_index=pl.col("month_index") + 1),
        on="month_index", how="inner",
    ).select("month_end", "start_month_end")

    start = (
        panel_lazy.filter(pl.col("is_active"))
        .select(
            start_month_end=pl.col("month_end").cast(pl.Date),
            loan_id="loan_id",
            start_outstanding=pl.col("outstanding_principal").cast(pl.Float64),
            start_dpd=pl.col("days_past_due").cast(pl.Int64),
        )
        .join(months.lazy(), on="start_month_end", how="inner")
        .with_columns(month_index=month_index("month_end"))
    )
    end = panel_lazy.select(
        month_index=month_index(pl.col("month_end").cast(pl.Date)),
        loan_id="loan_id",
        end_outstanding=pl.col("outstanding_principal").cast(pl.Float64),
        end_dpd=pl.col("days_past_due").cast(pl.Int64),
        end_written_off=pl.col("loan_status") == "Written Off",
        end_active=pl.col("is_active"),
        end_write_off_amount=pl.col("write_off_amount").cast(pl.Float64),
    )
    flows = (
        flows_lazy.select(
            month_index=month_index(pl.col("month_end").cast(pl.Date)),
            loan_id="loan_id",
            paid_principal=pl.col("paid_principal").cast(pl.Float64),
            scheduled_principal=pl.col("scheduled_principal").cast(pl.Float64),
        )
        .group_by("month_index", "loan_id")
        .agg(pl.col("paid_principal").sum(), pl.col("scheduled_principal").sum())
    )
    # Keyed by calendar month, so flows dated on any day of the month (or the last calendar day while the
    # tape is dated earlier) land on that month's snapshot.
    loan_months = (
        start.join(end, on=["month_index", "loan_id"], how="left")
        .join(flows, on=["month_index", "loan_id"], how="left")
        .with_columns(pl.col("paid_principal", "scheduled_principal").fill_null(0.0))
    )
    newly_defaulted = (pl.col("start_dpd") < DEFAULT_DPD) & (
        pl.col("end_written_off").fill_null(False)
        | (pl.col("end_active").fill_null(False) & (pl.col("end_dpd") >= DEFAULT_DPD))
    )
    default_exposure = pl.when(pl.col("end_written_off")).then(pl.col("end_write_off_amount")).otherwise(
        pl.col("end_outstanding")
    )
    performing = pl.col("start_dpd") == 0
    return (
        loan_months.group_by("month_end", "start_month_end")
        .agg(
            start_opb=pl.col("start_outstanding").sum(),
            default_principal=default_exposure.filter(newly_defaulted).fill_null(0.0).sum(),
            prepaid_principal=(pl.col("paid_principal") - pl.col("scheduled_principal")).filter(performing).sum(),
            prepay_base=(pl.col("start_outstanding") - pl.col("scheduled_principal")).filter(performing).sum(),
        )
        .with_columns(
            mdr=pl.when(pl.col("start_opb") != 0).then(pl.col("default_principal") / pl.col("start_opb")),
            smm=pl.when(pl.col("prepay_base") != 0).then(pl.col("prepaid_principal") / pl.col("prepay_base")),
        )
        .sort("month_end")
        .collect()
    )


def measure_assumptions(
    panel: pl.DataFrame,
    principal_flows: pl.DataFrame,
    recoveries: pl.DataFrame,
    as_of: dt.date | None = None,
    *,
    window_months: int = TRAILING_WINDOW_MONTHS,
    recovery_lag_months: int = RECOVERY_LAG_MONTHS,
    default_severity: float = DEFAULT_SEVERITY,
) -> pl.DataFrame:
    """The projection assumptions measured from history, as one row.

    MDR and SMM are trailing ratios of sums over the measured months whose
    calendar month lies in the ``window_months`` months ending at the as-of
    month (sum of numerators / sum of denominators, so a small month cannot
    swing the average). A month counts only when its start snapshot exists
    (see ``monthly_performance``). The ratios are null when their denominator
    is 0, e.g. with a single snapshot; they are reported as measured
    (an SMM can come out negative when performing loans underpay their
    schedule), and the projection clips them to [0, 1].

    Severity = 1 - recovered / written-off exposure over the loans Written Off
    in the as-of snapshot (the tape keeps every written-off loan), with the
    recovery cash received up to the as-of month; ``default_severity`` (0.6)
    while no recovery cash has been observed. Clipped to [0, 1].

    Inputs: panel and principal_flows as in ``monthly_performance``;
    recoveries (principal + interest cash on written-off loans after write-off,
    one or more rows per loan and month): month_end (any date in the month of
    receipt), loan_id, recovered_amount.
    as_of: the snapshot to measure at; the latest month_end of the panel when None.

    Returns one row: month_end (as-of snapshot), window_start_month_end,
    window_months_observed, start_opb, default_principal, prepaid_principal,
    prepay_base, mdr, smm, cdr, cpr, written_off_amount, recovered_amount,
    severity, recovery_lag_months.
    """
    _require_columns(panel, PANEL_COLUMNS_FOR_ASSUMPTIONS, "panel")
    _require_columns(principal_flows, FLOW_COLUMNS, "principal_flows")
    _require_columns(recoveries, RECOVERY_COLUMNS, "recoveries")
    snapshot_dates = panel.get_column("month_end").cast(pl.Date)
    as_of = as_of or snapshot_dates.max()
    as_of_index = as_of.year * 12 + as_of.month - 1

    # Only the window's snapshots and their start snapshot matter: cut the panel before the joins.
    in_window = month_index(pl.col("month_end").cast(pl.Date)).is_between(as_of_index - window_months, as_of_index)
    window = monthly_performance(panel.filter(in_window), principal_flows.filter(in_window)).filter(
        month_index("month_end").is_between(as_of_index - window_months + 1, as_of_index)
    )
    # Money sums are kept to the cent: a float sum's last bits depend on the (parallel) order of
    # its terms, and the same book must give the same assumptions on every rebuild.
    start_opb = round(float(window.get_column("start_opb").sum()), 2)
    default_principal = round(float(window.get_column("default_principal").sum()), 2)
    prepaid_principal = round(float(window.get_column("prepaid_principal").sum()), 2)
    prepay_base = round(float(window.get_column("prepay_base").sum()), 2)
    mdr = _ratio(default_principal, start_opb)
    smm = _ratio(prepaid_principal, prepay_base)

    as_of_snapshot = snapshot_dates.filter(snapshot_dates <= as_of).max()
    written_off = (
        panel.filter((pl.col("month_end").cast(pl.Date) == as_of_snapshot) & (pl.col("loan_status") == "Written Off"))
        .select("loan_id", write_off_amount=pl.col("write_off_amount").cast(pl.Float64).fill_null(0.0))
    )
    recovered = (
        recoveries.filter(month_index(pl.col("month_end").cast(pl.Date)) <= as_of_index)
        .join(written_off.select("loan_id"), on="loan_id", how="semi")
        .get_column("recovered_amount").cast(pl.Float64).sum()
    )
    written_off_amount = round(float(written_off.get_column("write_off_amount").sum()), 2)
    recovered_amount = round(float(recovered or 0.0), 2)
    if recovered_amount > 0 and written_off_amount > 0:
        severity = min(max(1.0 - recovered_amount / written_off_amount, 0.0), 1.0)
    else:
        severity = default_severity

    return pl.DataFrame(
        {
            "month_end": [as_of],
            "window_start_month_end": [window.get_column("month_end").min()],
            "window_months_observed": [window.height],
            "start_opb": [start_opb],
            "default_principal": [default_principal],
            "prepaid_principal": [prepaid_principal],
            "prepay_base": [prepay_base],
            "mdr": [mdr],
            "smm": [smm],
            "cdr": [None if mdr is None else cdr_from_mdr(mdr)],
            "cpr": [None if smm is None else cpr_from_smm(smm)],
            "written_off_amount": [written_off_amount],
            "recovered_amount": [recovered_amount],
            "severity": [severity],
            "recovery_lag_months": [recovery_lag_months],
        },
        schema_overrides={
            "month_end": pl.Date, "window_start_month_end": pl.Date, "window_months_observed": pl.Int32,
            "mdr": pl.Float64, "smm": pl.Float64, "cdr": pl.Float64, "cpr": pl.Float64,
            "recovery_lag_months": pl.Int32,
        },
    )


# --------------------------------------------------------------------------- projection

ACTIVE_LOAN_COLUMNS = ("loan_id", "payment_frequency", "maturity_date", "outstanding_principal", "interest_rate_apr")
MONEY_COLUMNS = (
    "opening_balance", "scheduled_principal", "interest", "prepayment", "defaults", "recoveries", "net_cash",
    "closing_balance",
)


def _assumption(assumptions: pl.DataFrame, name: str, fallback: float) -> float:
    value = assumptions.get_column(name)[0] if name in assumptions.columns else None
    return fallback if value is None else float(value)


def project_cashflows(
    active_loans: pl.DataFrame,
    as_of: dt.date,
    assumptions: pl.DataFrame,
    months: int = PROJECTION_MONTHS,
) -> pl.DataFrame:
    """Monthly cash of the active book for the next ``months`` calendar months.

    Each loan is re-amortized from its outstanding on the as-of snapshot:

    - ``bullet`` loans (factoring) pay outstanding x (1 + APR x days left / 360)
      in their maturity month, days left = maturity_date - as_of (0 once past
      maturity). Principal prepaid before maturity earns no discount interest
      (conservative).
    - every other frequency (monthly, biweekly, weekly: converted to monthly)
      pays a level installment of the outstanding at APR / 12 over the months
      left (``months_to_maturity``, at least 1); loans at or past maturity fall
      due in full in the first projected month.

    Month k, per loan, SIFMA order: defaults = MDR x opening balance; the
    surviving balance pays interest (APR / 12, or the bullet discount at
    maturity) and its scheduled principal (the level installment recomputed on
    the surviving balance over the remaining months, which with MDR = SMM = 0
    is exactly the original annuity); prepayment = SMM x the balance left after
    amortisation. Recoveries = (1 - severity) x the defaults of month
    k - recovery_lag_months, so defaults in the last lag months of the horizon
    recover after it and are not shown. net_cash = scheduled_principal +
    interest + prepayment + recoveries.

    The loop runs over months only; each step is numpy over all loans at once.

    active_loans (the as-of snapshot's active loans): loan_id,
    payment_frequency (bullet | monthly | biweekly | weekly), maturity_date,
    outstanding_principal, interest_rate_apr (fraction). Rows with
    outstanding_principal <= 0 are ignored.
    assumptions (one row, e.g. ``measure_assumptions``'s): mdr, smm, severity,
    recovery_lag_months. Null MDR/SMM (no history) project as 0, null
    severity as 0.6, null lag as 6; MDR and SMM are clipped to [0, 1].

    Returns one row per projection_month 1..months: as_of, projection_month,
    projected_month_end (last day of that calendar month), opening_balance,
    scheduled_principal, interest, prepayment, defaults, recoveries, net_cash,
    closing_balance (money rounded to cents after summing over loans), and the
    assumptions used: mdr, smm, cdr, cpr, severity, recovery_lag_months.
    """
    _require_columns(active_loans, ACTIVE_LOAN_COLUMNS, "active_loans")
    mdr = min(max(_assumption(assumptions, "mdr", 0.0), 0.0), 1.0)
    smm = min(max(_assumption(assumptions, "smm", 0.0), 0.0), 1.0)
    severity = _assumption(assumptions, "severity", DEFAULT_SEVERITY)
    recovery_lag_months = int(_assumption(assumptions, "recovery_lag_months", RECOVERY_LAG_MONTHS))

    loans = (
        active_loans.filter(pl.col("outstanding_principal").cast(pl.Float64) > 0)
        .select(
            balance=pl.col("outstanding_principal").cast(pl.Float64),
            monthly_rate=pl.col("interest_rate_apr").cast(pl.Float64) / 12.0,
            is_bullet=pl.col("payment_frequency") == "bullet",
            months_left=months_to_maturity(pl.col("maturity_date").cast(pl.Date), as_of),
            bullet_interest_factor=pl.col("interest_rate_apr").cast(pl.Float64)
            * (pl.col("maturity_date").cast(pl.Date) - pl.lit(as_of)).dt.total_days().clip(lower_bound=0)
            / DAY_COUNT_BASIS,
        )
    )
    balance = loans.get_column("balance").to_numpy().copy()
    monthly_rate = loans.get_column("monthly_rate").to_numpy()
    is_bullet = loans.get_column("is_bullet").to_numpy()
    months_left = loans.get_column("months_left").to_numpy().astype(np.int64)
    bullet_interest_factor = loans.get_column("bullet_interest_factor").to_numpy()
    has_rate = monthly_rate > 0
    safe_rate = np.where(has_rate, monthly_rate, 1.0)

    totals = {name: np.zeros(months) for name in MONEY_COLUMNS}
    for k in range(months):
        remaining = months_left - k  # installments left including this month; <= 0 once paid off
        opening = balance
        defaults = mdr * opening
        surviving = opening - defaults
        due_in_full = remaining <= 1
        remaining_safe = np.maximum(remaining, 1)

        level_interest = surviving * monthly_rate
        annuity_factor = np.where(has_rate, safe_rate / (1.0 - (1.0 + safe_rate) ** (-remaining_safe)),
                                  1.0 / remaining_safe)
        level_principal = np.where(due_in_full, surviving, surviving * annuity_factor - level_interest)
        bullet_due = remaining == 1
        bullet_principal = np.where(bullet_due, surviving, 0.0)
        bullet_interest = np.where(bullet_due, surviving * bullet_interest_factor, 0.0)

        scheduled_principal = np.where(is_bullet, bullet_principal, level_principal)
        interest = np.where(is_bullet, bullet_interest, level_interest)
        amortised = surviving - scheduled_principal
        prepayment = smm * amortised
        balance = amortised - prepayment

        totals["opening_balance"][k] = opening.sum()
        totals["defaults"][k] = defaults.sum()
        totals["scheduled_principal"][k] = scheduled_principal.sum()
        totals["interest"][k] = interest.sum()
        totals["prepayment"][k] = prepayment.sum()
        totals["closing_balance"][k] = balance.sum()

    recoveries = totals["recoveries"]
    if 0 <= recovery_lag_months < months:
        recoveries[recovery_lag_months:] = (1.0 - severity) * totals["defaults"][: months - recovery_lag_months]
    totals["net_cash"] = totals["scheduled_principal"] + totals["interest"] + totals["prepayment"] + recoveries

    projection_month = np.arange(1, months + 1)
    return pl.DataFrame(
        {
            "as_of": [as_of] * months,
            "projection_month": projection_month,
            "projected_month_end": [add_months_month_end(as_of, int(k)) for k in projection_month],
            **{name: np.round(totals[name], 2) for name in MONEY_COLUMNS},
            "mdr": [mdr] * months,
            "smm": [smm] * months,
            "cdr": [cdr_from_mdr(mdr)] * months,
            "cpr": [cpr_from_smm(smm)] * months,
            "severity": [severity] * months,
            "recovery_lag_months": [recovery_lag_months] * months,
        },
        schema_overrides={"as_of": pl.Date, "projection_month": pl.Int32, "projected_month_end": pl.Date,
                          "recovery_lag_months": pl.Int32},
    )
