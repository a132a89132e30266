"""Estimated number of crimes a year that went unrecorded.

``U = C * (1 - r) / r`` where ``C`` is the number of crimes recorded (not cancelled) in the 12
months ending on the audit period's last day (or the last recorded crime), and ``r`` the
estimated recording rate. ``U`` falls as ``r`` rises, so its interval is ``U`` evaluated at the
rate's interval endpoints, swapped: ``[U(r_upper), U(r_lower)]``. ``C`` is a count of the whole
year, not a sample, so it adds no sampling error. When the store holds less than 12 months the
count is scaled up to a year (and the estimate says so in its notes).

>>> [round(v) for v in unrecorded_from_rate(9000, 0.9, 0.88, 0.92)]
[1000, 783, 1227]
"""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd


def unrecorded_from_rate(recorded: float, rate: float, lower: float, upper: float):
    """(estimate, lower, upper) of ``recorded * (1 - r) / r``; infinite where ``r`` is 0."""

    def u(r: float) -> float:
        return recorded * (1 - r) / r if r > 0 else float("inf")

    return u(rate), u(upper), u(lower)


def recorded_last_year(project, strand: str | None = None, division: str | None = None,
                       ) -> tuple[float, dict]:
    """Crimes recorded in the 12 months to the audit period's end, scaled to a year if needed."""
    eng, codes = project.engine, project.codes
    crimes = eng.table("crimes").filter(ibis._.status == "recorded")
    if strand and strand != "all":
        crimes = crimes.filter(crimes.offence_code.isin(codes.codes_in_strand(strand)))
    if division:
        crimes = crimes.filter(crimes.division == division)
    full = eng.table("crimes")
    last = project.config.audit_period_end
    if last is None:
        latest = full.recorded_at.max().execute()
        if latest is None or pd.isna(latest):
            return 0.0, {"window_start": None, "window_end": None, "scaled": False}
        last = pd.Timestamp(latest).date()
    end = dt.datetime.combine(last + dt.timedelta(1), dt.time())
    start = end - dt.timedelta(days=365)
    first = full.recorded_at.min().execute()
    covered_from = max(pd.Timestamp(first).to_pydatetime(), start) if first is not None else start
    in_window = crimes.filter((crimes.recorded_at >= start) & (crimes.recorded_at < end))
    count = float(in_window.count().execute())
    days = (end - covered_from).total_seconds() / 86400
    scaled = days < 365 - 1e-6
    if scaled and days > 0:
        count = count * 365 / days
    info = {"window_start": covered_from.date().isoformat(), "window_end": last.isoformat(),
            "scaled": scaled, "days_covered": round(days, 2)}
    return count, info
