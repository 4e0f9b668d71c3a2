"""Contract v1 of the daily delinquency snapshot (feeds.md, source ``delinquency``)."""

import datetime as dt
from decimal import Decimal
from typing import Literal

import polars as pl

from contracts.base import DAILY_FEED_SLA, FeedTable, RowRule, column


class DelinquencyV1(FeedTable):
    source = "delinquency"
    table = "delinquency"
    version = 1
    title = "Delinquency"
    file_pattern = r"delinquency_\d{8}\.csv"
    owner = "team:collections"
    freshness = DAILY_FEED_SLA

    as_of_date: dt.date = column("as_of_date", description="Snapshot date; equals the file's date",
                                 equals_delivery=True)
    loan_id: str = column("loan_id", description="Active loan", unique=True)
    days_past_due: int = column("days_past_due", description="Days past due", ge=0)
    overdue_principal: Decimal = column("overdue_principal", description="Principal overdue", ge=0)
    overdue_interest: Decimal = column("overdue_interest", description="Interest overdue", ge=0)
    first_unpaid_due_date: dt.date | None = column(
        "first_unpaid_due_date", description="Oldest unpaid due date", default=None
    )
    collection_stage: Literal["none", "early", "late", "legal", "agency"] = column(
        "collection_stage", description="Collections workflow stage"
    )
    promise_to_pay_date: dt.date | None = column(
        "promise_to_pay_date", description="Date the borrower promised to pay", default=None
    )

    row_rules = (
        RowRule(
            name="first_unpaid_due_date_when_past_due",
            description="first_unpaid_due_date is required when days_past_due > 0",
            columns=("days_past_due", "first_unpaid_due_date"),
            valid=lambda: (pl.col("days_past_due") == 0) | pl.col("first_unpaid_due_date").is_not_null(),
        ),
    )


__all__ = ["Decimal", "DelinquencyV1"]
