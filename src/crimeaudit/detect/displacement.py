"""Test 6, displacement: an offence group under target falls while related groups without a
target, or the incidents that feed it, do not.

Counts (public or records): for each area and related pair (the serious class, usually under
target, against its minor neighbour; see :data:`crimeaudit.detect.downgrading.PAIRS`), the
area's two series and those of all other areas together are stacked and fitted by a
quasi-Poisson regression with one level per period and unit (shared shocks), group levels, a
shared group-specific trend and the area's own extra group trend; the effect is the yearly
rate ratio of the target group relative to its neighbour *beyond the other areas' change*
(a national change in recording or in the law is not displacement). When a target declares a
``start`` date, the trend terms are before/after steps instead (difference in differences).
Rolling 12-month totals are thinned to one non-overlapping point a year.

Records with incidents: crimes of a strand per incident of the call types that feed it, by
month, with a trend (quasi-Poisson with the incidents as exposure): a falling conversion while
reports hold up is the record-level sign of the same pressure.
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
from crimeaudit.detect.downgrading import PAIRS
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.detect.structural import NOT_COMPARABLE, not_comparable, one_sided
from crimeaudit.model.figures import Finding

TEST = "displacement"
FEEDS = {"violence": ["ASSAULT", "DOMESTIC", "THREATS"], "sexual": ["SEXUAL"],
         "robbery": ["ROBBERY"], "burglary": ["BURGLARY"], "theft": ["THEFT", "VEHICLE"],
         "criminal_damage": ["DAMAGE"]}


class DisplacementSettings(DetectorSettings):
    """Minimum data for the displacement tests."""

    min_periods: int = Field(6, ge=3, description=(
        "Periods an area's related pair needs in the counts."))
    min_pair_total: int = Field(100, ge=0, description=(
        "Crimes an area's related pair needs over all its periods."))
    min_months: int = Field(6, ge=3, description=(
        "Months with both crimes and feeding incidents needed for the crimes-per-incident "
        "test."))
    min_strand_crimes: int = Field(50, ge=1, description=(
        "Crimes a strand needs over those months for its crimes-per-incident test."))
    not_comparable: dict[str, str] = Field(default_factory=lambda: dict(NOT_COMPARABLE),
                                           description=(
        "Area name patterns (full match, case ignored) left out of the pair trends, each "
        "with the reason printed; areas with none of one side of a pair are left out too."))


def _glm_term(y, X, offset, level, alternative="less"):
    """The last term of a quasi-Poisson fit: rate ratio, interval and one-sided p.

    A year of monthly points leaves ten residual degrees of freedom: the dispersion is then an
    estimate, so intervals and p-values use Student's t on those degrees of freedom, and the
    dispersion is floored at 1 (counts are never less variable than Poisson; an estimate
    below 1 is noise that would shrink the standard error).
    """
    res = sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit(scale="X2", maxiter=100)
    scale = float(res.scale)
    b = float(res.params[-1])
    se = float(res.bse[-1]) * math.sqrt(max(scale, 1.0) / scale) if scale > 0 else math.nan
    if not (math.isfinite(b) and math.isfinite(se)) or se <= 0 or se > 10:
        return None
    df = max(float(res.df_resid), 1.0)
    z = stats.t.ppf(0.5 + level / 2, df)
    p = stats.t.cdf(b / se, df) if alternative == "less" else stats.t.sf(b / se, df)
    return math.exp(b), math.exp(b - z * se), math.exp(b + z * se), float(p)


def _match(names: pd.Series, rx: str) -> set:
    r = re.compile(rx, re.IGNORECASE)
    return set(names[names.map(lambda s: bool(r.fullmatch(str(s).strip())))])


def count_displacement(data: DetectInput, settings: DisplacementSettings | None = None,
                       skips: Skips | None = None) -> list[Finding]:
    """Each area's serious-against-minor trend beyond the other areas' (aggregate counts)."""
    settings = settings or DisplacementSettings()
    skips = skips if skips is not None else Skips()
    k = data.counts
    if k is None:
        return []
    k = k[~k["adjustment"].fillna(False).astype(bool)]
    start = next((t.start for t in data.targets.targets if t.start), None)
    out = []
    for (source, ptype), g in k.groupby(["source", "period_type"]):
        if ptype == "rolling_12m":
            last = g["period_end"].max().month
            g = g[g["period_end"].dt.month == last]  # one non-overlapping point a year
        names = pd.Series(g["offence"].unique())
        for pair, (srx, mrx) in PAIRS.items():
            serious = _match(names, srx)
            minor = _match(names, mrx) - serious
            if not serious or not minor:
                continue
            sub = g[g["offence"].isin(serious | minor)]
            sub = sub.assign(target=sub["offence"].isin(serious).astype(float))
            agg = sub.groupby(["area", "period_end", "target"], as_index=False)["count"].sum()
            agg = _comparable(agg, f"{source}: {pair}", pair, settings, skips)
            areas = agg["area"].unique()
            for area in areas:
                a = agg[agg["area"] == area].assign(unit=1.0)
                if len(areas) > 1:
                    # The other areas together: the area's change is measured against theirs,
                    # so a national shift in recording (or in the law) is not displacement.
                    rest = (agg[agg["area"] != area]
                            .groupby(["period_end", "target"], as_index=False)["count"].sum()
                            .assign(unit=0.0))
                    a = pd.concat([a.drop(columns="area"), rest], ignore_index=True)
                f = _pair_fit(a, start, data.level, settings, skips,
                              f"{source}: {area}: {pair}")
                if f is not None:
                    out.append(_finding(source, area, pair, f, start, data.level,
                                        a[a["unit"] == 1.0], len(areas) > 1))
    return out


def _comparable(agg: pd.DataFrame, label: str, pair: str, settings: DisplacementSettings,
                skips: Skips) -> pd.DataFrame:
    """The areas that can be compared on a pair (:mod:`crimeaudit.detect.structural`); the
    others are excluded, with the reason, from the test and from the other areas' total."""
    tot = agg.groupby(["area", "target"])["count"].sum().unstack(fill_value=0.0)
    drop = []
    for area, r in tot.iterrows():
        serious, minor = r.get(1.0, 0.0), r.get(0.0, 0.0)
        why = not_comparable(str(area), settings.not_comparable)
        if why is None and serious + minor >= settings.min_pair_total:
            why = one_sided(str(area), serious, minor, pair)
        if why is not None:
            skips.exclude(f"{label}: {area}", str(area), why)
            drop.append(area)
    return agg[~agg["area"].isin(drop)]


