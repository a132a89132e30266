"""Test 2, deferral: crimes reported just before a period boundary but recorded just after it.

A force chasing a period's target can push the recording of crimes reported in the last days
of the period into the next one. Some crimes reported late on the last day are recorded after
midnight anyway; the question is whether *more* cross the boundary than the force's own delay
distribution explains.

Design: every report made within ``window_days`` before a boundary is a trial; it "crosses"
when its crime is recorded after the boundary. Reports before *control* boundaries give the
force's ordinary crossing chance at the same distance from a boundary: for quarter and
financial-year targets the controls are the other month ends, for monthly targets the
fifteenth of each month. Trials are stratified by distance (six-hour bins) and the weekday of
the report (delays differ by weekday, and a year has only four quarter ends); the
Mantel-Haenszel odds ratio of crossing at target against control boundaries is the effect,
tested by the Cochran-Mantel-Haenszel test (continuity-corrected, robust with few crossings).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from crimeaudit.detect.charts import line_chart
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.detect.periods import PERIOD_WORDS
from crimeaudit.model.figures import Finding
from crimeaudit.progress import Progress, resolve

TEST = "deferral"
MIN_CROSSINGS = 20


def boundary_trials(crimes: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """One row per report within ``window_days`` of the next month start or mid-month (15th)."""
    c = crimes[crimes["reported_at"].notna()]
    rep = c["reported_at"]
    next_month = rep.dt.normalize() + pd.offsets.MonthBegin(1)
    mid = rep.dt.normalize() - pd.to_timedelta(rep.dt.day - 15, unit="D")
    next_mid = mid.where(mid > rep, mid + pd.DateOffset(months=1))
    frames = []
    for kind, boundary in (("month_start", next_month), ("mid_month", next_mid)):
        hours = (boundary - rep).dt.total_seconds() / 3600
        keep = hours <= window_days * 24
        f = pd.DataFrame({
            "kind": kind,
            "boundary": boundary[keep],
            "hours_before": hours[keep],
            "crossed": (c["recorded_at"][keep] >= boundary[keep]),
            "strand": c["strand"][keep],
            "division": c["division"][keep],
        })
        frames.append(f)
    t = pd.concat(frames, ignore_index=True)
    t["bin"] = np.minimum((t["hours_before"] // 6).astype(int), window_days * 4 - 1)
    # Delays differ by day of week (weekend backlogs), and a period's few boundaries fall on
    # whatever weekdays they fall on: stratify by the report's weekday as well.
    t["weekday"] = (t["boundary"] - pd.to_timedelta(t["hours_before"], unit="h")).dt.weekday
    nm = t["boundary"].dt.month
    t["target_month"] = t["kind"] == "month_start"
    t["target_quarter"] = t["target_month"] & nm.isin([1, 4, 7, 10])
    t["target_financial_year"] = t["target_month"] & (nm == 4)
    return t


def _fit(t: pd.DataFrame, period: str, level: float) -> tuple[float, float, float, float] | None:
    """Mantel-Haenszel odds ratio over distance-by-weekday strata, interval, one-sided p."""
    # Months: month starts against mid-month controls; otherwise this period's ends against
    # the other month ends.
    trials = t if period == "month" else t[t["kind"] == "month_start"]
    target = trials[f"target_{period}"]
    if target.sum() == 0 or target.all() or trials.loc[target, "crossed"].sum() < 1:
        return None
    tables = []
    for _, g in trials.groupby(["bin", "weekday"]):
        tg = g[f"target_{period}"]
        a = float(g.loc[tg, "crossed"].sum())
        b = float(tg.sum()) - a
        c = float(g.loc[~tg, "crossed"].sum())
        d = float((~tg).sum()) - c
        # Strata with no contrast carry no information (and break the pooled estimators).
        if (a + b) > 0 and (c + d) > 0 and (a + c) > 0 and (b + d) > 0:
            tables.append([[a, b], [c, d]])
    if not tables:
        return None
    st = sm.stats.StratifiedTable(np.array(tables).transpose(1, 2, 0))
    orr = float(st.oddsratio_pooled)
    if not (math.isfinite(orr) and orr > 0):
        return None
    lo, hi = (float(x) for x in st.oddsratio_pooled_confint(alpha=1 - level))
    chi = float(st.test_null_odds(correction=True).statistic)
    p = float(stats.norm.sf(math.copysign(math.sqrt(max(chi, 0.0)), orr - 1)))
    return orr, lo, hi, p


def deferral_tests(
    data: DetectInput, window_days: int = 3, progress: Progress | None = None
) -> list[Finding]:
    """Deferral odds ratios per strand (and division) for each period under test."""
    c = data.crimes
    if c is None or "reported_at" not in c or c["reported_at"].notna().sum() < 500:
        return []
    trials = boundary_trials(c, window_days)
    units = [("all", pd.Series(True, index=trials.index))]
    members = data.strand_members()
    targeted = {t.strand for t in data.targets.targets}
    for s, mem in members.items():
        if s != "all" and (not targeted or s in targeted):
            units.append((f"strand={s}", trials["strand"].isin(mem)))
    divisions = sorted(trials["division"].dropna().unique())
    if len(divisions) > 1:
        units += [(f"division={d}", trials["division"] == d) for d in divisions]
    findings = []
    with resolve(progress).task("Deferral across period boundaries", total=len(units)) as adv:
        for unit, mask in units:
            sub = trials[mask]
            adv(1)
            if sub["crossed"].sum() < MIN_CROSSINGS:
                continue
            for period in data.targets.periods:
                fit = _fit(sub, period, data.level)
                if fit is None:
                    continue
                findings.append(_finding(sub, unit, period, fit, window_days, data.level))
    return findings


def _finding(sub, unit, period, fit, window_days, level) -> Finding:
    orr, lo, hi, p = fit
    tgt = sub[sub[f"target_{period}"]]
    ctl = sub[~sub[f"target_{period}"]] if period == "month" else sub[
        (sub["kind"] == "month_start") & ~sub[f"target_{period}"]]
    # Expected crossings at target boundaries from the control crossing rate per stratum.
    rate = ctl.groupby(["bin", "weekday"])["crossed"].mean()
    keys = pd.MultiIndex.from_frame(tgt[["bin", "weekday"]])
    expected = float(np.nan_to_num(rate.reindex(keys).to_numpy()).sum())
    observed = int(tgt["crossed"].sum())
    word = PERIOD_WORDS[period]
    sentence = (
        f"Of {len(tgt):,} crimes ({unit}) reported in the last {window_days} days of a {word}, "
        f"{observed:,} were recorded after the {word} ended against {expected:,.0f} expected "
        f"from the force's delays at other boundaries (odds ratio {orr:.2f}, "
        f"{100 * level:.0f}% CI {lo:.2f}-{hi:.2f})."
    )
    rows = []
    for kind, part in (("target boundary", tgt), ("control boundary", ctl)):
        g = part.groupby("bin")["crossed"].mean()
        rows += [{"hours before boundary": int(b * 6), "share recorded after": float(v),
                  "boundary": kind} for b, v in g.items()]
    chart = line_chart(rows, "hours before boundary", "share recorded after",
                       f"Recorded after the {word} boundary: {unit}", color="boundary",
                       x_type="quantitative")
    return Finding(
        test=TEST, unit=f"{unit}: {period}", effect=orr, lower=lo, upper=hi,
        effect_name=f"odds ratio of recording after the {word} boundary",
        p_value=p, q_value=float("nan"), sentence=sentence, level=level,
        method="Mantel-Haenszel odds ratio over 6-hour distance x weekday strata; CMH test with "
               "continuity "
               "correction, one-sided",
        n=len(tgt),
        extra={"period": period, "observed": observed, "expected": expected,
               "window_days": window_days, "chart": chart},
    )
