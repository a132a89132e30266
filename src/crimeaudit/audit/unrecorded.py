"""Estimated number of crimes a year that went unrecorded.

The inspectorate's formula is ``U = C (1 - r) / r``: crimes recorded in a year, scaled by the
recording rate. For it to count what the rate counts, ``C`` must be in the rate's own terms:

* **the same records**: ``C`` is the number of records in the audit's frame with a crime record
  linked to them (:func:`crimeaudit.linkage.linked_pairs`), recorded at any time, *including
  crimes later cancelled* (the rate counts a cancelled crime as recorded);
* **the same window**: the audit period (the frame's own), stated in the figure's notes; with no
  audit period configured, the span of the frame's report dates, said so;
* **the same class basis**: the auditor's. ``C`` is a census count over all classes, and the
  domain (strand, division) enters only through the sampled records, with the class the
  auditor gave them.

So the figure is a ratio estimator with a known auxiliary total: with ``y`` = "should have been
recorded and was not" (the auditor) restricted to the domain, and ``x`` = "has a linked crime
record" (the linkage, known for every record of the frame, totalling ``C``),

    U = C * Y^ / X^ * 365 / days of the window

where ``Y^`` and ``X^`` are the design's weighted totals over the sample. When every recorded
crime should have been recorded, ``Y^/X^ = (1 - r)/r`` and this is the inspectorate's formula.
The interval accounts for the sampling error of ``Y^/X^`` (both of its parts vary from sample
to sample) through the same design-based machinery as the rate: ``p = Y^ / (Y^ + X^)`` gets the
rate's interval method (Wilson at the effective sample size, Korn-Graubard degrees of freedom)
and ``U = C p / (1 - p)`` maps its endpoints. ``C`` is a census count, without sampling error.

>>> [round(v) for v in unrecorded_from_rate(9000, 0.9, 0.88, 0.92)]
[1000, 783, 1227]
"""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd

from crimeaudit.audit.design import sampling_frame
from crimeaudit.audit.estimators import ht_ratio, stratified_ratio
from crimeaudit.model.figures import Estimate


def unrecorded_from_rate(recorded: float, rate: float, lower: float, upper: float):
    """(estimate, lower, upper) of ``recorded * (1 - r) / r``; infinite where ``r`` is 0."""

    def u(r: float) -> float:
        return recorded * (1 - r) / r if r > 0 else float("inf")

    return u(rate), u(upper), u(lower)


def frame_facts(project, design) -> dict:
    """The census side of the unrecorded figure, counted in the engine: ``linked`` (frame
    records with a linked crime record) and the window (start, end, days, what it is)."""
    eng = project.engine
    frame = sampling_frame(project, design)
    linked = int(eng.execute(frame.filter(frame.has_crime).count()))
    start = design.period_start or project.config.audit_period_start
    end = design.period_end or project.config.audit_period_end
    what = "the audit period"
    if start is None or end is None:
        inc = eng.table("incidents")
        if start:
            inc = inc.filter(inc.reported_at >= ibis.timestamp(
                dt.datetime.combine(start, dt.time())))
        if end:
            inc = inc.filter(inc.reported_at < ibis.timestamp(
                dt.datetime.combine(end + dt.timedelta(1), dt.time())))
        span = eng.to_pandas(inc.aggregate(lo=inc.reported_at.min(), hi=inc.reported_at.max()))
        lo, hi = span.lo.iloc[0], span.hi.iloc[0]
        if start is None and lo is not None and not pd.isna(lo):
            start = pd.Timestamp(lo).date()
        if end is None and hi is not None and not pd.isna(hi):
            end = pd.Timestamp(hi).date()
        what = ("the span of the frame's report dates (no audit period is configured)"
                if design.period_start is None and project.config.audit_period_start is None
                and design.period_end is None and project.config.audit_period_end is None
                else "the audit period, completed by the frame's report dates")
    days = float((end - start).days + 1) if start and end else float("nan")
    return {"linked": linked, "window_start": start.isoformat() if start else None,
            "window_end": end.isoformat() if end else None, "days": days, "window": what}


def unrecorded_estimate(sample, recs: pd.DataFrame, d: np.ndarray, scope: str, rate: Estimate,
                        facts: dict, level: float, method: str = "auto") -> Estimate:
    """The unrecorded-a-year figure of one domain (see the module docstring)."""
    s = (recs.should_record == "yes").to_numpy()
    r = (recs.recorded == "yes").to_numpy()
    y = (s & ~r).astype(float) * d
    x = recs.has_crime.to_numpy(float)
    interval = "clopper-pearson" if method == "clopper-pearson" else "wilson"
    if sample.design.kind == "pps":
        res = ht_ratio(y, y + x, recs.inclusion_probability.to_numpy(), level, interval)
    else:
        res = stratified_ratio(y, y + x, recs.stratum.to_numpy(), sample.population, level,
                               interval)
    C, days = facts["linked"], facts["days"]
    year = 365.0 / days if days and np.isfinite(days) and days > 0 else 1.0

    def u(p: float) -> float:
        return C * p / (1 - p) * year if p < 1 else float("inf")

    est, lo, hi = u(res.estimate), u(res.lower), u(res.upper)
    se = (C * year * res.se / (1 - res.estimate) ** 2
          if res.se is not None and res.estimate < 1 else None)
    note = (f"U = C p/(1 - p) x 365/{days:g} days: C = {C:,} frame records with a linked crime "
            f"record (recorded at any time, cancelled or not) reported {facts['window_start']} "
            f"to {facts['window_end']} ({facts['window']}); p = share of 'should have been "
            f"recorded and was not' among them and the records with a crime, estimated from "
            f"the sample ({int(y.sum())} unrecorded sampled records in this scope)")
    return Estimate(
        measure="unrecorded_per_year", scope=scope, estimate=est, lower=lo, upper=hi,
        level=level, method=f"ratio to the linked-crime count ({res.method})",
        n=rate.n, unit="crimes", notes=note, se=se,
        n_effective=None if res.n_effective is None else round(float(res.n_effective), 3),
        sample_id=rate.sample_id, warnings=rate.warnings,
        extra={"linked_records": C, "window_start": facts["window_start"],
               "window_end": facts["window_end"], "days": days, "window": facts["window"],
               "share": res.estimate, "rate": rate.estimate},
    )


__all__ = ["frame_facts", "unrecorded_estimate", "unrecorded_from_rate"]
