"""The partitioning shared by every raw asset: the delivery (as-of) date."""

import dagster as dg

# Business dates are local dates in Abaco's time zone (feeds.md).
delivery_date_partitions = dg.DailyPartitionsDefinition(
    start_date="2020-01-01",
    timezone="America/El_Salvador",
    end_offset=1,  # today's delivery can be ingested today
)
