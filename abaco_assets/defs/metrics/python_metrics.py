"""Python metric assets: cashflow projection, expected credit loss, covenants and borrowing base.

Each reads the month-end loan panel and the KPI marts in one query per
input, computes with the vectorized engines of ``abaco_assets.lib`` and
writes its tables to schema ``metrics`` through the warehouse resource
(atomic swap), where dbt reads them as sources.  Each carries a check that
ties it back to the marts it was computed from.
"""

import datetime as dt

import dagster as dg
import polars as pl

from abaco_assets.lib.cashflow import TRAILING_WINDOW_MONTHS, measure_assumptions, project_cashflows
from abaco_assets.lib.covenants import borrowing_base, covenant_guardrails
from abaco_assets.lib.credit_loss import PD_HORIZON_MONTHS, expected_credit_loss
from abaco_assets.lib.metric_store import metadata_for_model, metadata_for_models
from abaco_assets.warehouse import Warehouse

PANEL = dg.AssetKey(["intermediate", "int_loan_month_panel"])
PAYMENTS = dg.AssetKey(["intermediate", "int_payments_by_month"])
SCHEDULE = dg.AssetKey(["intermediate", "int_schedule_due_by_month"])
KPI_MONTHLY = dg.AssetKey(["marts", "kpi_portfolio_monthly"])
CASHFLOW = dg.AssetKey(["metrics", "metric_cashflow_projection"])
ECL = dg.AssetKey(["metrics", "metric_expected_credit_loss"])
COVENANTS = dg.AssetKey(["metrics", "metric_covenants"])
CENT = 0.01

# The metrics look back at most HISTORY_MONTHS month-ends from the latest (PD12's cohort; the
# cashflow's trailing window is shorter), so only those are read: memory follows the size of
# the book, not the length of its history.
HISTORY_MONTHS = max(PD_HORIZON_MONTHS, TRAILING_WINDOW_MONTHS)


def _recent(month_end: str) -> str:
    """SQL: ``month_end`` is within HISTORY_MONTHS month-ends of the panel's latest."""
    return (f"date_trunc('month', {month_end}) >= (select date_trunc('month', max(month_end)) "
            f"from intermediate.int_loan_month_panel) - interval {HISTORY_MONTHS} month")


_PANEL_SQL = """
select month_end, loan_id, customer_id, segment, product_type, payment_frequency, disbursement_date,
       cast(disbursement_amount as double) as disbursement_amount,
       cast(interest_rate_apr as double) as interest_rate_apr, maturity_date,
       cast(outstanding_principal as double) as outstanding_principal, days_past_due, loan_status,
       write_off_date, cast(write_off_amount as double) as write_off_amount, is_active
from intermediate.int_loan_month_panel
where {recent}
""".format(recent=_recent("month_end"))
_FLOWS_SQL = """
select coalesce(p.month_end, s.month_end) as month_end, coalesce(p.loan_id, s.loan_id) as loan_id,
       cast(coalesce(p.collected_principal, 0) as double) as paid_principal,
       cast(coalesce(s.scheduled_principal_due, 0) as double) as scheduled_principal
from intermediate.int_payments_by_month p
full outer join intermediate.int_schedule_due_by_month s on p.month_end = s.month_end and p.loan_id = s.loan_id
where {recent}
""".format(recent=_recent("coalesce(p.month_end, s.month_end)"))
# Cash on a written-off loan after its write-off date, by the month it arrived, as the latest tape records it.
_RECOVERIES_SQL = """
with latest as (select max(delivery_date) as tape from staging.stg_cascade__loan_data),
written_off as (
    select l.loan_id, l.write_off_date from staging.stg_cascade__loan_data l, latest
    where l.delivery_date = latest.tape and l.loan_status = 'Written Off'
)
select last_day(p.payment_date) as month_end, p.loan_id,
       cast(sum(p.paid_principal + p.paid_interest) as double) as recovered_amount
from staging.stg_cascade__historic_real_payment p
join latest on p.delivery_date = latest.tape
join written_off w on w.loan_id = p.loan_id and p.payment_date > w.write_off_date
where p.payment_status = 'Settled'
group by all
"""


def _latest_month_end(panel: pl.DataFrame) -> dt.date:
    return panel["month_end"].max()


def _write(context: dg.AssetExecutionContext, warehouse: Warehouse, name: str, frame: pl.DataFrame) -> dict:
    result = warehouse.write_table("metrics", name, frame)
    context.log.info(f"wrote metrics.{name}: {frame.height} rows")
    return {f"{name}_rows": frame.height}


