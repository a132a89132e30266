"""Test 9, calls for service: calls cleared as unfounded or with no report written, and
calls downgraded from their initial type, by beat or district, over time and at period ends.

Public calls-for-service data (Seattle's call data, San Francisco's incident reports) is the
closest public analogue of a force's incident log: each call has the type it was opened as,
often the type it was closed as, and how it was cleared ("REPORT WRITTEN", "FALSE
COMPLAINT/UNFOUNDED", "Unfounded"). Chasing targets shows there as more calls cleared
without a report, or as unfounded, where or when the pressure is, and as calls closed as a
less serious type than they were opened as.

**Data** (the input ``dispositions``): the ``incidents`` table when the project holds no crime
records (calls only: Seattle), with ``call_type`` (initial type), ``closing_code`` (or its
published text ``source_closing_description``, preferred where the ingest keeps it),
``final_call_type`` (where loaded), ``reported_at`` and ``division`` (beat, sector or
district); or crime records whose cancellations carry no cancellation date (incident reports
published with their resolution: San Francisco), where a cancelled report is one cleared as
unfounded. Projects with both incidents and crime records (a force's own exports, the
simulator) are left to the other tests, whose calibration this one would otherwise change.

**Measures.** ``unfounded``: the clearance matches a pattern of the setting ``unfounded``;
``no_report``: it matches none of ``report_written`` (incidents only); ``downgraded``: the
final type ranks below the initial type in :data:`CALL_TYPE_RANKS` (a small table of
patterns, groups and seriousness ranks covering Seattle's and similar call-type names;
replace it with the setting ``call_type_ranks``). A call whose types do not both match a
group is not counted either way.

**Tests**, each measure: by division (funnel with over-dispersion against the other
divisions, as the cancellation tests), over time (quasi-binomial GLM of the monthly share on a
linear trend: odds ratio per year, one-sided, rising), and at period ends (quasi-binomial GLM
of the daily share with calendar-month levels and nested indicators of the last days of a
month, quarter and financial year, as the period-end test: odds ratio, one-sided, higher).

>>> rank_call_type("ASLT - WITH OR W/O WPNS (NO SHOOTINGS)", CALL_TYPE_RANKS)
('assault', 70)
>>> rank_call_type("DISTURBANCE - FIGHT", CALL_TYPE_RANKS)
('fight', 30)
>>> rank_call_type("OBS - FIGHT - VERBAL/ORAL (NO WEAPONS)", CALL_TYPE_RANKS)
('fight', 30)
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import statsmodels.api as sm
from pydantic import Field
from scipy import stats

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.charts import line_chart
from crimeaudit.detect.downgrading import funnel_findings
from crimeaudit.detect.funnel import unit_counts
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.detect.periods import PERIOD_WORDS, PERIODS, last_days_flags
from crimeaudit.model.figures import Finding

TEST = "calls"
#: Call types by seriousness: (pattern searched in the type, ignoring case; group; rank).
#: The first matching pattern wins, so the specific come before the general.
CALL_TYPE_RANKS: tuple[tuple[str, str, int], ...] = (
    (r"homicide|murder|(?<!no )shoot|shots", "shooting or homicide", 90),
    (r"rape|sex(ual)? (assault|offen)|sodomy|child abuse", "sexual offence", 85),
    (r"robb|carjack", "robbery", 80),
    (r"kidnap|abduct", "kidnapping", 80),
    (r"aslt|assault|battery|stab|(?<!no )weapon|(?<!no )wpn|\bdv\b|domestic", "assault", 70),
    (r"burg|break.?in|prowl", "burglary", 60),
    (r"threat|thrt|haras|stalk", "threats or harassment", 50),
    # Before theft: "ALARM - AUDIBLE AUTOMOBILE (UNOCC/ANTI-THEFT)" is an alarm, not a theft.
    (r"alarm", "alarm", 10),
    (r"auto theft|veh(icle)? theft|stolen (veh|car)|motor vehicle theft", "vehicle theft", 45),
    (r"theft|larceny|shoplift|fraud|forgery|embezzl|pickpocket|purse", "theft or fraud", 40),
    (r"damage|damg|vandal|graffiti|mischief|arson|property dest", "criminal damage", 35),
    (r"fight", "fight", 30),
    (r"narcotic|drug|liquor|alcohol|dui|intox|overdose", "drugs or alcohol", 25),
    (r"lewd|exposing|sex in public", "lewd conduct", 25),
    # Calls that are not crimes share one rank: moving between them is not a downgrade.
    (r"disturb|noise|nuisance|party|trespass|disorder", "disturbance", 10),
    (r"suspicious|susp\b|check", "suspicious circumstances", 10),
    (r"traffic|parking|collision|accident|hazard|road", "traffic", 10),
    (r"assist|welfare|crisis|behavior|mental|missing|animal|found|lost|escort|service|unknown",
     "service or unknown", 10),
)
MEASURE_WORDS = {"unfounded": "calls cleared as unfounded",
                 "no_report": "calls cleared without a report written",
                 "downgraded": "calls closed as a less serious type than opened"}


class CallSettings(DetectorSettings):
    """Minimum data and the words that classify a call's clearance and types."""

    min_calls: int = Field(200, ge=1, description=(
        "Calls (or reports) needed before any calls-for-service test runs."))
    min_events: int = Field(30, ge=1, description=(
        "Calls of a measure (unfounded, no report, downgraded) needed to test it."))
    min_units: int = Field(3, ge=2, description=(
        "Beats, sectors or districts needed to compare them on a funnel."))
    min_calls_per_unit: int = Field(20, ge=1, description=(
        "Calls a beat or district needs to be placed on a funnel."))
    min_months: int = Field(12, ge=3, description=(
        "Months with calls needed for the trend over time."))
    min_days: int = Field(60, ge=1, description=(
        "Days with calls needed for the period-end test."))
    unfounded: list[str] = Field(default_factory=lambda: ["unfounded", "false complaint"],
                                 description=(
        "Patterns (searched, case ignored) of a clearance meaning unfounded."))
    report_written: list[str] = Field(
        default_factory=lambda: ["crime_recorded", "report written", "report made",
                                 "arrest", "citation issued"],
        description="Patterns (searched, case ignored) of a clearance with a report or "
                    "an arrest; any other clearance counts as no report written.")
    call_type_ranks: list[tuple[str, str, int]] = Field(
        default_factory=lambda: [list(r) for r in CALL_TYPE_RANKS], description=(
            "(pattern, group, seriousness rank) of call types, first match wins; a final "
            "type ranked below the initial one is a downgrade (built in: "
            "crimeaudit.detect.calls.CALL_TYPE_RANKS)."))


