import datetime as dt

from abaco_assets.lib.run_plan import contiguous_ranges

D = dt.date


def test_daily_files_batch_into_one_range_and_month_ends_stay_apart():
    days = [D(2026, 1, 1) + dt.timedelta(days=i) for i in range(31)]
    assert [(r.start, r.end) for r in contiguous_ranges("collections", days)] == [(D(2026, 1, 1), D(2026, 1, 31))]
    month_ends = [D(2026, 3, 31), D(2026, 1, 31), D(2026, 2, 28), D(2026, 1, 31)]
    assert [(r.start, r.end) for r in contiguous_ranges("cascade", month_ends)] == [
        (D(2026, 1, 31), D(2026, 1, 31)), (D(2026, 2, 28), D(2026, 2, 28)), (D(2026, 3, 31), D(2026, 3, 31))]
