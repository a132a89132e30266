"""Integrity test, near-duplicate crimes: one victim, one place, one day, several live records.

The counting rules record one crime per victim for one course of conduct; a second live
record for the same victim at the same place on the same day is either the same crime
recorded twice (same offence class: double counting, or a duplicate that was never cancelled)
or one crime split into several (different classes: e.g. an assault recorded also as damage
and a threat, which inflates the count and the detections). Records already cancelled (as a
duplicate or otherwise) are left out: cancelling the copy is the correct practice.

**Data**: ``crimes`` with ``victim`` (pseudonym) and ``location``; the day is the report date
(``reported_at``, else ``recorded_at``). **Tests**: force-wide, the extra records (beyond the
first of each group) as a share of live records, against ``tolerated_share`` by an exact
binomial test (one-sided); and by division on a funnel against the other divisions (as the
cancellation tests), so a division that double-records stands out even where the whole force
has some. Each finding lists the groups (crime references, offence classes) to check.
"""

from __future__ import annotations

import ibis
import pandas as pd
from pydantic import Field
from scipy import stats

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.downgrading import funnel_findings
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding
from crimeaudit.uncertainty import clopper_pearson

TEST = "near_duplicates"


class NearDuplicateSettings(DetectorSettings):
    """What a system may hold by chance, and how much data a comparison needs."""

    min_crimes: int = Field(200, ge=1, description=(
        "Live crime records with a victim and a place needed before the test runs."))
    tolerated_share: float = Field(0.001, ge=0, lt=1, description=(
        "Share of extra records (same victim, place and day) tolerated force-wide, e.g. "
        "two genuine crimes against one victim in a day."))
    min_units: int = Field(3, ge=2, description=(
        "Divisions needed to compare them on a funnel."))
    min_crimes_per_unit: int = Field(20, ge=1, description=(
        "Live crime records a division needs to be placed on the funnel."))
    groups_listed: int = Field(20, ge=1, description=(
        "Groups of near-duplicate records listed with the finding."))


def _live(data: DetectInput):
    c = data.crimes
    live = c.filter(c.victim.notnull() & c.location.notnull())
    if "status" in c.columns:
        live = live.filter((live.status != "cancelled") | live.status.isnull())
    day = (live.reported_at.fill_null(live.recorded_at) if "reported_at" in c.columns
           else live.recorded_at).date()
    div = live.division if "division" in c.columns else ibis.null("string")
    return live.select(crime_id=live.crime_id, victim=live.victim, location=live.location,
                       day=day, offence_code=live.offence_code, division=div)


