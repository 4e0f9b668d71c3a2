"""Business-day calendar and SLA evaluation, by hand-checked dates."""

import datetime as dt
from zoneinfo import ZoneInfo

from abaco_assets.lib.business_calendar import easter_sunday, is_business_day, next_business_day
from abaco_assets.lib.freshness import breaches, expectations

SV = ZoneInfo("America/El_Salvador")
D = dt.date


def test_calendar_knows_weekends_fixed_holidays_and_holy_week():
    assert easter_sunday(2026) == D(2026, 4, 5) and easter_sunday(2027) == D(2027, 3, 28)
    assert not is_business_day(D(2026, 4, 2)) and not is_business_day(D(2026, 4, 3))  # Holy Thursday, Good Friday
    assert not is_business_day(D(2026, 9, 15))  # Independence Day
    assert not is_business_day(D(2026, 11, 28))  # Saturday
    assert is_business_day(D(2026, 11, 27))
    # Oct 31 2026 is a Saturday; Nov 2 (Monday) is All Souls' Day: the tape is due Tuesday Nov 3
    assert next_business_day(D(2026, 10, 31)) == D(2026, 11, 3)


def test_month_end_tape_deadline_moves_with_the_calendar():
    now = dt.datetime(2026, 11, 3, 9, 30, tzinfo=SV)
    due = expectations("cascade", "month_end", dt.time(9), now, lookback_days=40)
    assert [(e.delivery_date, e.deadline.date()) for e in due] == [
        (D(2026, 9, 30), D(2026, 10, 1)), (D(2026, 10, 31), D(2026, 11, 3))]
    just_before = expectations("cascade", "month_end", dt.time(9), now.replace(hour=8, minute=59), lookback_days=40)
    assert [e.delivery_date for e in just_before] == [D(2026, 9, 30)]


def test_breaches_list_what_is_late_and_by_how_much():
    now = dt.datetime(2026, 11, 3, 11, 0, tzinfo=SV)
    due = expectations("cascade", "month_end", dt.time(9), now, lookback_days=40)
    late = breaches(due, accepted={D(2026, 9, 30)}, now=now)
    assert [(b.delivery_date, b.hours_late) for b in late] == [(D(2026, 10, 31), 2.0)]
    assert "2026-10-31" in late[0].message() and "2.0 h late" in late[0].message()
    assert breaches(due, accepted={D(2026, 9, 30), D(2026, 10, 31)}, now=now) == []


def test_business_daily_skips_weekends_and_ignores_dates_before_the_feed_started():
    now = dt.datetime(2026, 11, 30, 8, 30, tzinfo=SV)  # Monday
    due = expectations("collections", "business_daily", dt.time(8), now, lookback_days=4)
    # Thu 26 (due Fri 27 08:00) and Fri 27 (due Mon 30 08:00); the weekend owes nothing
    assert [e.delivery_date for e in due] == [D(2026, 11, 26), D(2026, 11, 27)]
    assert [b.delivery_date for b in breaches(due, set(), now, not_before=D(2026, 11, 27))] == [D(2026, 11, 27)]
