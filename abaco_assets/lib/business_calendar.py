"""Business days in El Salvador (America/El_Salvador): weekends and national holidays.

Why not a cron: "09:00 on the first business day after month-end" moves with
weekends and holidays (Holy Week moves with Easter), which no cron expresses.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

TIMEZONE = "America/El_Salvador"


def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter (anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[dt.date]:
    """National holidays of El Salvador (Labour Code art. 190 and later decrees)."""
    easter = easter_sunday(year)
    fixed = [(1, 1), (5, 1), (5, 10), (6, 17), (8, 3), (8, 4), (8, 5), (8, 6), (9, 15), (11, 2), (12, 25)]
    holy_week = [easter - dt.timedelta(days=n) for n in (3, 2, 1)]  # Holy Thursday, Good Friday, Holy Saturday
    return frozenset([dt.date(year, month, day) for month, day in fixed] + holy_week)


def is_business_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in holidays(day.year)


def next_business_day(day: dt.date) -> dt.date:
    """The first business day strictly after ``day``."""
    day += dt.timedelta(days=1)
    while not is_business_day(day):
        day += dt.timedelta(days=1)
    return day


def month_end(day: dt.date) -> dt.date:
    first_next = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first_next - dt.timedelta(days=1)
