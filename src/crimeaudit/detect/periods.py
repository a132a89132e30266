"""Calendar facts the period tests share: period ends, financial years, days before a boundary.

The UK police financial year runs from 1 April to 31 March, so its last days are the last
days of March.

>>> import pandas as pd
>>> d = pd.Series(pd.to_datetime(["2021-03-30", "2021-03-15", "2021-06-30", "2021-05-31"]))
>>> last_days_flags(d, 3)["quarter"].tolist()
[True, False, True, False]
>>> last_days_flags(d, 3)["financial_year"].tolist()
[True, False, False, False]
"""

from __future__ import annotations

import pandas as pd

PERIODS = ("month", "quarter", "financial_year")
PERIOD_WORDS = {"month": "month", "quarter": "quarter", "financial_year": "financial year"}


def days_to_month_end(d: pd.Series) -> pd.Series:
    """Whole days from each date to the last day of its month (0 on the last day)."""
    d = pd.to_datetime(d).dt.normalize()
    return (d + pd.offsets.MonthEnd(0) - d).dt.days


def last_days_flags(d: pd.Series, last_days: int) -> pd.DataFrame:
    """For each date: is it in the last ``last_days`` days of a month, quarter, financial year."""
    d = pd.to_datetime(d)
    in_last = days_to_month_end(d) < last_days
    month = d.dt.month
    return pd.DataFrame(
        {
            "month": in_last,
            "quarter": in_last & month.isin([3, 6, 9, 12]),
            "financial_year": in_last & (month == 3),
        },
        index=d.index,
    )


def is_period_end_month(month: pd.Series, period: str) -> pd.Series:
    """Is a calendar month (1-12) the last month of a quarter or financial year."""
    if period == "quarter":
        return month.isin([3, 6, 9, 12])
    if period == "financial_year":
        return month == 3
    return pd.Series(True, index=month.index)


def boundaries(start: pd.Timestamp, end: pd.Timestamp, period: str) -> pd.DatetimeIndex:
    """First instants of each new ``period`` between ``start`` and ``end``."""
    months = pd.date_range(start.normalize() - pd.offsets.MonthBegin(1), end, freq="MS")
    keep = {"month": set(range(1, 13)), "quarter": {1, 4, 7, 10}, "financial_year": {4}}[period]
    return pd.DatetimeIndex([m for m in months if m.month in keep and start < m <= end])
