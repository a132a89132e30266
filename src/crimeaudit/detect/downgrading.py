"""Test 3, downgrading: reclassification to less serious classes, and serious-to-minor ratios.

Record-level: for each division and strand, the share of crimes first recorded in the strand
that were later reclassified to a less serious class (``CodeLists`` seriousness ranks) is
compared with the other divisions on a funnel with over-dispersion (:mod:`funnel`). For each
division, officer (``changed_by``) and quarter, the share of reclassifications that go *down*
rather than up (asymmetry) is compared the same way.

Ratios (records or public counts): for related pairs (aggravated against simple assault,
residential burglary against theft in a dwelling or other theft, robbery against theft from the
person), each area's share of the serious class is compared with the other areas (one-sided:
a lower serious share is the sign of downgrading).
"""

from __future__ import annotations

import re

import pandas as pd
from pydantic import Field

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.charts import funnel_chart
from crimeaudit.detect.funnel import funnel_limits, funnel_test, unit_counts
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.detect.structural import NOT_COMPARABLE, not_comparable, one_sided
from crimeaudit.model.figures import Finding

TEST = "downgrading"
# Related pairs, matched (full match, case-insensitive) against offence names or codes.
PAIRS: dict[str, tuple[str, str]] = {
    "assault": (
        r"violence with injury|assault with injury|wounding/gbh|grievous bodily harm"
        r"|assault with deadly weapon.*|intimate partner - aggravated assault|8n|8p|5d|230|236",
        r"violence without injury|assault without injury|common assault"
        r"|battery - simple assault|intimate partner - simple assault|105a|105b|624|626",
    ),
    "burglary": (
        r"domestic burglary|residential burglary|burglary - residential|burglary in a dwelling"
        r"|burglary|28e|310",
        r"theft in a dwelling.*|other theft|all other theft offences|theft plain - petty.*"
        r"|40|440",
    ),
    "robbery": (
        r"robbery|robbery of personal property|personal property|34b|210",
        r"theft from the person|other theft person|theft person|theft, person|39|350",
    ),
}


class DowngradingSettings(DetectorSettings):
    """Minimum data for the downgrading tests."""

    min_units: int = Field(3, ge=2, description=(
        "Divisions, officers, quarters or areas needed to compare them on a funnel."))
    min_downgrades_per_strand: int = Field(5, ge=1, description=(
        "Downgrades a strand needs for its by-division downgrade-rate funnel."))
    min_crimes_per_unit: int = Field(20, ge=1, description=(
        "Crimes a division needs to be placed on a downgrade-rate funnel."))
    min_reclassifications_per_unit: int = Field(10, ge=1, description=(
        "Reclassifications (down or up) a division, officer or quarter needs on the "
        "asymmetry funnel."))
    min_pair_crimes_per_area: int = Field(20, ge=1, description=(
        "Crimes of a related pair (serious and minor) an area needs on the serious-share "
        "funnel."))
    not_comparable: dict[str, str] = Field(default_factory=lambda: dict(NOT_COMPARABLE),
                                           description=(
        "Area name patterns (full match, case ignored) left out of the pair comparisons, "
        "each with the reason printed; areas with none of one side of a pair are left out "
        "too."))


def plural(word: str) -> str:
    """English plural of a unit word (category -> categories)."""
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


def strand_words(data: DetectInput, strand: str) -> str:
    """A strand as a reader says it: ``violence`` -> ``violence against the person``."""
    text = data.codes.strand_description.get(strand, strand)
    return text[0].lower() + text[1:] if text[:2] != text[:2].upper() else text


