"""Freshness SLAs: which deliveries should have arrived by now, and which are late.

Two SLA shapes from feeds.md:
* ``month_end``: the tape of each month-end by HH:MM local on the first
  business day after it;
* ``business_daily``: the file of each business day D by HH:MM local on the
  next business day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from abaco_assets.lib.business_calendar import TIMEZONE, is_business_day, month_end, next_business_day


@dataclass(frozen=True)
class Expectation:
    source: str
    delivery_date: dt.date
    deadline: dt.datetime  # aware, local time


@dataclass(frozen=True)
class Breach:
    source: str
    delivery_date: dt.date
    deadline: dt.datetime
    hours_late: float

    def message(self) -> str:
        return (f"{self.source} delivery for {self.delivery_date} was due by {self.deadline:%Y-%m-%d %H:%M %Z} "
                f"and has not been accepted ({self.hours_late:.1f} h late)")


def expectations(source: str, shape: str, deadline_time: dt.time, now: dt.datetime,
                 lookback_days: int = 40) -> list[Expectation]:
    """Deliveries whose deadline passed within the lookback window before ``now``."""
    zone = ZoneInfo(TIMEZONE)
    local_now = now.astimezone(zone)
    start = local_now.date() - dt.timedelta(days=lookback_days)
    found = []
    day = start
    while day <= local_now.date():
        if shape == "month_end":
            due = day == month_end(day)
        elif shape == "business_daily":
            due = is_business_day(day)
        else:
            raise ValueError(f"unknown SLA shape {shape!r}")
        if due:
            deadline = dt.datetime.combine(next_business_day(day), deadline_time, tzinfo=zone)
            if deadline <= local_now:
                found.append(Expectation(source, day, deadline))
        day += dt.timedelta(days=1)
    return found


def breaches(expected: list[Expectation], accepted: set[dt.date], now: dt.datetime,
             not_before: dt.date | None = None) -> list[Breach]:
    """Expected deliveries that are not accepted; ``not_before`` ignores dates before the feed started."""
    late = []
    for item in expected:
        if item.delivery_date in accepted or (not_before and item.delivery_date < not_before):
            continue
        hours = (now - item.deadline).total_seconds() / 3600
        late.append(Breach(item.source, item.delivery_date, item.deadline, round(hours, 2)))
    return late
