"""Test 1, period-end effects: cancellations, downgrades and late recording bunched in the last
days of a month, quarter or financial year.

Record-level data: for each unit (strand, division), daily event counts are modelled by a
quasi-Poisson regression (Poisson mean, variance scaled by the Pearson dispersion, so
over-dispersion is allowed) with calendar terms: day of week, one level per calendar month
(absorbing trend and season), and nested indicators for the last ``last_days`` days of a
month, of a quarter and of a financial year. The effect is the rate ratio of the indicator:
with nesting, the quarter coefficient is the excess at quarter ends *beyond* ordinary month ends.

Which indicators enter the model follows the declared targets: without a targets file all
three (each period's excess beyond the shorter one); with one, only the declared periods, so a
quarterly target is tested as "the last days of each quarter against the other days of the same
months", using every day as control rather than only the other month ends (much more power; the
assumption is that the force has no innocent month-end rhythm in the measure: declare ``month``
as well to test quarter ends beyond month ends).
Late recording (recorded more than the timeliness limit after the report) is modelled per
reporting day with the day's reports as exposure.

Monthly aggregate data (``counts``): per offence (and per area) the monthly count is modelled
with series levels, year levels, smooth seasonality (two harmonics) and days-in-month exposure,
plus
indicators for the last month of a quarter and of the financial year (March).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import statsmodels.api as sm
from pydantic import Field
from scipy import stats

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.charts import bar_chart, line_chart
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.detect.periods import PERIOD_WORDS, PERIODS, days_to_month_end, last_days_flags
from crimeaudit.detect.reading import scope_fields
from crimeaudit.model.figures import Finding
from crimeaudit.progress import Progress, resolve

TEST = "period_end"
MEASURE_WORDS = {
    "cancellations": "cancellations",
    "downgrades": "reclassifications to a less serious offence",
    "late_recording": "crimes recorded late",
}


def _daily_design(days: pd.DatetimeIndex, last_days: int, periods: list[str]) -> pd.DataFrame:
    d = pd.Series(days, index=days)
    flags = last_days_flags(d, last_days)
    X = pd.get_dummies(d.dt.weekday, prefix="wd", drop_first=True, dtype=float)
    ym = pd.get_dummies(d.dt.strftime("%Y-%m"), prefix="ym", drop_first=False, dtype=float)
    X = pd.concat([X, ym], axis=1)
    for p in periods:
        if flags[p].any() and not flags[p].all():
            X[f"end_{p}"] = flags[p].astype(float)
    return X


def fit_rate_ratios(
    y: np.ndarray, X: pd.DataFrame, exposure: np.ndarray | None, terms: list[str], level: float,
    exact_test: bool = True,
) -> dict[str, tuple[float, float, float, float]]:
    """Quasi-Poisson fit; for each indicator term: (rate ratio, lower, upper, one-sided p).

    The interval is Wald on the log scale. The p-value: with ``exact_test`` (daily
    counts) the exact conditional test of :func:`_conditional_p`; otherwise (large monthly
    counts) the Wald z.
    """
    offset = None if exposure is None else np.log(exposure)
    # Calendar levels with no days left (after masking) carry no information: drop them.
    X = X.loc[:, X.to_numpy().any(axis=0)]
    model = sm.GLM(y, X.to_numpy(), family=sm.families.Poisson(), offset=offset)
    try:
        res = model.fit(scale="X2", maxiter=100)
    except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - degenerate data
        return {}
    z = stats.norm.ppf(0.5 + level / 2)
    out = {}
    cols = list(X.columns)
    Xa = X.to_numpy()
    month_cols = [j for j, c in enumerate(cols) if c.startswith("ym_")]
    month_of_day = Xa[:, month_cols].argmax(axis=1) if month_cols else np.zeros(len(y), int)
    for t in terms:
        if t not in cols:
            continue
        i = cols.index(t)
        b, se = float(res.params[i]), float(res.bse[i])
        if not (math.isfinite(b) and math.isfinite(se)) or se <= 0 or abs(b) > 20 or se > 10:
            continue
        if not exact_test:  # large monthly counts: Wald is accurate and cheaper
            p = float(stats.norm.sf(b / se))
            out[t] = (math.exp(b), math.exp(b - z * se), math.exp(b + z * se), p)
            continue
        try:
            reduced = sm.GLM(y, np.delete(Xa, i, axis=1), family=sm.families.Poisson(),
                             offset=offset).fit(maxiter=100)
        except (ValueError, np.linalg.LinAlgError):  # pragma: no cover
            continue
        flagged = Xa[:, i] > 0
        same_months = np.isin(month_of_day, month_of_day[flagged])
        p = _conditional_p(y, reduced.fittedvalues, flagged, same_months, float(res.scale))
        out[t] = (math.exp(b), math.exp(b - z * se), math.exp(b + z * se), p)
    return out


def _conditional_p(y, mu0, flagged, same_months, scale: float) -> float:
    """One-sided p of the events on ``flagged`` days given the total of their months.

    Every flagged day lies inside a calendar month that has its own level in the model, so
    conditioning on those months' total removes the month levels exactly (a Poisson count
    split between days is multinomial): the flagged days' count is binomial with the share the
    model *without* the indicator gives them (weekday and any shorter-period terms kept). With
    one or a few period ends and a few events a day, the likelihood-ratio and Wald tests are
    too liberal (measured: false alarms on compliant simulated forces); this test is exact.
    Over-dispersion (Pearson ``scale`` > 1) widens the binomial into a beta-binomial with the
    same variance inflation.
    """
    total = float(y[same_months].sum())
    observed = float(y[flagged].sum())
    if total < 1:
        return 1.0
    share = float(mu0[flagged].sum() / mu0[same_months].sum())
    share = min(max(share, 1e-12), 1 - 1e-12)
    n = int(round(total))
    inflation = max(scale, 1.0)
    if inflation > 1.0 and n > 1:
        rho = min((inflation - 1.0) / (n - 1), 0.999)
        k = 1.0 / rho - 1.0
        return float(stats.betabinom(n, share * k, (1 - share) * k).sf(observed - 1))
    return float(stats.binom(n, share).sf(observed - 1))


def _events(data: DetectInput) -> dict[str, pd.DataFrame]:
    """Daily event counts (date, strand, division, n) per measure, from the engine."""
    return data.daily_events() if data.has_records else {}


def _daily(sub: pd.DataFrame, days: pd.DatetimeIndex) -> pd.Series:
    """Events per day over ``days`` (0 on days without any)."""
    return sub.groupby("date")["n"].sum().reindex(days, fill_value=0).astype("int64")


def _units(data: DetectInput, ev: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """(unit label, row mask) for each strand, each division, and targeted strand x division."""
    members = data.strand_members()
    units: list[tuple[str, pd.Series]] = [("all", pd.Series(True, index=ev.index))]
    targeted = {t.strand for t in data.targets.targets}
    for s, mem in members.items():
        if s == "all" or (targeted and s not in targeted):
            continue
        units.append((f"strand={s}", ev["strand"].isin(mem)))
    divisions = sorted(d for d in ev["division"].dropna().unique())
    if len(divisions) > 1:
        for dv in divisions:
            units.append((f"division={dv}", ev["division"] == dv))
            for s in (targeted & set(members)) - {"all"}:
                mask = (ev["division"] == dv) & ev["strand"].isin(members[s])
                units.append((f"strand={s}, division={dv}", mask))
    return units


def _profile_chart(counts: pd.Series, days: pd.DatetimeIndex, period: str, title: str) -> dict:
    """Mean events per day by days before the month end, period-end months against others."""
    d = pd.Series(days, index=days)
    before = days_to_month_end(d)
    if period == "month":
        label = np.full(len(d), "all months", dtype=object)
    else:
        ends = [3, 6, 9, 12] if period == "quarter" else [3]
        label = np.where(d.dt.month.isin(ends), f"{PERIOD_WORDS[period]}-end months",
                         "other months")
    frame = pd.DataFrame({"before": before.to_numpy(), "n": counts.to_numpy(), "months": label})
    frame = frame[frame["before"] < 14]
    agg = frame.groupby(["before", "months"], as_index=False)["n"].mean()
    rows = [{"days before month end": int(r.before), "events per day": float(r.n),
             "months": r.months} for r in agg.itertuples()]
    return bar_chart(rows, "days before month end", "events per day", title, color="months")


class PeriodEndSettings(DetectorSettings):
    """Minimum data for the period-end tests (defaults: the values the tests were
    calibrated with)."""

    min_events: int = Field(30, ge=1, description=(
        "Events (cancellations, downgrades or late recordings) a unit needs over the span "
        "for its period-end test."))
    min_days: int = Field(60, ge=1, description=(
        "Whole days of records (after dropping part months and the first month) needed for "
        "the record-level tests."))
    min_days_with_reports: int = Field(60, ge=1, description=(
        "Days with at least one report a unit needs for its late-recording test."))
    min_months: int = Field(24, ge=1, description=(
        "Months a series of monthly counts needs for its period-end-month test."))
    min_monthly_total: int = Field(200, ge=0, description=(
        "Crimes a series of monthly counts needs in total."))


def period_end_records(
    data: DetectInput, last_days: int = 3, progress: Progress | None = None,
    settings: PeriodEndSettings | None = None, skips: Skips | None = None,
) -> list[Finding]:
    """Record-level period-end tests for every measure, unit and period the data supports."""
    progress = resolve(progress)
    settings = settings or PeriodEndSettings()
    skips = skips if skips is not None else Skips()
    if not data.has_records:
        return []
    periods = data.targets.periods
    findings: list[Finding] = []
    all_events = _events(data)
    # Whole calendar months only: a part month would make its month level collinear with
    # its period-end days.
    first = data.facts["first_recorded"].normalize()
    last = data.facts["last_recorded"].normalize()
    start = first if first.day == 1 else first + pd.offsets.MonthBegin(1)
    # Skip the first whole month too: cancellations and reclassifications there can only
    # come from records made since the extract began, so they ramp up through the month and
    # would look like a month-end excess.
    start = start + pd.offsets.MonthBegin(1)
    end = last if last.is_month_end else last - pd.offsets.MonthEnd(1)
    days = pd.date_range(start, end, freq="D")
    if skips.fewer(settings, "min_days", len(days), "whole days of records",
                   unit="records"):
        return []
    # Declared periods only (nested among themselves); all three when none is declared.
    modelled = [p for p in PERIODS if p in periods]
    X = _daily_design(days, last_days, modelled)
    with progress.task("Period-end effects", total=len(all_events)) as advance:
        for measure, ev in all_events.items():
            ev = ev[(ev["date"] >= start) & (ev["date"] <= end)]
            for unit, mask in _units(data, ev):
                sub = ev[mask]
                label = f"{measure}: {unit}"
                if measure == "late_recording":
                    reports = _daily(sub, days)
                    y = _daily(sub[sub["late"]], days)
                    keep = reports.to_numpy() > 0
                    if (skips.fewer(settings, "min_events", int(y.sum()), "late recordings",
                                    unit=label)
                            or skips.fewer(settings, "min_days_with_reports", int(keep.sum()),
                                           "days with reports", unit=label)):
                        continue
                    res = fit_rate_ratios(y.to_numpy()[keep], X[keep], reports.to_numpy()[keep],
                                          [f"end_{p}" for p in periods], data.level)
                else:
                    y = _daily(sub, days)
                    if skips.fewer(settings, "min_events", int(y.sum()), MEASURE_WORDS[measure],
                                   unit=label):
                        continue
                    res = fit_rate_ratios(y.to_numpy(), X, None, [f"end_{p}" for p in periods],
                                          data.level)
                for p in periods:
                    if f"end_{p}" not in res:
                        continue
                    rr, lo, hi, pv = res[f"end_{p}"]
                    findings.append(_finding(measure, unit, p, rr, lo, hi, pv, int(y.sum()),
                                             last_days, data.level, y, days, modelled,
                                             data.codes.strand_description))
            advance(1)
    return findings


def _finding(measure, unit, period, rr, lo, hi, pv, n, last_days, level, daily, days,
             modelled, strands=None) -> Finding:
    word = MEASURE_WORDS[measure]
    shorter = [p for p in modelled if PERIODS.index(p) < PERIODS.index(period)]
    beyond = f" beyond the usual {PERIOD_WORDS[shorter[-1]]}-end pattern" if shorter else ""
    sentence = (
        f"{word[0].upper() + word[1:]} ({unit}) ran at {rr:.2f} times the usual daily rate in the "
        f"last {last_days} days of each {PERIOD_WORDS[period]}{beyond} "
        f"({100 * level:.0f}% CI {lo:.2f}-{hi:.2f}; {n:,} events)."
    )
    return Finding(
        test=TEST, unit=f"{measure}: {unit}: {period}", effect=rr, lower=lo, upper=hi,
        effect_name=f"rate ratio, last {last_days} days of {PERIOD_WORDS[period]}",
        p_value=pv, q_value=float("nan"), sentence=sentence, level=level,
        method="quasi-Poisson GLM, day-of-week + calendar-month terms, nested period-end "
               f"indicators ({', '.join(modelled)}); one-sided exact test given the months' "
               "totals (beta-binomial with the Pearson dispersion)",
        n=n,
        extra={"event": measure, "period": period, "last_days": last_days,
               **scope_fields(unit, f"{word} in the last {last_days} days of each "
                                    f"{PERIOD_WORDS[period]}", strands),
               "scale": "ratio",
               "chart": _profile_chart(daily, days, period, f"{word}: {unit}")},
    )


# -- monthly aggregate counts ----------------------------------------------------------------


def period_end_counts(data: DetectInput, progress: Progress | None = None,
                      settings: PeriodEndSettings | None = None,
                      skips: Skips | None = None) -> list[Finding]:
    """Quarter-end and financial-year-end month effects in monthly public counts."""
    settings = settings or PeriodEndSettings()
    skips = skips if skips is not None else Skips()
    k = data.counts
    if k is None:
        return []
    monthly = k[(k["period_type"] == "month") & ~k["adjustment"].fillna(False).astype(bool)]
    if monthly.empty:
        return []
    findings: list[Finding] = []
    groups = []
    for source, src in monthly.groupby("source"):
        for key, series_key in (("offence", "area"), ("area", "offence")):
            for name, g in src.groupby(key):
                groups.append((source, key, name, series_key, g))
    with progress_task(progress, "Period-end effects (monthly counts)", len(groups)) as advance:
        for source, key, name, series_key, g in groups:
            f = _monthly_unit(g, series_key, data.level, settings, skips,
                              f"{source}: {key}={name}")
            advance(1)
            if f is None:
                continue
            for period, (rr, lo, hi, p) in f["effects"].items():
                word = PERIOD_WORDS[period]
                findings.append(Finding(
                    test=TEST, unit=f"{source}: {key}={name}: {period}-end month", effect=rr,
                    lower=lo, upper=hi, effect_name=f"rate ratio, last month of {word}",
                    p_value=p, q_value=float("nan"),
                    sentence=(
                        f"In {source}, {key} {name} recorded {rr:.2f} times the expected monthly "
                        f"count in the last month of each {word} ({100 * data.level:.0f}% CI "
                        f"{lo:.2f}-{hi:.2f}), allowing for trend, smooth seasonality and "
                        f"month length."
                    ),
                    level=data.level,
                    method="quasi-Poisson GLM: series + year levels, 2 seasonal harmonics, "
                           "days-in-month exposure; two-sided",
                    n=int(f["n"]),
                    extra={"source": source, "period": period, "chart": f["chart"],
                           "area": str(name) if key == "area" else "all",
                           "measure": (
                               f"monthly count of {name if key == 'offence' else 'all offences'}"
                               f" in the last month of each {word}"),
                           "scale": "ratio"},
                ))
    return findings


def progress_task(progress: Progress | None, description: str, total: int):
    return resolve(progress).task(description, total=total)


def _monthly_unit(g: pd.DataFrame, series_key: str, level: float,
                  settings: PeriodEndSettings, skips: Skips, unit: str) -> dict | None:
    g = g.groupby([series_key, "period_start"], as_index=False)["count"].sum()
    g = g[g["count"] >= 0]
    if (skips.fewer(settings, "min_months", g["period_start"].nunique(), "months", unit=unit)
            or skips.fewer(settings, "min_monthly_total", float(g["count"].sum()), "crimes",
                           unit=unit)):
        return None
    t = g["period_start"]
    m = t.dt.month
    # Series levels plus year levels (log-additive): a series-by-year grid would be hundreds
    # of columns for a borough file and adds little once the dispersion is estimated.
    X = pd.concat([pd.get_dummies(g[series_key].astype(str), dtype=float),
                   pd.get_dummies(t.dt.year.astype(str), prefix="y", drop_first=True,
                                  dtype=float)], axis=1)
    for h in (1, 2):
        X[f"sin{h}"] = np.sin(2 * np.pi * h * m / 12)
        X[f"cos{h}"] = np.cos(2 * np.pi * h * m / 12)
    X["end_quarter"] = m.isin([3, 6, 9, 12]).astype(float)
    X["end_financial_year"] = (m == 3).astype(float)
    exposure = t.dt.days_in_month.to_numpy(float)
    res = fit_rate_ratios(g["count"].to_numpy(float), X, exposure,
                          ["end_quarter", "end_financial_year"], level, exact_test=False)
    if not res:
        return None
    # Two-sided here: deferral lowers the period-end month, a push for detections may raise it.
    effects = {}
    for term, (rr, lo, hi, p1) in res.items():
        effects[term.removeprefix("end_")] = (rr, lo, hi, min(1.0, 2 * min(p1, 1 - p1)))
    total = g.groupby("period_start", as_index=False)["count"].sum()
    rows = [{"month": r.period_start.strftime("%Y-%m-%d"), "count": float(r.count),
             "quarter end": bool(r.period_start.month in (3, 6, 9, 12))}
            for r in total.itertuples()]
    chart = line_chart(rows, "month", "count", "Monthly count (all series in unit)")
    return {"effects": effects, "n": g["count"].sum(), "chart": chart}


class PeriodEnd(Detector):
    """Test 1 (see the module notes)."""

    name = TEST
    question = ("Are cancellations, downgrades or late recordings concentrated in the last "
                "days of a month, quarter or financial year?")
    needs = (("crimes",), ("monthly_counts",))
    Settings = PeriodEndSettings

    def run(self, data: DetectInput, settings: PeriodEndSettings,
            skips: Skips | None = None) -> list[Finding]:
        return (period_end_records(data, data.targets.last_days, settings=settings, skips=skips)
                + period_end_counts(data, settings=settings, skips=skips))