def funnel_findings(
    units: pd.DataFrame, test: str, label: str, effect_name: str, alternative: str,
    level: float, sentence, min_n: int = 20, method_note: str = "", min_units: int = 3,
    skips: Skips | None = None, n_words: str = "records",
    settings: DetectorSettings | None = None, min_n_setting: str = "",
    min_units_setting: str = "min_units", *, measure=None, area=None, date=None,
) -> list[Finding]:
    """Run :func:`funnel_test` and turn each unit into a Finding with a funnel chart.

    ``min_units`` units are needed for a comparison and each needs ``min_n`` records
    (``n_words``); with ``settings`` and ``skips``, units and funnels left out are noted under
    the settings' names (``min_units_setting``, ``min_n_setting``). ``measure``, ``area`` and
    ``date`` (text, or a function of the unit's row) are what a reader sees: the measure in
    words, the area the unit is (default: ``all``, the whole force or source) and, for units
    that are periods, the period. The funnel's one chart (every unit's point) is shared by
    its findings; each finding names its unit in ``extra["highlight"]``.
    """
    skips = skips if skips is not None else Skips()
    if settings is not None:
        if skips.fewer(settings, min_units_setting, len(units), "units", unit=label):
            return []
        small = int((units["n"] < min_n).sum())
        if small and min_n_setting:
            skips.note(f"{label}: {small} of {len(units)} units with fewer than "
                       f"{min_n_setting}={min_n} {n_words} not tested")
    elif len(units) < min_units:
        return []
    res = funnel_test(units, alternative=alternative, level=level, min_n=min_n)
    res = res[res["p_value"].notna()]
    if res.empty:
        return []
    pooled = units["events"].sum() / units["n"].sum()
    tau2 = float(res["tau2"].median())
    limits = funnel_limits(pooled, tau2, res["n"].min(), res["n"].max())
    pts = [{"unit": str(r.unit), "n": float(r.n), "rate": float(r.rate)}
           for r in res.itertuples()]
    # One chart per funnel, shared by its findings (written once beside them).
    chart = funnel_chart(pts, limits, f"{effect_name}: {label}")

    def reader(value, r, default):
        if value is None:
            return default
        return value(r) if callable(value) else value

    out = []
    for r in res.itertuples():
        extra = {"rate": float(r.rate), "comparison_rate": float(r.p0),
                 "events": int(r.events), "tau2": float(r.tau2), "scale": "difference",
                 "area": str(reader(area, r, "all")),
                 "measure": reader(measure, r, f"{effect_name}, {label}"),
                 "chart": chart, "highlight": str(r.unit)}
        when = reader(date, r, None)
        if when is not None:
            extra["date"] = str(when)
        out.append(Finding(
            test=test, unit=f"{label}: {r.unit}", effect=float(r.diff), lower=float(r.lower),
            upper=float(r.upper), effect_name=effect_name, p_value=float(r.p_value),
            q_value=float("nan"), sentence=sentence(r), level=level,
            method=f"funnel plot, Spiegelhalter over-dispersion (leave-one-out); {alternative}"
                   + method_note,
            n=int(r.n), extra=extra,
        ))
    return out


def reclassification_tests(data: DetectInput, settings: DowngradingSettings | None = None,
                           skips: Skips | None = None) -> list[Finding]:
    """Downgrade rates by division and strand; down/up asymmetry by division, officer, quarter."""
    settings = settings or DowngradingSettings()
    skips = skips if skips is not None else Skips()
    if not data.has_records or data.changes is None:
        return []
    lvl = data.level
    # Crimes by the strand of their first class, division and whether downgraded (engine).
    frame = data.reclassified_crimes()
    out: list[Finding] = []
    members = data.strand_members()
    n_div = frame["division"].dropna().nunique()
    common = {"settings": settings, "skips": skips, "min_units": settings.min_units}
    if not skips.fewer(settings, "min_units", n_div, "divisions",
                       unit="downgrade rate by division"):
        for s, mem in members.items():
            sub = frame if s == "all" else frame[frame["strand"].isin(mem)]
            n_down = int(sub.loc[sub["down"], "n"].sum())
            if skips.fewer(settings, "min_downgrades_per_strand", n_down, "downgrades",
                           unit=f"downgrade rate, strand={s}"):
                continue
            units = unit_counts(sub, "division", "down", weight="n")
            words = strand_words(data, s)
            out += funnel_findings(
                units, TEST, f"downgrade rate, strand={s}, by division",
                "excess share downgraded (vs other divisions)", "greater", lvl,
                lambda r, words=words: (
                    f"In division {r.unit}, {r.events:,} of {r.n:,} crimes ({words}, "
                    f"{100 * r.rate:.1f}%) were reclassified to a less serious class, against "
                    f"{100 * r.p0:.1f}% in the other divisions."),
                min_n=settings.min_crimes_per_unit, min_n_setting="min_crimes_per_unit",
                n_words="crimes", area=lambda r: r.unit,
                measure=f"share of crimes reclassified to a less serious class ({words})",
                **common)
    # Asymmetry: share of changes that are downgrades, by division, officer and quarter.
    known = data.reclassifications()
    for key in ("division", "changed_by", "quarter"):
        name = "officer" if key == "changed_by" else key
        if key == "changed_by" and not data.change_has("changed_by"):
            continue
        if skips.fewer(settings, "min_units", known[key].dropna().nunique(), plural(name),
                       unit=f"down-vs-up asymmetry by {name}"):
            continue
        units = unit_counts(known, key, "is_down", weight="n")
        out += funnel_findings(
            units, TEST, f"down-vs-up asymmetry by {name}",
            "excess share of reclassifications that are downgrades", "greater", lvl,
            lambda r, name=name: (
                f"For {name} {r.unit}, {r.events:,} of {r.n:,} reclassifications "
                f"({100 * r.rate:.1f}%) went to a less serious class, against "
                f"{100 * r.p0:.1f}% elsewhere."),
            min_n=settings.min_reclassifications_per_unit,
            min_n_setting="min_reclassifications_per_unit", n_words="reclassifications",
            area=(lambda r: r.unit) if key == "division" else None,
            measure=((lambda r: "share of reclassifications that were downgrades, officer "
                      f"{r.unit}") if key == "changed_by" else
                     "share of reclassifications that were downgrades"),
            date=(lambda r: r.unit) if key == "quarter" else None, **common)
    return out


