"""Test 7, recording-practice breaks: change points in an area's share of the national series.

A change in recording practice moves one force's counts while the national pattern does not.
Each area's series is therefore taken *relative to the national total* of the same offence and
period (log share), which removes the common trend, seasonality and national recording changes.

Rolling 12-month totals (``rec-crime-pfa.csv``) overlap: consecutive quarterly values share 9
of 12 months, so their residuals are heavily autocorrelated, a step in the underlying flow
shows as a year-long ramp, and an ordinary test would find breaks everywhere. They are
therefore *differenced back to quarterly flows*: ``R_t - R_(t-1) = Q_t - Q_(t-4)``, so the flows
follow from the differences once four starting quarters are fixed; they are set to a quarter of
the first annual total each, an error that is a fixed quarter-of-year pattern and is absorbed by
the quarter-of-year terms of the model. Only the longest run of consecutive quarters is used.

Test: for every candidate break date (trimming 15% at each end) a regression of the log share
on intercept, season (month or quarter of year) and a step at that date, after prewhitening
with an AR(1) coefficient (Cochrane-Orcutt), so that persistent but unbroken wandering is not
mistaken for a break. The coefficient is the median over the areas of the same source and
offence of each area's no-break residual autocorrelation: one area's own break cannot inflate
it, and a single 40-point series estimates it with a large downward bias. The largest |t|
over dates is converted to a p-value with a Bonferroni bound over the candidate dates
(conservative). The break's date is
the arg max; its size the step, reported as a percentage change in the area's share (interval
conditional on the date). No trend term: a share drifting away from the national pattern is
itself a change, and the step then dates its steepest part.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import stats

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.charts import line_chart
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding
from crimeaudit.progress import Progress, resolve

TEST = "breaks"
ALL_OFFENCES = "all offences (sum)"


class BreaksSettings(DetectorSettings):
    """Minimum data for the break scan, and its trimming."""

    min_points: int = Field(16, ge=8, description=(
        "Periods an area's series needs (after differencing rolling totals and dropping "
        "empty periods)."))
    min_median_count: int = Field(10, ge=0, description=(
        "Median count per period an area's series needs (smaller series are mostly noise)."))
    trim: float = Field(0.15, gt=0, lt=0.5, description=(
        "Share of the series at each end where no break date is tried."))
    max_gap_periods: int = Field(2, ge=0, description=(
        "Consecutive quarters of rolling 12-month totals a series may miss (not published, "
        "or quarantined) and still be analysed across the gap."))


def null_rho(y: np.ndarray, X0: np.ndarray) -> float:
    """AR(1) coefficient of the no-break residuals (clipped to [0, 0.95])."""
    beta, *_ = np.linalg.lstsq(X0, y, rcond=None)
    e = y - X0 @ beta
    return float(np.clip((e[1:] @ e[:-1]) / max(e @ e, 1e-18), 0.0, 0.95))


def bias_corrected_rho(rho: float, n: int) -> float:
    """Kendall's correction of the AR(1) estimate's downward bias, E = rho - (1 + 3 rho) / n."""
    return float(np.clip((rho * n + 1) / max(n - 3, 1), 0.0, 0.98))


class StepScan(NamedTuple):
    """The best single level step of a series: Bonferroni p over the ``dates`` tried, its
    index, size (log scale), standard error and residual degrees of freedom."""

    p: float
    k: int
    step: float
    se: float
    df: int
    dates: int

    def interval(self, level: float, simultaneous: bool = True) -> tuple[float, float]:
        """The step's interval on the log scale: allowing for the dates tried (Bonferroni,
        the interval that agrees with ``p``), or given the date (``simultaneous=False``)."""
        tail = (1 - level) / 2 / (self.dates if simultaneous else 1)
        half = float(stats.t.isf(tail, self.df)) * self.se
        return self.step - half, self.step + half


def sup_step_test(y: np.ndarray, X0: np.ndarray, rho: float, trim: float = 0.15):
    """The best single level step in ``y`` (a :class:`StepScan`), or ``None``.

    The series and every regressor are quasi-differenced with ``rho`` (Cochrane-Orcutt) so
    persistent wandering is not mistaken for a break; each candidate step's t-statistic then
    uses the ordinary residual variance and Student's t.
    """
    n = y.size
    lo, hi = max(2, int(trim * n)), min(n - 2, int((1 - trim) * n))
    taus = np.arange(lo, hi + 1)
    if taus.size == 0:
        return None
    S = (np.arange(n)[:, None] >= taus[None, :]).astype(float)  # n x candidates

    def qd(a):
        return a[1:] - rho * a[:-1]

    ys, Xs, Ss = qd(y), qd(X0), qd(S)
    beta, *_ = np.linalg.lstsq(Xs, ys, rcond=None)
    e0 = ys - Xs @ beta
    coef, *_ = np.linalg.lstsq(Xs, Ss, rcond=None)
    St = Ss - Xs @ coef  # steps with the base regressors partialled out (Frisch-Waugh)
    ss = (St**2).sum(axis=0)
    ok = ss > 1e-9
    b = np.where(ok, (St * e0[:, None]).sum(axis=0) / np.where(ok, ss, 1), 0.0)
    U = e0[:, None] - St * b[None, :]
    df = max(ys.size - Xs.shape[1] - 1, 1)
    se = np.sqrt((U**2).sum(axis=0) / df / np.where(ok, ss, 1))
    t = np.where(ok, np.abs(b) / np.maximum(se, 1e-12), 0.0)
    j = int(np.argmax(t))
    p = min(1.0, float(2 * stats.t.sf(t[j], df)) * taus.size)
    return StepScan(p, int(taus[j]), float(b[j]), float(se[j]), df, int(taus.size))


def quarterly_flows(rolling: np.ndarray) -> np.ndarray | None:
    """Quarterly flows from consecutive quarterly rolling 12-month totals (see module notes).

    ``R_t - R_(t-1) = Q_t - Q_(t-4)`` fixes each flow up to one constant per quarter of the
    year; the four constants (summing to the first total) are chosen to make the flows as
    smooth as possible from quarter to quarter. Any error left is a fixed quarter-of-year
    pattern, absorbed by the model's quarter terms.

    A missing total inside the series (``NaN``: a quarter the source did not publish, or
    that the ingest quarantined) is one more unknown of the same smoothness fit: a wrong
    value would shift two quarter-of-year chains in opposite directions from the gap on,
    a saw-tooth the fit removes. So the flows run across the gap instead of stopping at it.
    The first total must be present.

    >>> flows = np.array([10., 12, 11, 13, 14, 12, 15, 16, 18, 17, 19, 21])
    >>> rolling = np.convolve(flows, np.ones(4), "valid")  # totals for the years to Q4, Q5, ...
    >>> err = quarterly_flows(rolling) - flows[4:]
    >>> bool(np.allclose(err[:4], err[4:]))  # the error repeats by quarter of year
    True
    >>> gap = rolling.copy()
    >>> gap[5] = np.nan  # one quarter's total not published
    >>> bool(np.abs(quarterly_flows(gap) - quarterly_flows(rolling)).max() < 1.5)
    True
    """
    rolling = np.asarray(rolling, float)
    if not np.isfinite(rolling[0]):
        return None
    missing = np.flatnonzero(~np.isfinite(rolling))
    known = np.where(np.isfinite(rolling), rolling, 0.0)
    d = np.diff(known)
    n = d.size + 4
    m = len(missing)

    def chain(diffs: np.ndarray) -> np.ndarray:
        cum = np.zeros(n)
        for i in range(4, n):
            cum[i] = cum[i - 4] + diffs[i - 4]
        return cum

    cum = chain(d)
    # Each missing total x_j enters d as +x_j (into its quarter) and -x_j (out of the next).
    C = np.zeros((n, m))
    for j, k in enumerate(missing):
        dj = np.zeros(d.size)
        dj[k - 1] += 1.0
        if k < d.size:
            dj[k] -= 1.0
        C[:, j] = chain(dj)
    B = np.zeros((n, 4))
    B[np.arange(n), np.arange(n) % 4] = 1.0
    # Smoothness: first differences of cum + B b + C x; constraint sum(b) = first total.
    D = np.diff(np.eye(n), axis=0)
    w = 1e3
    A = np.vstack([np.hstack([D @ B, D @ C]),
                   np.hstack([w * np.ones((1, 4)), np.zeros((1, m))])])
    rhs = np.concatenate([-(D @ cum), [w * rolling[0]]])
    sol, *_ = np.linalg.lstsq(A, rhs, rcond=None)
    flows = (cum + B @ sol[:4] + C @ sol[4:])[4:]
    return flows if (flows > 0).all() else None


def quarterly_grid(ends: np.ndarray, max_gap: int) -> pd.DatetimeIndex:
    """The quarter ends of the longest stretch of quarterly data, gaps of up to ``max_gap``
    missing quarters included (they are analysed across, not cut at).

    >>> ends = pd.to_datetime(["2006-03-31", "2007-03-31", "2007-06-30", "2007-09-30",
    ...                        "2008-03-31", "2008-06-30"]).to_numpy()
    >>> [d.strftime("%Y-%m") for d in quarterly_grid(ends, max_gap=1)]
    ['2007-03', '2007-06', '2007-09', '2007-12', '2008-03', '2008-06']
    """
    ends = pd.DatetimeIndex(np.sort(np.unique(ends)))
    q = ends.to_period("Q")
    idx = np.array([p.ordinal for p in q])
    best, start = (0, 0), 0
    for i in range(1, idx.size + 1):
        if i == idx.size or idx[i] - idx[i - 1] > max_gap + 1:
            if idx[i - 1] - idx[start] > idx[best[1]] - idx[best[0]]:
                best = (start, i - 1)
            start = i
    first, last = q[best[0]], q[best[1]]
    return pd.period_range(first, last, freq="Q").to_timestamp(how="end").normalize()


def _series(k: pd.DataFrame, max_gap: int = 2) -> list[tuple[str, str, pd.DataFrame]]:
    """(source, period type, frame of area, offence, period_end, count, national) series.

    A period some areas lack gets no national total (a partial sum would move every other
    area's share): it is a gap in every series of that offence.
    """
    out = []
    for (source, ptype), g in k.groupby(["source", "period_type"]):
        if ptype not in ("month", "rolling_12m", "quarter"):
            continue
        g = g.groupby(["area", "offence", "period_end"], as_index=False)["count"].sum()
        if ptype == "rolling_12m":
            g = g[g["period_end"].dt.month.isin([3, 6, 9, 12])]
            grid = quarterly_grid(g["period_end"].unique(), max_gap)
            g = g[g["period_end"].isin(grid)]
        # A total over the offences counted in every period: a force-wide recording change
        # shows in it even when each offence alone is too noisy.
        n_periods = g["period_end"].nunique()
        steady = g.groupby("offence")["period_end"].nunique()
        steady = steady[steady == n_periods].index
        total = (g[g["offence"].isin(steady)].groupby(["area", "period_end"], as_index=False)
                 ["count"].sum().assign(offence=ALL_OFFENCES))
        g = pd.concat([g, total], ignore_index=True)
        by = g.groupby(["offence", "period_end"])
        national = by["count"].sum().rename("national")
        areas = by["area"].nunique()
        national = national.where(areas == areas.groupby(level="offence").transform("max"))
        g = g.join(national, on=["offence", "period_end"])
        out.append((source, ptype, g))
    return out


def break_tests(data: DetectInput, progress: Progress | None = None,
                settings: BreaksSettings | None = None,
                skips: Skips | None = None) -> list[Finding]:
    """Change points in each area's share of the national series, per offence."""
    settings = settings or BreaksSettings()
    skips = skips if skips is not None else Skips()
    k = data.counts
    if k is None:
        return []
    k = k[~k["adjustment"].fillna(False).astype(bool)]
    prepared = []
    for source, ptype, g in _series(k, settings.max_gap_periods):
        grid = (quarterly_grid(g["period_end"].unique(), settings.max_gap_periods)
                if ptype == "rolling_12m" else None)
        for (area, offence), s in g.groupby(["area", "offence"]):
            s = s.sort_values("period_end")
            unit = f"{source}: {area}: {offence}"
            if (skips.fewer(settings, "min_points", len(s), "periods", unit=unit)
                    or skips.fewer(settings, "min_median_count", float(s["count"].median()),
                                   "crimes per period (median)", unit=unit)):
                continue
            if grid is not None:
                s = _on_grid(s, grid, settings, skips, unit)
                if s is None:
                    continue
            prep = _prepare(ptype, s, settings, skips, unit)
            if prep is not None:
                prepared.append((source, ptype, area, offence, *prep))
    # Persistence is estimated per source and offence from all areas (median of each area's
    # AR(1) coefficient): one area's break cannot inflate it, and 40-odd quarterly points per
    # area give a badly biased coefficient on their own.
    rhos: dict[tuple[str, str], list[float]] = {}
    for source, _, _, offence, y, X, _, _ in prepared:
        rhos.setdefault((source, offence), []).append(null_rho(y, X))
    findings = []
    with resolve(progress).task("Recording-practice breaks", total=len(prepared)) as advance:
        for source, ptype, area, offence, y, X, ends, gaps in prepared:
            advance(1)
            rho = bias_corrected_rho(float(np.median(rhos[(source, offence)])), y.size)
            f = _one(source, ptype, area, offence, y, X, ends, rho, data.level,
                     settings.trim, gaps)
            if f is not None:
                findings.append(f)
    return findings


def _on_grid(s: pd.DataFrame, grid: pd.DatetimeIndex, settings: BreaksSettings, skips: Skips,
             unit: str) -> pd.DataFrame | None:
    """A rolling series on the source's quarterly grid: missing quarters become gaps (NaN)
    inside it; leading and trailing ones are trimmed; too long a gap is a skip, said so."""
    s = (s.set_index("period_end")[["count", "national"]].reindex(grid)
         .rename_axis("period_end").reset_index())
    have = s["count"].notna() & s["national"].notna()
    if not have.any():
        return None
    s = s.loc[have.idxmax(): have[::-1].idxmax()].reset_index(drop=True)
    missing = s["count"].isna() | s["national"].isna()
    runs = missing.groupby((~missing).cumsum()).sum()
    longest = int(runs.max()) if len(runs) else 0
    if longest > settings.max_gap_periods:
        skips.note(f"{unit}: a gap of {longest} quarters, more than max_gap_periods="
                   f"{settings.max_gap_periods}")
        return None
    s.loc[missing, ["count", "national"]] = np.nan
    return s


def _prepare(ptype: str, s: pd.DataFrame, settings: BreaksSettings | None = None,
             skips: Skips | None = None, unit: str = ""):
    """(log share, design without step, period ends, gap periods) of one series, or None if
    unusable. Gaps are the periods the source did not publish (flows estimated across)."""
    ends = s["period_end"].reset_index(drop=True)
    gaps = [d for d, c in zip(ends, s["count"].to_numpy(float), strict=True)
            if not np.isfinite(c)]
    if ptype == "rolling_12m":
        fa = quarterly_flows(s["count"].to_numpy(float))
        fn = quarterly_flows(s["national"].to_numpy(float))
        if fa is None or fn is None:
            return None
        area_n, nat_n, ends = fa, fn, ends.iloc[1:].reset_index(drop=True)
        season = ends.dt.quarter.to_numpy()
        seasons = range(2, 5)
    else:
        area_n = s["count"].to_numpy(float)
        nat_n = s["national"].to_numpy(float)
        season = ends.dt.month.to_numpy() if ptype == "month" else ends.dt.quarter.to_numpy()
        seasons = range(2, 13) if ptype == "month" else range(2, 5)
    ok = (area_n > 0) & (nat_n > area_n)
    settings = settings or BreaksSettings()
    skips = skips if skips is not None else Skips()
    if skips.fewer(settings, "min_points", int(ok.sum()), "usable periods", unit=unit):
        return None
    y = np.log(area_n[ok]) - np.log(nat_n[ok])
    ends, season = ends[ok].reset_index(drop=True), season[ok]
    n = y.size
    X = np.column_stack([np.ones(n)] + [(season == j).astype(float) for j in seasons])
    return y, X, ends, gaps


def _one(source, ptype, area, offence, y, X, ends, rho, level, trim=0.15,
         gaps=()) -> Finding | None:
    scan = sup_step_test(y, X, rho, trim)
    if scan is None:
        return None
    when = ends.iloc[scan.k]
    eff = math.exp(scan.step) - 1
    # The interval that agrees with the p-value allows for every date tried; the one given
    # the date (narrower) is kept in ``extra`` but never presented as evidence of a change.
    lo, hi = (math.exp(v) - 1 for v in scan.interval(level))
    glo, ghi = (math.exp(v) - 1 for v in scan.interval(level, simultaneous=False))
    flows = "quarterly flows from rolling 12-month totals" if ptype == "rolling_12m" else (
        f"{ptype}ly counts")
    rows = [{"period": d.strftime("%Y-%m-%d"), "share of national (%)": 100 * math.exp(v)}
            for d, v in zip(ends, y, strict=True)]
    gap_words = ""
    if gaps:
        shown = ", ".join(f"{d:%Y-%m-%d}" for d in gaps)
        gap_words = (f" No total was published (or loaded) for the period ending {shown}: "
                     "the series is analysed across the gap.")
    return Finding(
        test=TEST, unit=f"{source}: {area}: {offence}", effect=eff, lower=lo, upper=hi,
        effect_name="step in share of national at the break",
        p_value=scan.p, q_value=float("nan"),
        sentence=(
            f"The largest step in {area}'s share of national {offence} ({source}, {flows}) "
            f"was {100 * eff:+.0f}% from the period ending {when:%Y-%m-%d} "
            f"({100 * level:.0f}% CI {100 * lo:+.0f}% to {100 * hi:+.0f}%, allowing for the "
            f"{scan.dates} dates tried).{gap_words}"),
        level=level,
        method=f"sup-t step scan on log share of national, season terms, AR(1) prewhitening "
               f"(rho={rho:.2f}, median over areas), Bonferroni over {scan.dates} candidate "
               "dates (p and interval)",
        n=int(y.size),
        extra={"break_date": when.strftime("%Y-%m-%d"), "period_type": ptype, "source": source,
               "rho": rho, "interval_given_date": [glo, ghi],
               "gaps": [f"{d:%Y-%m-%d}" for d in gaps],
               "area": str(area), "measure": f"share of national {offence}",
               "date": when.strftime("%Y-%m-%d"), "scale": "relative",
               "chart": line_chart(rows, "period", "share of national (%)",
                                   f"{area}: {offence}", rule_x=when.strftime("%Y-%m-%d"),
                                   gaps=[f"{d:%Y-%m-%d}" for d in gaps])},
    )


class Breaks(Detector):
    """Test 7 (see the module notes)."""

    name = TEST
    question = ("Did an area's recording change at some date, so that its series stepped "
                "away from the national pattern?")
    needs = (("counts",),)
    Settings = BreaksSettings

    def run(self, data: DetectInput, settings: BreaksSettings,
            skips: Skips | None = None) -> list[Finding]:
        return break_tests(data, settings=settings, skips=skips)