@dg.asset(
    key=CASHFLOW,
    deps=[PANEL, PAYMENTS, SCHEDULE],
    metadata=metadata_for_model("metric_cashflow_projection"),
    group_name="metrics",
    kinds={"python", "duckdb"},
    owners=["team:finance"],
    tags={"domain": "transform"},
    pool="warehouse_writer",
    description="24-month cashflow projection of the active book (SIFMA order: defaults, amortisation, "
                "prepayment; recoveries after the lag) under MDR/SMM/severity measured from history.",
    check_specs=[dg.AssetCheckSpec("opening_balance_is_opb", asset=CASHFLOW,
                                   description="Month 1 opening balance equals the latest OPB of the panel "
                                               "(within a cent); the projection covers the whole active book.")],
)
def metric_cashflow_projection(context: dg.AssetExecutionContext, warehouse: Warehouse):
    panel = warehouse.read_sql(_PANEL_SQL)
    flows = warehouse.read_sql(_FLOWS_SQL)
    recoveries = warehouse.read_sql(_RECOVERIES_SQL)
    as_of = _latest_month_end(panel)
    assumptions = measure_assumptions(panel, flows, recoveries, as_of)
    active = panel.filter((pl.col("month_end") == as_of) & pl.col("is_active"))
    projection = project_cashflows(active, as_of, assumptions)
    metadata = _write(context, warehouse, "metric_cashflow_projection", projection)
    metadata |= _write(context, warehouse, "metric_cashflow_assumptions", assumptions)
    opb = round(float(active["outstanding_principal"].sum() or 0.0), 2)
    opening = float(projection.sort("projection_month")["opening_balance"][0]) if projection.height else 0.0
    assumption_row = assumptions.row(0, named=True)
    yield dg.MaterializeResult(metadata={
        **metadata, "as_of": str(as_of), "dagster/row_count": projection.height,
        "mdr": assumption_row["mdr"], "smm": assumption_row["smm"], "severity": assumption_row["severity"],
        "net_cash_24m": float(projection["net_cash"].sum()),
    })
    yield dg.AssetCheckResult(check_name="opening_balance_is_opb", passed=abs(opening - opb) <= CENT,
                              metadata={"opening_balance": opening, "opb": opb})


@dg.asset(
    key=ECL,
    deps=[PANEL, CASHFLOW],
    metadata=metadata_for_model("metric_expected_credit_loss"),
    group_name="metrics",
    kinds={"python", "duckdb"},
    owners=["team:risk"],
    tags={"domain": "transform"},
    pool="warehouse_writer",
    description="IFRS 9 style expected credit loss (management estimate): stage by DPD, PD12 by stage and "
                "segment from observed defaults, LGD = measured severity, EAD = outstanding; per loan and "
                "rolled up by segment and stage, with coverage of the PAR30 amount.",
    check_specs=[dg.AssetCheckSpec("rollup_adds_up", asset=ECL,
                                   description="The book ECL equals the sum of the segment x stage ECL and "
                                               "of the loan ECL (within the cent rounding of the summed figures).")],
)
def metric_expected_credit_loss(context: dg.AssetExecutionContext, warehouse: Warehouse):
    panel = warehouse.read_sql(_PANEL_SQL)
    severity = float(warehouse.read_sql("select severity from metrics.metric_cashflow_assumptions")["severity"][0])
    as_of = _latest_month_end(panel)
    result = expected_credit_loss(panel, severity, as_of)
    rollup = pl.concat([
        result.by_segment_stage.with_columns(pl.lit("segment_stage").alias("scope"),
                                             pl.lit(None, dtype=pl.Float64).alias("par30_amount"),
                                             pl.lit(None, dtype=pl.Float64).alias("coverage")),
        result.coverage.with_columns(pl.lit(None, dtype=pl.Int8).alias("stage"),
                                     pl.lit(None, dtype=pl.UInt32).alias("loans")),
    ], how="diagonal_relaxed").select("month_end", "scope", "segment", "stage", "loans", "ead", "ecl",
                                      "par30_amount", "coverage")
    metadata = _write(context, warehouse, "metric_expected_credit_loss", rollup)
    metadata |= _write(context, warehouse, "metric_expected_credit_loss_by_loan", result.loans)
    book = result.coverage.filter(pl.col("scope") == "book")
    book_ecl = float(book["ecl"][0]) if book.height and book["ecl"][0] is not None else None
    cells = float(result.by_segment_stage["ecl"].sum() or 0.0)
    loans = float(result.loans["ecl"].sum() or 0.0)
    # each figure is rounded to the cent on its own: sums of n rounded figures may drift by n half-cents
    cell_tolerance = max(CENT, 0.005 * result.by_segment_stage.height)
    loan_tolerance = max(CENT, 0.005 * result.loans.height)
    passed = (book_ecl is not None and abs(book_ecl - cells) <= cell_tolerance
              and abs(book_ecl - loans) <= loan_tolerance)
    yield dg.MaterializeResult(metadata={**metadata, "as_of": str(as_of), "book_ecl": book_ecl,
                                         "severity": severity, "dagster/row_count": rollup.height})
    yield dg.AssetCheckResult(check_name="rollup_adds_up", passed=passed,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"book_ecl": book_ecl, "segment_stage_sum": cells, "loan_sum": loans,
                                        "rounding_tolerance_loans": loan_tolerance})