def _pair_fit(a: pd.DataFrame, start, level, settings: DisplacementSettings, skips: Skips,
              unit: str):
    """The target group's trend (or step) in the area beyond the rest's, as a rate ratio.

    With one level per period and unit, the Poisson model of the two groups is the binomial
    model of the target group's share in each period and unit, so it is fitted as that
    (quasi-binomial: logit share ~ unit + shared change + this area's extra change); the
    log odds ratio is reported as the rate ratio of target against neighbour.
    """
    a = a[a["count"] >= 0]
    wide = a.pivot_table(index=["period_end", "unit"], columns="target", values="count",
                         aggfunc="sum", fill_value=0.0).reset_index()
    if 1.0 not in wide or 0.0 not in wide:
        return None
    mine = wide[wide["unit"] == 1.0]
    if (skips.fewer(settings, "min_periods", len(mine), "periods", unit=unit)
            or skips.fewer(settings, "min_pair_total", float((mine[1.0] + mine[0.0]).sum()),
                           "crimes of the pair", unit=unit)):
        return None
    wide = wide[(wide[1.0] + wide[0.0]) > 0]
    years = (wide["period_end"] - wide["period_end"].min()).dt.days / 365.25
    if start is not None:
        change = (wide["period_end"] >= pd.Timestamp(start)).astype(float)
        if change.min() == change.max():
            return None
    else:
        change = years
    unit = wide["unit"].to_numpy(float)
    cols = [unit, 1 - unit] if (unit == 0).any() else [unit]
    if (unit == 0).any():
        cols.append(change.to_numpy(float))  # the shared (national) movement
    cols.append(change.to_numpy(float) * unit)  # this area's movement beyond it
    X = np.column_stack(cols)
    total = (wide[1.0] + wide[0.0]).to_numpy(float)
    # Proportions with the totals as variance weights: the two-column form of statsmodels
    # does not scale the Pearson dispersion by the totals.
    res = sm.GLM(wide[1.0].to_numpy(float) / total, X, family=sm.families.Binomial(),
                 var_weights=total).fit(scale="X2", maxiter=100)
    b, se = float(res.params[-1]), float(res.bse[-1])
    if not (math.isfinite(b) and math.isfinite(se)) or se <= 0 or se > 10:
        return None
    z = stats.norm.ppf(0.5 + level / 2)
    return (math.exp(b), math.exp(b - z * se), math.exp(b + z * se),
            float(stats.norm.cdf(b / se)))


def _finding(source, area, pair, f, start, level, a, vs_rest) -> Finding:
    rr, lo, hi, p = f
    beyond = " beyond the other areas' change" if vs_rest else ""
    if start is None:
        what = f"per year relative to its minor neighbour{beyond}"
        sentence = (f"In {source}, {area}: the serious side of the {pair} pair changed by "
                    f"{100 * (rr - 1):+.1f}% a year relative to the minor side{beyond} "
                    f"({100 * level:.0f}% CI {100 * (lo - 1):+.1f}% to {100 * (hi - 1):+.1f}%).")
    else:
        what = f"after {start} relative to its minor neighbour{beyond}"
        sentence = (f"In {source}, {area}: after {start} the serious side of the {pair} pair "
                    f"moved {100 * (rr - 1):+.1f}% relative to the minor side{beyond} "
                    f"({100 * level:.0f}% CI {100 * (lo - 1):+.1f}% to {100 * (hi - 1):+.1f}%).")
    rows = [{"period": r.period_end.strftime("%Y-%m-%d"), "count": float(r.count),
             "group": "serious (target)" if r.target else "minor (related)"}
            for r in a.itertuples()]
    return Finding(
        test=TEST, unit=f"{source}: {area}: {pair}", effect=rr, lower=lo, upper=hi,
        effect_name=f"rate ratio of target group {what}", p_value=p, q_value=float("nan"),
        sentence=sentence, level=level,
        method="quasi-binomial GLM of the target group's share (equivalent to Poisson with "
               "period x unit levels): unit levels, shared trend (or step) and this area's "
               "extra trend; one-sided (target falls)",
        n=int(a["count"].sum()),
        extra={"pair": pair, "source": source, "area": str(area), "scale": "ratio",
               "measure": (f"{pair}: serious side against minor side, "
                           + ("per year" if start is None else f"after {start}")
                           + (" beyond the other areas" if vs_rest else "")),
               "chart": line_chart(rows, "period", "count", f"{area}: {pair}", color="group")},
    )


