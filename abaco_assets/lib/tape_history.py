"""Rules that compare a Cascade tape with the previous accepted one.

A tape is a full snapshot of the book, so history is checked by comparing
consecutive snapshots: nothing may silently disappear (ERROR: a truncated
tape must not read as payoffs), the OPB must roll forward, and facts that
cannot change (disbursement terms, a write-off) must not change (WARN).
All comparisons are joins on loan_id in polars; no loop over loans.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl

ERROR, WARN = "ERROR", "WARN"
MAX_DETAIL_ROWS = 50
ROLL_FORWARD_TOLERANCE = 0.005  # 0.5 % of OPB (feeds.md)
DISBURSEMENT_FIELDS = ("customer_id", "product_type", "disbursement_date", "disbursement_amount", "interest_rate_apr",
                       "term", "term_unit", "payment_frequency")
CLOSED = ("Complete", "Written Off")


@dataclass
class RuleResult:
    name: str
    severity: str
    passed: bool
    message: str
    detail_rows: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)
    measures: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        return {"name": self.name, "severity": self.severity, "passed": self.passed, "message": self.message,
                "detail_rows": self.detail_rows, "details": self.details, "measures": self.measures}


def _details(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: (str(v) if isinstance(v, (Decimal, dt.date)) else v) for k, v in row.items()}
            for row in frame.head(MAX_DETAIL_ROWS).iter_rows(named=True)]


def _opb(loans: pl.DataFrame) -> Decimal:
    active = loans.filter(~pl.col("loan_status").is_in(CLOSED) & (pl.col("outstanding_principal") > 0))
    value = active["outstanding_principal"].sum()
    return Decimal(str(value or 0))


def completeness(previous: pl.DataFrame, current: pl.DataFrame, previous_date: dt.date) -> RuleResult:
    missing = previous.select("loan_id", "loan_status", "outstanding_principal").join(
        current.select("loan_id"), on="loan_id", how="anti")
    passed = missing.height == 0
    message = ("every loan of the previous tape is present" if passed else
               f"{missing.height} loans of the tape of {previous_date} are missing: a tape is the full book "
               "(re-export the complete tape; loans that closed stay in it as Complete or Written Off)")
    return RuleResult("completeness", ERROR, passed, message, missing.height, _details(missing.sort("loan_id")))


def opb_roll_forward(previous: pl.DataFrame, current: pl.DataFrame, payments: pl.DataFrame,
                     previous_date: dt.date, current_date: dt.date) -> RuleResult:
    """OPB(t-1) + disbursed - settled principal on loans not yet written off - write-offs = OPB(t)."""
    opb_previous, opb_current = _opb(previous), _opb(current)
    in_window = lambda column: (pl.col(column) > previous_date) & (pl.col(column) <= current_date)  # noqa: E731
    disbursed = Decimal(str(current.filter(in_window("disbursement_date"))["disbursement_amount"].sum() or 0))
    written_off = Decimal(str(current.filter(in_window("write_off_date"))["write_off_amount"].sum() or 0))
    principal = payments.filter(in_window("payment_date") & (pl.col("payment_status") == "Settled")).join(
        current.select("loan_id", "write_off_date"), on="loan_id", how="left"
    ).filter(pl.col("write_off_date").is_null() | (pl.col("payment_date") < pl.col("write_off_date")))
    collected = Decimal(str(principal["paid_principal"].sum() or 0))
    expected = opb_previous + disbursed - collected - written_off
    difference = opb_current - expected
    tolerance = Decimal(str(ROLL_FORWARD_TOLERANCE)) * opb_current
    passed = abs(difference) <= tolerance
    measures = {"opb_previous": str(opb_previous), "disbursed": str(disbursed), "principal_collected": str(collected),
                "written_off": str(written_off), "expected_opb": str(expected), "opb": str(opb_current),
                "difference": str(difference), "tolerance": str(tolerance.quantize(Decimal("0.01")))}
    message = (f"OPB rolls forward from {previous_date} within 0.5 %" if passed else
               f"OPB roll-forward from {previous_date} is off by {difference} (tolerance {measures['tolerance']}): "
               f"{opb_previous} + {disbursed} disbursed - {collected} principal - {written_off} written off "
               f"= {expected}, tape says {opb_current}")
    return RuleResult("opb_roll_forward", WARN, passed, message, 0 if passed else 1, [measures], measures)


def history_consistency(previous: pl.DataFrame, current: pl.DataFrame) -> RuleResult:
    """Disbursement terms fixed, outstanding non-increasing (non-revolving), write-offs final."""
    pair = previous.join(current, on="loan_id", how="inner", suffix="_now")
    changed = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_now")) for c in DISBURSEMENT_FIELDS])
    problems = pl.concat([
        pair.filter(changed).select("loan_id", pl.lit("disbursement_fields_changed").alias("rule"),
                                    pl.format("{} -> {}", pl.col("disbursement_amount"),
                                              pl.col("disbursement_amount_now")).alias("detail")),
        pair.filter((pl.col("product_type_now") != "credit_line")
                    & (pl.col("outstanding_principal_now") > pl.col("outstanding_principal"))
                    ).select("loan_id", pl.lit("outstanding_increased").alias("rule"),
                             pl.format("{} -> {}", pl.col("outstanding_principal"),
                                       pl.col("outstanding_principal_now")).alias("detail")),
        pair.filter((pl.col("loan_status") == "Written Off") & (pl.col("loan_status_now") == "Current")
                    ).select("loan_id", pl.lit("written_off_back_to_current").alias("rule"),
                             pl.format("{} -> {}", pl.col("loan_status"), pl.col("loan_status_now")).alias("detail")),
    ]).sort("rule", "loan_id")
    passed = problems.height == 0
    counts = problems.group_by("rule").len().sort("rule").rows()
    message = ("loan history is consistent with the previous tape" if passed else
               "loan history breaks: " + ", ".join(f"{n} {rule}" for rule, n in counts))
    return RuleResult("history_consistency", WARN, passed, message, problems.height, _details(problems),
                      {rule: n for rule, n in counts})
