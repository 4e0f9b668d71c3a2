"""Contract v1 of the daily collections file (feeds.md, source ``collections``)."""

import datetime as dt
from decimal import Decimal
from typing import Literal

from contracts.base import DAILY_FEED_SLA, FeedTable, column


class CollectionsV1(FeedTable):
    source = "collections"
    table = "collections"
    version = 1
    title = "Collections"
    file_pattern = r"collections_\d{8}\.csv"
    owner = "team:collections"
    freshness = DAILY_FEED_SLA

    payment_id: str = column("payment_id", description="Same id as in Historic Real Payment", unique=True)
    loan_id: str = column("loan_id", description="Loan the cash belongs to")
    received_date: dt.date = column("received_date", description="Value date; equals the file's date",
                                    equals_delivery=True)
    amount: Decimal = column("amount", description="Cash received (USD)", gt=0)
    channel: Literal["bank_transfer", "cash", "card", "direct_debit", "agency"] = column(
        "channel", description="Collection channel"
    )
    is_recovery: bool = column("is_recovery", description="Money received on a written-off loan")


__all__ = ["CollectionsV1", "CollectionsV2", "Decimal"]


class CollectionsV2(CollectionsV1):
    """v2: the treasury system may add the bank's transaction reference (optional, so v1 files stay valid)."""

    version = 2

    bank_reference: str | None = column("bank_reference", description="Bank transaction reference", default=None)