def rank_call_type(call_type, ranks) -> tuple[str, int] | tuple[None, None]:
    """The (group, rank) of a call type: the first pattern of ``ranks`` found in it."""
    if call_type is None or (isinstance(call_type, float) and math.isnan(call_type)):
        return None, None
    text = str(call_type)
    for pattern, group, rank in ranks:
        if re.search(pattern, text, re.IGNORECASE):
            return group, int(rank)
    return None, None


def _matches(values: pd.Series, patterns: list[str]) -> pd.Series:
    if not patterns:
        return pd.Series(False, index=values.index)
    rx = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    return values.fillna("").astype(str).map(lambda s: bool(rx.search(s)))


def call_measures(data: DetectInput, settings: CallSettings) -> tuple[pd.DataFrame, str]:
    """Calls per day, division and flags: ``date``, ``division``, ``unfounded``,
    ``no_report``, ``downgraded`` (``NA`` where not known), ``initial``/``final`` groups
    and ``n``; and the words for what a row is (calls or reports)."""
    d = data.call_dispositions()
    if d is None or d.empty:
        return pd.DataFrame(), "calls"
    kind = d.attrs.get("kind", "calls")
    out = pd.DataFrame({"date": d["date"], "division": d["division"], "n": d["n"]})
    out["unfounded"] = _matches(d["closing"], settings.unfounded) | d["cancelled"].fillna(False)
    if kind == "calls":
        out["no_report"] = ~_matches(d["closing"], settings.report_written)
    ranks = [tuple(r) for r in settings.call_type_ranks]
    ig = d["initial"].map(lambda t: rank_call_type(t, ranks))
    fg = d["final"].map(lambda t: rank_call_type(t, ranks))
    out["initial_group"] = ig.map(lambda x: x[0])
    out["final_group"] = fg.map(lambda x: x[0])
    ir_, fr_ = ig.map(lambda x: x[1]), fg.map(lambda x: x[1])
    known = ir_.notna() & fr_.notna()
    out["downgraded"] = (fr_ < ir_).where(known)
    return out, kind