def _match(names: pd.Series, pattern: str) -> pd.Series:
    rx = re.compile(pattern, re.IGNORECASE)
    return names.map(lambda s: bool(rx.fullmatch(str(s).strip())))


def pair_frames(data: DetectInput) -> list[tuple[str, pd.DataFrame]]:
    """(source, frame of area, offence, count) for counts sources and for records."""
    frames = []
    if data.counts is not None:
        k = data.counts[~data.counts["adjustment"].fillna(False).astype(bool)]
        # Rolling totals overlap; the latest 12 months per area is one honest cross-section.
        for source, g in k.groupby("source"):
            if (g["period_type"] == "rolling_12m").all():
                g = g[g["period_end"] == g["period_end"].max()]
            frames.append((source, g[["area", "offence", "count"]]))
    if data.has_records:
        mix = data.crime_mix()  # crimes per offence code and division, counted in the engine
        if mix["division"].notna().any():
            desc = {k: o.description for k, o in data.codes.offences.items()}
            names = mix["offence_code"].map(desc).fillna(mix["offence_code"])
            f = pd.DataFrame({"area": mix["division"], "offence": names,
                              "count": mix["n"].astype(float)})
            frames.append(("records", f.dropna(subset=["area"])))
    return frames


def pair_ratio_tests(data: DetectInput, settings: DowngradingSettings | None = None,
                     skips: Skips | None = None) -> list[Finding]:
    """Each area's serious share within related pairs against the other areas."""
    settings = settings or DowngradingSettings()
    skips = skips if skips is not None else Skips()
    out: list[Finding] = []
    for source, f in pair_frames(data):
        names = pd.Series(f["offence"].unique())
        for pair, (serious_rx, minor_rx) in PAIRS.items():
            serious = set(names[_match(names, serious_rx)])
            minor = set(names[_match(names, minor_rx)]) - serious
            if not serious or not minor:
                continue
            s = f[f["offence"].isin(serious)].groupby("area")["count"].sum()
            m = f[f["offence"].isin(minor)].groupby("area")["count"].sum()
            units = pd.DataFrame({"events": s, "n": s.add(m, fill_value=0)}).fillna(0)
            units = units[units["n"] > 0].reset_index().rename(columns={"area": "unit"})
            label = f"{source}: serious share, {pair}"
            units = comparable_units(units, label, pair, settings.not_comparable, skips,
                                     settings.min_pair_crimes_per_area)
            measure = (f"share of {' and '.join(sorted(serious))} among "
                       f"{' and '.join(sorted(serious))} and {' and '.join(sorted(minor))}")
            out += funnel_findings(
                units, TEST, label, f"difference in serious share ({pair})", "less",
                data.level,
                lambda r, pair=pair, source=source, serious=serious: (
                    f"{r.unit} recorded {100 * r.rate:.1f}% of its {pair} pair as "
                    f"{' or '.join(sorted(serious))} ({source}), against "
                    f"{100 * r.p0:.1f}% in the other areas."),
                method_note=f"; serious={sorted(serious)}, minor={sorted(minor)}",
                min_n=settings.min_pair_crimes_per_area, min_units=settings.min_units,
                settings=settings, skips=skips, min_n_setting="min_pair_crimes_per_area",
                n_words=f"{pair} crimes", area=lambda r: r.unit, measure=measure)
    return out


def comparable_units(units: pd.DataFrame, label: str, pair: str, patterns, skips: Skips,
                     min_n: float = 0) -> pd.DataFrame:
    """The areas of a pair comparison that can be compared; the others excluded with why
    (:mod:`crimeaudit.detect.structural`). ``units`` has ``unit``, ``events`` (serious) and
    ``n`` (both sides). An area with fewer than ``min_n`` crimes of the pair is left to the
    minimum-data setting (a handful of crimes all on one side is not a structural fact)."""
    keep = []
    for r in units.itertuples():
        why = not_comparable(str(r.unit), patterns)
        if why is None and r.n >= min_n:
            why = one_sided(str(r.unit), r.events, r.n - r.events, pair)
        if why is not None:
            skips.exclude(f"{label}: {r.unit}", str(r.unit), why)
        keep.append(why is None)
    return units[keep].reset_index(drop=True)


class Downgrading(Detector):
    """Test 3 (see the module notes)."""

    name = TEST
    question = ("Are crimes reclassified to less serious classes more in some divisions, "
                "officers or quarters, and is the serious share of related pairs lower in "
                "some areas?")
    needs = (("crimes",), ("counts",))
    Settings = DowngradingSettings

    def run(self, data: DetectInput, settings: DowngradingSettings,
            skips: Skips | None = None) -> list[Finding]:
        skips = skips if skips is not None else Skips()
        return (reclassification_tests(data, settings, skips)
                + pair_ratio_tests(data, settings, skips))
