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
from pydantic import Field
from scipy import stats

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.charts import line_chart
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.detect.periods import PERIOD_WORDS
from crimeaudit.detect.reading import scope_fields
from crimeaudit.model.figures import Finding
from crimeaudit.progress import Progress, resolve

TEST = "deferral"


class DeferralSettings(DetectorSettings):
    """Minimum data for the deferral tests."""

    min_reports: int = Field(500, ge=1, description=(
        "Crimes with a report time needed before any deferral test runs."))
    min_crossings: int = Field(20, ge=1, description=(
        "Reports near a boundary recorded after it (target and control boundaries together) "
        "a unit needs."))


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


def _trials_for(t: pd.DataFrame, period: str) -> pd.DataFrame:
    """Months: month starts against mid-month controls; else this period's ends against the
    other month ends."""
    return t if period == "month" else t[t["kind"] == "month_start"]


def strata(t: pd.DataFrame, period: str) -> pd.DataFrame:
    """Per distance-by-weekday stratum: crossings and trials at target and control boundaries.

    Columns ``a`` (target crossed), ``n1`` (target trials), ``c`` (control crossed), ``n0``.
    """
    trials = _trials_for(t, period)
    g = (trials.assign(tg=trials[f"target_{period}"])
         .groupby(["bin", "weekday", "tg"])["crossed"].agg(["sum", "size"])
         .unstack("tg", fill_value=0))
    out = pd.DataFrame(index=g.index)
    for col, (stat, flag) in {"a": ("sum", True), "n1": ("size", True),
                              "c": ("sum", False), "n0": ("size", False)}.items():
        out[col] = g[(stat, flag)].astype(float) if (stat, flag) in g.columns else 0.0
    return out


def _fit(t: pd.DataFrame, period: str, level: float) -> tuple[float, float, float, float] | None:
    """Mantel-Haenszel odds ratio over distance-by-weekday strata, interval, one-sided p."""
    st_ = strata(t, period)
    if st_["n1"].sum() == 0 or st_["n0"].sum() == 0 or st_["a"].sum() < 1:
        return None
    a, n1, c, n0 = (st_[k].to_numpy() for k in ("a", "n1", "c", "n0"))
    b, d = n1 - a, n0 - c
    # Strata with no contrast carry no information (and break the pooled estimators).
    ok = (n1 > 0) & (n0 > 0) & ((a + c) > 0) & ((b + d) > 0)
    if not ok.any():
        return None
    tables = np.stack([np.stack([a[ok], b[ok]]), np.stack([c[ok], d[ok]])])
    st = sm.stats.StratifiedTable(tables)
    orr = float(st.oddsratio_pooled)
    if not (math.isfinite(orr) and orr > 0):
        return None
    lo, hi = (float(x) for x in st.oddsratio_pooled_confint(alpha=1 - level))
    chi = float(st.test_null_odds(correction=True).statistic)
    p = float(stats.norm.sf(math.copysign(math.sqrt(max(chi, 0.0)), orr - 1)))
    return orr, lo, hi, p


def deferral_tests(
    data: DetectInput, window_days: int = 3, progress: Progress | None = None,
    settings: DeferralSettings | None = None, skips: Skips | None = None,
) -> list[Finding]:
    """Deferral odds ratios per strand (and division) for each period under test."""
    settings = settings or DeferralSettings()
    skips = skips if skips is not None else Skips()
    if not data.crime_has("reported_at") or skips.fewer(
            settings, "min_reports", data.facts["n_reported"], "crimes with reported_at",
            unit="records"):
        return []
    # Only the reports near a boundary leave the engine (see DetectInput.boundary_reports).
    trials = boundary_trials(data.boundary_reports(window_days), window_days)
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
            if skips.fewer(settings, "min_crossings", int(sub["crossed"].sum()),
                           "reports recorded after the boundary", unit=unit):
                continue
            for period in data.targets.periods:
                fit = _fit(sub, period, data.level)
                if fit is None:
                    continue
                findings.append(_finding(sub, unit, period, fit, window_days, data.level,
                                         data.codes.strand_description))
    return findings


def _finding(sub, unit, period, fit, window_days, level, strands=None) -> Finding:
    orr, lo, hi, p = fit
    trials = _trials_for(sub, period)
    tgt = trials[trials[f"target_{period}"]]
    ctl = trials[~trials[f"target_{period}"]]
    # Expected crossings at target boundaries: each stratum's control crossing rate.
    st_ = strata(sub, period)
    has_ctl = st_["n0"] > 0
    expected = float((st_["n1"] * st_["c"] / st_["n0"].where(has_ctl, 1.0))[has_ctl].sum())
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
               "window_days": window_days, "chart": chart, "scale": "ratio",
               **scope_fields(unit, f"crimes reported in the last {window_days} days of a "
                                    f"{word} and recorded after it", strands)},
    )


class Deferral(Detector):
    """Test 2 (see the module notes)."""

    name = TEST
    question = ("Are crimes reported just before a period boundary recorded just after it "
                "more often than the force's delays explain?")
    needs = (("reported_times",),)
    Settings = DeferralSettings

    def run(self, data: DetectInput, settings: DeferralSettings,
            skips: Skips | None = None) -> list[Finding]:
        return deferral_tests(data, data.targets.last_days, settings=settings, skips=skips)