class Calls(Detector):
    """Test 9 (see the module notes)."""

    name = TEST
    question = ("Are calls cleared as unfounded or with no report written, or closed as a "
                "less serious type than opened, more in some beats or districts, more over "
                "time, or at period ends?")
    needs = (("dispositions",),)
    Settings = CallSettings

    def run(self, data: DetectInput, settings: CallSettings,
            skips: Skips | None = None) -> list[Finding]:
        return call_tests(data, settings, skips)


def call_tests(data: DetectInput, settings: CallSettings | None = None,
               skips: Skips | None = None) -> list[Finding]:
    """Every calls-for-service test the data supports (see the module notes)."""
    settings = settings or CallSettings()
    skips = skips if skips is not None else Skips()
    calls, kind = call_measures(data, settings)
    if calls.empty or skips.fewer(settings, "min_calls", int(calls["n"].sum()), kind,
                                  unit=TEST):
        return []
    out: list[Finding] = []
    facts = {}
    for measure, words in MEASURE_WORDS.items():
        if measure not in calls:
            continue
        sub = calls[calls[measure].notna()]
        sub = sub.assign(flag=sub[measure].astype(bool))
        events = int(sub.loc[sub["flag"], "n"].sum())
        facts[measure] = {"events": events, "of": int(sub["n"].sum())}
        if skips.fewer(settings, "min_events", events, words, unit=measure):
            continue
        out += _by_division(sub, measure, words, kind, data.level, settings, skips)
        out += _over_time(sub, measure, words, kind, data.level, settings, skips)
        out += _period_ends(sub, measure, words, data, settings, skips)
    skips.facts.update({"kind": kind, "measures": facts})
    return out


def _by_division(sub, measure, words, kind, level, settings, skips) -> list[Finding]:
    if skips.fewer(settings, "min_units", sub["division"].dropna().nunique(),
                   "beats, sectors or districts", unit=f"{measure} by division"):
        return []
    units = unit_counts(sub.dropna(subset=["division"]), "division", "flag", weight="n")
    return funnel_findings(
        units, TEST, f"{words}, by beat or district", f"excess share of {words}", "greater",
        level,
        lambda r: (f"In {r.unit}, {r.events:,} of {r.n:,} {kind} ({100 * r.rate:.1f}%) were "
                   f"{words.removeprefix(kind + ' ').removeprefix('calls ')}, against "
                   f"{100 * r.p0:.1f}% in the other beats or districts."),
        min_n=settings.min_calls_per_unit, min_units=settings.min_units, settings=settings,
        skips=skips, min_n_setting="min_calls_per_unit", n_words=kind,
        area=lambda r: r.unit, measure=f"share of {words}")


def _quasi_binomial(events, total, X, level, alternative="greater"):
    """Last term of a quasi-binomial GLM of ``events / total``: odds ratio, interval, p."""
    res = sm.GLM(events / total, X, family=sm.families.Binomial(),
                 var_weights=total).fit(scale="X2", maxiter=100)
    scale = float(res.scale)
    b = float(res.params[-1])
    se = float(res.bse[-1]) * math.sqrt(max(scale, 1.0) / scale) if scale > 0 else math.nan
    if not (math.isfinite(b) and math.isfinite(se)) or se <= 0 or se > 10:
        return None
    df = max(float(res.df_resid), 1.0)
    z = stats.t.ppf(0.5 + level / 2, df)
    p = stats.t.sf(b / se, df) if alternative == "greater" else stats.t.cdf(b / se, df)
    return math.exp(b), math.exp(b - z * se), math.exp(b + z * se), float(p)