def incident_displacement(data: DetectInput, settings: DisplacementSettings | None = None,
                          skips: Skips | None = None) -> list[Finding]:
    """Crimes per feeding incident, by month, with a trend, for each strand."""
    settings = settings or DisplacementSettings()
    skips = skips if skips is not None else Skips()
    if data.incidents is None or not data.has_records or "call_type" not in data.incidents.columns:
        return []
    # Monthly counts from the engine: incidents per call type, crimes per strand.
    inc = data.monthly_incidents()
    cr = data.monthly_crimes()
    months = sorted(set(inc["month"].dropna()) & set(cr["month"].dropna()))
    if skips.fewer(settings, "min_months", len(months), "months with crimes and incidents",
                   unit="records: crimes per feeding incident"):
        return []
    members = data.strand_members()
    targeted = {t.strand for t in data.targets.targets}
    out = []
    for strand, calls in FEEDS.items():
        if targeted and strand not in targeted:
            continue
        feed = inc[inc["call_type"].isin(calls)].groupby("month")["n"].sum().reindex(months)
        crimes = cr[cr["strand"].isin(members.get(strand, [strand]))].groupby("month")["n"].sum()
        crimes = crimes.reindex(months, fill_value=0)
        ok = feed.fillna(0).to_numpy() > 0
        unit = f"records: strand={strand}: crimes per feeding incident"
        if (skips.fewer(settings, "min_strand_crimes", int(crimes.sum()), "crimes", unit=unit)
                or skips.fewer(settings, "min_months", int(ok.sum()),
                               "months with feeding incidents", unit=unit)):
            continue
        t = np.arange(len(months), dtype=float)[ok] / 12
        X = np.column_stack([np.ones(ok.sum()), t])
        f = _glm_term(crimes.to_numpy(float)[ok], X, np.log(feed.to_numpy(float)[ok]),
                      data.level)
        if f is None:
            continue
        rr, lo, hi, p = f
        rows = [{"month": str(m), "crimes per incident": float(c / n) if n else None}
                for m, c, n in zip(months, crimes, feed.fillna(0), strict=True)]
        out.append(Finding(
            test=TEST, unit=f"records: strand={strand}: crimes per feeding incident",
            effect=rr, lower=lo, upper=hi, effect_name="yearly rate ratio of crimes per incident",
            p_value=p, q_value=float("nan"),
            sentence=(f"{strand.capitalize()} crimes recorded per incident of the calls that "
                      f"feed them changed by {100 * (rr - 1):+.1f}% a year "
                      f"({100 * data.level:.0f}% CI {100 * (lo - 1):+.1f}% to "
                      f"{100 * (hi - 1):+.1f}%)."),
            level=data.level,
            method="quasi-Poisson GLM (dispersion floored at 1, t on residual df), monthly "
                   "crimes with feeding incidents as exposure, linear trend; one-sided (falling)",
            n=int(crimes.sum()),
            extra={"strand": strand, "call_types": calls, "area": "all", "scale": "ratio",
                   "measure": f"{strand} crimes per incident of the calls that feed them, "
                              "per year",
                   "chart": line_chart(rows, "month", "crimes per incident",
                                       f"{strand}: crimes per feeding incident")},
        ))
    return out


def displacement_tests(data: DetectInput, settings: DisplacementSettings | None = None,
                       skips: Skips | None = None) -> list[Finding]:
    """Both displacement tests: aggregate counts, and crimes per feeding incident."""
    skips = skips if skips is not None else Skips()
    return (count_displacement(data, settings, skips)
            + incident_displacement(data, settings, skips))


class Displacement(Detector):
    """Test 6 (see the module notes)."""

    name = TEST
    question = ("Does the group under target fall while its related group without a target "
                "(or the incidents feeding it) does not?")
    needs = (("counts",), ("crimes", "incidents"))
    Settings = DisplacementSettings

    def run(self, data: DetectInput, settings: DisplacementSettings,
            skips: Skips | None = None) -> list[Finding]:
        return displacement_tests(data, settings, skips)
