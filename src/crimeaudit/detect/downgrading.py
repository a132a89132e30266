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

from crimeaudit.detect.charts import funnel_chart
from crimeaudit.detect.funnel import funnel_limits, funnel_test, unit_counts
from crimeaudit.detect.inputs import DetectInput
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


def plural(word: str) -> str:
    """English plural of a unit word (category -> categories)."""
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


def funnel_findings(
    units: pd.DataFrame, test: str, label: str, effect_name: str, alternative: str,
    level: float, sentence, min_n: int = 20, method_note: str = "",
) -> list[Finding]:
    """Run :func:`funnel_test` and turn each unit into a Finding with a funnel chart."""
    if len(units) < 3:
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
    out = []
    for r in res.itertuples():
        out.append(Finding(
            test=test, unit=f"{label}: {r.unit}", effect=float(r.diff), lower=float(r.lower),
            upper=float(r.upper), effect_name=effect_name, p_value=float(r.p_value),
            q_value=float("nan"), sentence=sentence(r), level=level,
            method=f"funnel plot, Spiegelhalter over-dispersion (leave-one-out); {alternative}"
                   + method_note,
            n=int(r.n),
            extra={"rate": float(r.rate), "comparison_rate": float(r.p0), "events": int(r.events),
                   "tau2": float(r.tau2),
                   # Every unit's point only where the unit is a candidate: a chart per unit
                   # with all units would grow as units squared (hundreds of officers).
                   "chart": funnel_chart(
                       pts if r.p_value < 0.1 or len(pts) <= 40 else
                       [{"unit": str(r.unit), "n": float(r.n), "rate": float(r.rate)}],
                       limits, f"{effect_name}: {label}", str(r.unit))},
        ))
    return out


def _original_codes(data: DetectInput) -> pd.Series:
    c = data.crimes
    code = c.set_index("crime_id")["offence_code"]
    if data.changes is not None and len(data.changes):
        first = data.changes.sort_values("changed_at").drop_duplicates("crime_id")
        code = code.copy()
        orig = first.set_index("crime_id")["from_code"]
        common = orig.index.intersection(code.index)
        code.loc[common] = orig.loc[common]
    return code


def reclassification_tests(data: DetectInput) -> list[Finding]:
    """Downgrade rates by division and strand; down/up asymmetry by division, officer, quarter."""
    if not data.has_records or data.changes is None or data.changes.empty:
        return []
    c = data.crimes
    lvl = data.level
    orig = _original_codes(data).reindex(c["crime_id"]).to_numpy()
    strand_map = {k: o.strand for k, o in data.codes.offences.items()}
    frame = pd.DataFrame({"crime_id": c["crime_id"].to_numpy(), "division": c["division"],
                          "strand": pd.Series(orig).map(strand_map).fillna("unknown").to_numpy()})
    ch = data.changes
    down_ids = set(ch.loc[ch["direction"] == "down", "crime_id"])
    frame["down"] = frame["crime_id"].isin(down_ids)
    out: list[Finding] = []
    members = data.strand_members()
    if frame["division"].nunique() >= 3:
        for s, mem in members.items():
            sub = frame if s == "all" else frame[frame["strand"].isin(mem)]
            if sub["down"].sum() < 5:
                continue
            units = unit_counts(sub, "division", "down")
            out += funnel_findings(
                units, TEST, f"downgrade rate, strand={s}, by division",
                "excess share downgraded (vs other divisions)", "greater", lvl,
                lambda r, s=s: (
                    f"In division {r.unit}, {r.events:,} of {r.n:,} {s} crimes "
                    f"({100 * r.rate:.1f}%) were reclassified to a less serious class, against "
                    f"{100 * r.p0:.1f}% in the other divisions."))
    # Asymmetry: share of changes that are downgrades, by division, officer and quarter.
    known = ch[ch["direction"].isin(["down", "up"])].copy()
    known["division"] = known["crime_id"].map(c.set_index("crime_id")["division"])
    known["quarter"] = known["changed_at"].dt.to_period("Q").astype(str)
    known["is_down"] = known["direction"] == "down"
    for key in ("division", "changed_by", "quarter"):
        if key not in known or known[key].nunique() < 3:
            continue
        units = unit_counts(known, key, "is_down")
        name = "officer" if key == "changed_by" else key
        out += funnel_findings(
            units, TEST, f"down-vs-up asymmetry by {name}",
            "excess share of reclassifications that are downgrades", "greater", lvl,
            lambda r, name=name: (
                f"For {name} {r.unit}, {r.events:,} of {r.n:,} reclassifications "
                f"({100 * r.rate:.1f}%) went to a less serious class, against "
                f"{100 * r.p0:.1f}% elsewhere."), min_n=10)
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
        c = data.crimes
        if c["division"].notna().any():
            desc = {k: o.description for k, o in data.codes.offences.items()}
            names = c["offence_code"].map(desc).fillna(c["offence_code"])
            f = pd.DataFrame({"area": c["division"], "offence": names, "count": 1.0})
            frames.append(("records", f.dropna(subset=["area"])))
    return frames


def pair_ratio_tests(data: DetectInput) -> list[Finding]:
    """Each area's serious share within related pairs against the other areas."""
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
            if len(units) < 3:
                continue
            out += funnel_findings(
                units, TEST, f"{source}: serious share, {pair}",
                f"difference in serious share ({pair})", "less", data.level,
                lambda r, pair=pair, source=source: (
                    f"In {source}, area {r.unit} recorded {100 * r.rate:.1f}% of its {pair} "
                    f"pair as the serious class, against {100 * r.p0:.1f}% in the other areas."),
                method_note=f"; serious={sorted(serious)}, minor={sorted(minor)}")
    return out