def _over_time(sub, measure, words, kind, level, settings, skips) -> list[Finding]:
    m = sub.assign(month=pd.to_datetime(sub["date"]).dt.to_period("M"))
    g = m.groupby("month").apply(
        lambda x: pd.Series({"events": float(x.loc[x["flag"], "n"].sum()),
                             "total": float(x["n"].sum())}), include_groups=False)
    g = g[g["total"] > 0]
    if skips.fewer(settings, "min_months", len(g), "months with calls",
                   unit=f"{measure} over time"):
        return []
    t = np.array([(p.start_time - g.index[0].start_time).days / 365.25 for p in g.index])
    X = np.column_stack([np.ones(len(g)), t])
    fit = _quasi_binomial(g["events"].to_numpy(), g["total"].to_numpy(), X, level)
    if fit is None:
        return []
    orr, lo, hi, p = fit
    rows = [{"month": str(k), "share (%)": 100 * r.events / r.total} for k, r in g.iterrows()]
    first, last = str(g.index[0]), str(g.index[-1])
    return [Finding(
        test=TEST, unit=f"{words}: trend over time", effect=orr, lower=lo, upper=hi,
        effect_name="odds ratio per year", p_value=p, q_value=float("nan"),
        sentence=(f"The share of {words} changed by a factor of {orr:.2f} a year in the odds "
                  f"from {first} to {last} ({100 * level:.0f}% CI {lo:.2f}-{hi:.2f}; "
                  f"{int(g['events'].sum()):,} of {int(g['total'].sum()):,} {kind})."),
        level=level,
        method="quasi-binomial GLM of the monthly share on a linear trend (dispersion "
               "floored at 1, t on residual df); one-sided (rising)",
        n=int(g["total"].sum()),
        extra={"area": "all", "measure": f"share of {words}, trend per year",
               "scale": "ratio", "first": first, "last": last,
               "chart": line_chart(rows, "month", "share (%)", f"Share of {words}")},
    )]


def _period_ends(sub, measure, words, data, settings, skips) -> list[Finding]:
    daily = sub.groupby("date").apply(
        lambda x: pd.Series({"events": float(x.loc[x["flag"], "n"].sum()),
                             "total": float(x["n"].sum())}), include_groups=False)
    daily = daily[daily["total"] > 0]
    if skips.fewer(settings, "min_days", len(daily), "days with calls",
                   unit=f"{measure} at period ends"):
        return []
    days = pd.Series(pd.to_datetime(daily.index), index=daily.index)
    last_days = data.targets.last_days
    flags = last_days_flags(days, last_days)
    periods = [p for p in PERIODS if p in data.targets.periods]
    months = pd.get_dummies(days.dt.strftime("%Y-%m"), dtype=float)
    out = []
    for period in periods:
        # Nested like the period-end test: a period's excess beyond the shorter ones.
        shorter = [q for q in periods if PERIODS.index(q) < PERIODS.index(period)]
        cols = [flags[q].astype(float).to_numpy() for q in shorter]
        x = flags[period].astype(float).to_numpy()
        if x.min() == x.max():
            continue
        X = np.column_stack([months.to_numpy(), *cols, x])
        X = X[:, X.any(axis=0)]
        fit = _quasi_binomial(daily["events"].to_numpy(), daily["total"].to_numpy(), X,
                              data.level)
        if fit is None:
            continue
        orr, lo, hi, p = fit
        word = PERIOD_WORDS[period]
        at_end = daily[flags[period].to_numpy()]
        rate_end = at_end["events"].sum() / max(at_end["total"].sum(), 1)
        rest = daily[~flags[period].to_numpy()]
        rate_rest = rest["events"].sum() / max(rest["total"].sum(), 1)
        out.append(Finding(
            test=TEST, unit=f"{words}: last {last_days} days of each {word}", effect=orr,
            lower=lo, upper=hi, effect_name=f"odds ratio, last {last_days} days of {word}",
            p_value=p, q_value=float("nan"),
            sentence=(f"In the last {last_days} days of each {word}, {100 * rate_end:.1f}% of "
                      f"{int(at_end['total'].sum()):,} were {words.split(' ', 1)[1]}, against "
                      f"{100 * rate_rest:.1f}% on other days (odds ratio {orr:.2f} within the "
                      f"same months, {100 * data.level:.0f}% CI {lo:.2f}-{hi:.2f})."),
            level=data.level,
            method="quasi-binomial GLM of the daily share with calendar-month levels and "
                   "nested period-end indicators; one-sided (higher)",
            n=int(daily["total"].sum()),
            extra={"area": "all", "scale": "ratio", "period": period,
                   "measure": f"share of {words} in the last {last_days} days of each "
                              f"{word}"},
        ))
    return out


__all__ = ["CALL_TYPE_RANKS", "CallSettings", "Calls", "call_measures", "call_tests",
           "rank_call_type"]