def near_duplicate_groups(data: DetectInput) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records in a group of two or more: crime_id, offence_code, division, day, group;
    live records per division: ``unit``, ``n``), each summarised in the engine."""
    live = _live(data)
    keys = ["victim", "location", "day"]
    sizes = live.group_by(keys).agg(size=live.count())
    multi = live.join(sizes.filter(sizes.size > 1), keys)
    rows = multi.select("crime_id", "offence_code", "division", "day", *keys[:2]).to_pandas()
    per_div = live.group_by("division").agg(n=live.count()).to_pandas()
    if len(rows):
        rows = rows.sort_values(["day", "victim", "location", "crime_id"])
        rows["group"] = rows.groupby(keys, sort=False).ngroup()
        rows = rows.drop(columns=["victim", "location"])  # pseudonyms stay in the store
    else:
        rows["group"] = pd.Series(dtype="int64")
    return rows.reset_index(drop=True), per_div


def near_duplicate_tests(data: DetectInput, settings: NearDuplicateSettings | None = None,
                         skips: Skips | None = None) -> list[Finding]:
    settings = settings or NearDuplicateSettings()
    skips = skips if skips is not None else Skips()
    if not (data.crime_has("victim") and data.crime_has("location")):
        skips.note("crimes without victim and location columns: near duplicates not tested")
        return []
    rows, per_div = near_duplicate_groups(data)
    total = int(per_div["n"].sum())
    if skips.fewer(settings, "min_crimes", total, "live crime records with a victim and a "
                   "place", unit="near duplicates"):
        return []
    # Classes by name as well as code: a reader should not need the code list.
    names = {k: f"{k} {o.description}" for k, o in data.codes.offences.items()}
    groups = []
    for _, g in rows.groupby("group", sort=True):
        kind = "recorded twice" if g["offence_code"].nunique() == 1 else "split"
        groups.append({"references": list(g["crime_id"]),
                       "offences": [names.get(c, str(c)) for c in g["offence_code"]],
                       "day": str(g["day"].iloc[0])[:10], "division": g["division"].iloc[0],
                       "kind": kind})
    extra = len(rows) - len(groups)
    twice = sum(1 for g in groups if g["kind"] == "recorded twice")
    skips.facts.update({"groups": len(groups), "extra_records": extra,
                        "recorded_twice": twice, "split": len(groups) - twice,
                        "live_records": total})
    p_ok = settings.tolerated_share
    lo, hi = clopper_pearson(extra, total, data.level)
    p = float(stats.binom.sf(extra - 1, total, p_ok)) if extra else 1.0
    shown = "; ".join(f"{' + '.join(g['references'])} ({' / '.join(g['offences'])}, "
                      f"{g['day']})" for g in groups[:3])
    sentence = (f"{len(groups):,} victims had more than one live crime record for the same "
                f"place and day ({twice:,} the same class recorded twice, "
                f"{len(groups) - twice:,} split into different classes): {extra:,} extra "
                f"records among {total:,} ({100 * extra / total:.2f}%)"
                + (f", e.g. {shown}." if groups else "."))
    out = [Finding(
        test=TEST, unit="near duplicates: all", effect=extra / total, lower=lo, upper=hi,
        effect_name="share of extra records (same victim, place and day)", p_value=p,
        q_value=float("nan"), sentence=sentence, level=data.level,
        method=(f"live records grouped by victim, location and report date; Clopper-Pearson "
                f"interval; exact binomial test against {p_ok:g} (one-sided)"),
        n=total,
        extra={"area": "all", "scale": "difference", "rate": extra / total,
               "comparison_rate": p_ok, "events": extra,
               "measure": "crimes recorded more than once for one victim, place and day",
               "groups": groups[:settings.groups_listed]})]
    if "division" in rows and per_div["division"].notna().sum() >= 1:
        flags = rows.assign(dup=rows.duplicated("group"))
        per = flags[flags["dup"]].groupby("division").size()
        frame = per_div.dropna(subset=["division"]).assign(
            events=lambda d: d["division"].map(per).fillna(0).astype(int))
        units = pd.DataFrame({"unit": frame["division"], "events": frame["events"],
                              "n": frame["n"]})
        if not skips.fewer(settings, "min_units", len(units), "divisions",
                           unit="near duplicates by division") and units["events"].sum():
            out += funnel_findings(
                units.reset_index(drop=True), TEST, "near duplicates, by division",
                "excess share of extra records", "greater", data.level,
                lambda r: (f"Division {r.unit} holds {r.events:,} extra records for one "
                           f"victim, place and day among {r.n:,} ({100 * r.rate:.2f}%), "
                           f"against {100 * r.p0:.2f}% in the other divisions."),
                min_n=settings.min_crimes_per_unit, min_units=settings.min_units,
                settings=settings, skips=skips, min_n_setting="min_crimes_per_unit",
                n_words="live records", area=lambda r: r.unit,
                measure="crimes recorded more than once for one victim, place and day")
    return out


class NearDuplicates(Detector):
    """Integrity test, near-duplicate crimes (see the module notes)."""

    name = TEST
    question = ("Is one crime recorded twice, or split into several, for the same victim, "
                "place and day?")
    needs = (("crimes",),)
    Settings = NearDuplicateSettings

    def run(self, data: DetectInput, settings: NearDuplicateSettings,
            skips: Skips | None = None) -> list[Finding]:
        return near_duplicate_tests(data, settings, skips)


__all__ = ["NearDuplicateSettings", "NearDuplicates", "near_duplicate_groups",
           "near_duplicate_tests"]
