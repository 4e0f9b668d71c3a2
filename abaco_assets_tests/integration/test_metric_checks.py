"""The Python metric assets' checks pass on consistent inputs and fail when the result stops adding up."""

import datetime as dt
import re

import dagster as dg
import polars as pl

from abaco_assets.defs.metrics import python_metrics
from abaco_assets.warehouse import Warehouse

ME1, ME2 = dt.date(2026, 9, 30), dt.date(2026, 10, 31)


def panel() -> pl.DataFrame:
    rows = []
    for month_end in (ME1, ME2):
        for loan_id, customer, dpd in (("L1", "C1", 0), ("L2", "C2", 40), ("L3", "C3", 95)):
            rows.append(dict(month_end=month_end, loan_id=loan_id, customer_id=customer, segment="OC",
                             product_type="term_loan", payment_frequency="monthly",
                             disbursement_date=dt.date(2026, 1, 10), disbursement_amount=1000.0,
                             interest_rate_apr=0.36, maturity_date=dt.date(2027, 1, 10),
                             outstanding_principal=1000.0 if month_end == ME1 else 900.0, days_past_due=dpd,
                             loan_status="Current" if dpd == 0 else ("Default" if dpd >= 90 else "Delinquent"),
                             write_off_date=None, write_off_amount=None, is_active=True))
    return pl.DataFrame(rows)


class CraftedWarehouse(Warehouse):
    """Answers the assets' queries from crafted frames; keeps what they write."""

    def read_sql(self, sql: str) -> pl.DataFrame:
        if "marts.kpi_portfolio_monthly" in sql:
            return pl.DataFrame({"month_end": [ME1, ME2], "opb": [3000.0, 2700.0], "npl180_ratio": [0.0, 0.05],
                                 "top10_concentration": [1.0, 1.0], "collected_total": [300.0, 310.0],
                                 "scheduled_due": [300.0, 300.0]})
        if "group by all\nhaving" in sql:  # customer OPB of one month (the asset reads a month at a time)
            month_end = dt.date.fromisoformat(re.search(r"month_end = date '([\d-]+)'", sql).group(1))
            return panel().filter(pl.col("month_end") == month_end).group_by("month_end", "customer_id").agg(
                pl.col("outstanding_principal").sum().alias("opb"),
                pl.col("outstanding_principal").filter(pl.col("days_past_due") < 60).sum().alias("opb_dpd_lt60"))
        if "full outer join" in sql:
            return pl.DataFrame({"month_end": [ME2], "loan_id": ["L1"], "paid_principal": [100.0],
                                 "scheduled_principal": [80.0]})
        if "int_loan_month_panel" in sql:
            return panel()
        if "metric_cashflow_assumptions" in sql:
            return pl.DataFrame({"severity": [0.6]})
        return pl.DataFrame(schema={"month_end": pl.Date, "loan_id": pl.String, "recovered_amount": pl.Float64})

    def write_table(self, schema, name, frame):
        return None


def _checks(asset) -> dict[str, bool]:
    result = dg.materialize([asset], resources={"warehouse": CraftedWarehouse()}, raise_on_error=False)
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_cashflow_opening_balance_check(monkeypatch):
    assert _checks(python_metrics.metric_cashflow_projection) == {"opening_balance_is_opb": True}
    engine = python_metrics.project_cashflows
    # a projection that silently loses a loan must be caught
    monkeypatch.setattr(python_metrics, "project_cashflows",
                        lambda loans, *a, **k: engine(loans.filter(pl.col("loan_id") != "L2"), *a, **k))
    assert _checks(python_metrics.metric_cashflow_projection) == {"opening_balance_is_opb": False}


def test_ecl_rollup_check(monkeypatch):
    assert _checks(python_metrics.metric_expected_credit_loss) == {"rollup_adds_up": True}
    engine = python_metrics.expected_credit_loss

    def drop_a_cell(*args, **kwargs):
        result = engine(*args, **kwargs)
        return result._replace(by_segment_stage=result.by_segment_stage.head(0))

    monkeypatch.setattr(python_metrics, "expected_credit_loss", drop_a_cell)
    assert _checks(python_metrics.metric_expected_credit_loss) == {"rollup_adds_up": False}


def test_covenant_checks(monkeypatch):
    # one customer per loan: top-10 = 100 % and a single obligor far above 4 %: covenants fail (WARN)
    assert _checks(python_metrics.metric_covenants) == {"every_month_judged": True, "covenants_hold": False}
    engine = python_metrics.covenant_guardrails
    monkeypatch.setattr(python_metrics, "covenant_guardrails",
                        lambda kpis, customers: engine(kpis, customers).filter(pl.col("month_end") == ME2))
    assert _checks(python_metrics.metric_covenants)["every_month_judged"] is False
