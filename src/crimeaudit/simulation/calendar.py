"""When things happen: report times with daily, weekly and seasonal shape; target periods.

Times are int64 microseconds since 1970-01-01 (naive local time), the unit of the canonical
``timestamp[us]`` columns.

>>> import numpy as np
>>> t = np.array([np.datetime64("2013-03-29T10:00", "us").astype(np.int64)])
>>> bool(in_pressure_window(t, "month", 7)[0]), bool(in_pressure_window(t, "quarter", 2)[0])
(True, False)
>>> str(next_boundary(t, "financial_year")[0].astype("datetime64[us]"))
'2013-04-01T00:00:00.000000'
"""

from __future__ import annotations

import numpy as np

from crimeaudit.simulation.scenario import Period, Shape

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR


def day_zero(period: Period) -> int:
    return int(np.datetime64(period.start, "D").astype("datetime64[us]").astype(np.int64))


def report_times(rng: np.random.Generator, n: int, period: Period, shape: Shape) -> np.ndarray:
    """``n`` sorted report times over the period, shaped by weekday, season and hour."""
    days = np.arange(period.days)
    dates = np.datetime64(period.start, "D") + days
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    peak = (np.datetime64(f"2001-{shape.seasonal_peak_month:02d}-15", "D")
            - np.datetime64("2001-01-01", "D")).astype(np.int64)
    season = 1 + shape.seasonal_amplitude * np.cos(2 * np.pi * (doy - peak) / 365.25)
    w = np.asarray(shape.weekly)[weekday] * season
    day = rng.choice(days, size=n, p=w / w.sum())
    hourly = np.asarray(shape.hourly)
    hour = rng.choice(24, size=n, p=hourly / hourly.sum())
    within = rng.integers(0, US_PER_HOUR // 1_000_000, size=n) * 1_000_000
    t = day_zero(period) + day * US_PER_DAY + hour * US_PER_HOUR + within
    t.sort()
    return t


def next_boundary(t: np.ndarray, period: str) -> np.ndarray:
    """The start (in microseconds) of the next month, quarter or UK financial year after ``t``."""
    months = t.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    if period == "month":
        nxt = months + 1
    elif period == "quarter":
        nxt = (months // 3 + 1) * 3
    elif period == "financial_year":
        year, month = months // 12, months % 12
        nxt = np.where(month >= 3, (year + 1) * 12 + 3, year * 12 + 3)
    else:
        raise ValueError(f"unknown target period {period!r}")
    return nxt.astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)


def in_pressure_window(t: np.ndarray, period: str, last_days: int) -> np.ndarray:
    """True where ``t`` falls in the last ``last_days`` days before a period boundary."""
    return next_boundary(t, period) - t <= last_days * US_PER_DAY