_CUSTOMER_OPB_SQL = """
select month_end, customer_id,
       cast(sum(outstanding_principal) filter (where is_active) as double) as opb,
       cast(coalesce(sum(outstanding_principal) filter (where is_active and days_past_due < 60), 0) as double)
           as opb_dpd_lt60
from intermediate.int_loan_month_panel
where month_end = date '{month_end}'
group by all
having sum(outstanding_principal) filter (where is_active) > 0
"""
_KPI_SQL = """
select month_end, cast(opb as double) as opb, npl180_ratio, top10_concentration,
       cast(collected_total as double) as collected_total, cast(scheduled_due as double) as scheduled_due
from marts.kpi_portfolio_monthly
"""


@dg.asset(
    key=COVENANTS,
    deps=[KPI_MONTHLY, PANEL],
    metadata=metadata_for_models(["metric_covenants", "metric_borrowing_base"]),
    group_name="metrics",
    kinds={"python", "duckdb"},
    owners=["team:finance"],
    tags={"domain": "transform"},
    pool="warehouse_writer",
    description="Covenant guardrails per month_end (NPL180 < 4 %, top-10 <= 30 %, single obligor <= 4 %, "
                "6-month collection rate >= 96 %) and the borrowing base (0.8 x eligible OPB), read from the "
                "KPI marts (PAR and concentration are not recomputed).",
    check_specs=[dg.AssetCheckSpec("every_month_judged", asset=COVENANTS,
                                   description="Every month_end of kpi_portfolio_monthly has its four covenant "
                                               "rows and a borrowing base."),
                 dg.AssetCheckSpec("covenants_hold", asset=COVENANTS,
                                   description="WARN when a covenant of the latest month_end fails: the board "
                                               "and the lenders must hear it from us first.")],
)
def metric_covenants(context: dg.AssetExecutionContext, warehouse: Warehouse):
    kpis = warehouse.read_sql(_KPI_SQL)
    guardrails, bases = [], []
    for month_end in kpis["month_end"].unique().sort():  # one month's customers in memory at a time
        month_kpis = kpis.filter(pl.col("month_end") == month_end)
        customers = warehouse.read_sql(_CUSTOMER_OPB_SQL.format(month_end=month_end.isoformat()))
        guardrails.append(covenant_guardrails(month_kpis, customers))
        bases.append(borrowing_base(month_kpis, customers))
    guardrails, base = pl.concat(guardrails), pl.concat(bases)
    metadata = _write(context, warehouse, "metric_covenants", guardrails)
    metadata |= _write(context, warehouse, "metric_borrowing_base", base)
    months = kpis["month_end"].n_unique()
    judged = guardrails.group_by("month_end").len()
    complete = judged.height == months and judged["len"].min() == 4 and base.height == months
    latest = guardrails.filter(pl.col("month_end") == guardrails["month_end"].max())
    failing = latest.filter(pl.col("passed") == False)  # noqa: E712 (null = not measurable, not failed)
    yield dg.MaterializeResult(metadata={
        **metadata, "dagster/row_count": guardrails.height,
        "latest": dg.MetadataValue.json(latest.with_columns(pl.col("month_end").cast(str)).to_dicts()),
    })
    yield dg.AssetCheckResult(check_name="every_month_judged", passed=bool(complete),
                              metadata={"month_ends": months, "judged": judged.height})
    yield dg.AssetCheckResult(check_name="covenants_hold", passed=failing.height == 0,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"failing": dg.MetadataValue.json(failing["covenant"].to_list())})


metric_assets = [metric_cashflow_projection, metric_expected_credit_loss, metric_covenants]
