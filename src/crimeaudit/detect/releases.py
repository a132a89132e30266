"""Test 8, release differences: where between two releases of the same months crimes
vanished, changed type, outcome or month, or appeared (data.police.uk publishes each month
again in later archives).

The comparison itself is :func:`crimeaudit.releases.compare_releases` (the same as
``crimeaudit releases OLD NEW``): records matched on ``crime_id`` over the months both
releases cover, on the published text where the store keeps it. Its counts (zeros included),
and how repeated Crime IDs were handled, are in the run's ``facts["releases"]``, so a measure
with no change is reported as zero, not left out. Cancelled ("no-crimed") records are removed
before publication, so a crime present in the earlier release and missing from the later one
was most likely cancelled or merged after the first publication. Each crime type's (and each
month's) share that vanished or changed is compared with the other types (months) on an
over-dispersed funnel: ordinary data cleaning removes some records everywhere, and only types
well beyond that are flagged.
"""

from __future__ import annotations

import pandas as pd
from pydantic import Field

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.downgrading import funnel_findings, plural
from crimeaudit.detect.funnel import unit_counts
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding
from crimeaudit.releases import COUNTS, ReleaseComparison, compare_releases
from crimeaudit.releases.source import crimes_release

TEST = "releases"
#: Each measure: the flag in the comparison, and its words.
MEASURES = {"vanished": "vanished from the later release",
            "changed_type": "changed crime type",
            "changed_outcome": "changed outcome",
            "changed_period": "moved to another month"}


class ReleaseSettings(DetectorSettings):
    """Minimum data for the release comparison."""

    min_crimes_compared: int = Field(100, ge=1, description=(
        "Crimes of the earlier release in the months both releases cover."))
    min_changed: int = Field(5, ge=1, description=(
        "Crimes that vanished, changed or appeared needed to compare categories and months "
        "on that measure."))
    min_units: int = Field(3, ge=2, description=(
        "Categories or months needed to compare them on a funnel."))
    min_crimes_per_unit: int = Field(20, ge=1, description=(
        "Crimes a category or month needs to be placed on a funnel."))


def comparison(data: DetectInput) -> ReleaseComparison | None:
    """The two releases of ``data`` compared (from the projects, or from the frames)."""
    if data.releases is not None:
        return compare_releases(*data.releases)
    if data.crimes is None or data.previous_crimes is None:
        return None
    # Crime by crime: only the compared columns leave the engine.
    old = crimes_release(data.previous_crimes, "earlier release", data.codes)
    new = crimes_release(data.release_crimes(), "this release", data.codes)
    return compare_releases(old, new)


def _facts(result: ReleaseComparison) -> dict:
    d = result.to_dict()
    return {k: d[k] for k in ("releases", "shared_months", "old_crimes", "new_crimes",
                              *COUNTS, "moved_into_shared_months", "compared_on",
                              "repeated_ids", "not_compared_quarantined", "statement")}


def release_tests(data: DetectInput, settings: ReleaseSettings | None = None,
                  skips: Skips | None = None) -> list[Finding]:
    """Funnel tests of the vanished and changed shares by crime type and by month, and of
    the share new in the later release; the comparison's counts go to ``skips.facts``."""
    settings = settings or ReleaseSettings()
    skips = skips if skips is not None else Skips()
    result = comparison(data)
    if result is None:
        return []
    skips.facts.update(_facts(result))
    c = result.crimes
    old_side = c[c["status"] != "new"].rename(columns={"type_old": "category",
                                                       "month_old": "month"})
    if skips.fewer(settings, "min_crimes_compared", len(old_side),
                   "crimes of the earlier release in the shared months", unit="releases"):
        return []
    out: list[Finding] = []
    common = {"min_n": settings.min_crimes_per_unit, "min_units": settings.min_units,
              "settings": settings, "skips": skips, "min_n_setting": "min_crimes_per_unit",
              "n_words": "crimes"}
    frame = old_side.assign(vanished=old_side["status"] == "vanished")
    for measure, words in MEASURES.items():
        if skips.fewer(settings, "min_changed", int(frame[measure].sum()),
                       f"crimes that {words}", unit=measure):
            continue
        for key in ("category", "month"):
            units = unit_counts(frame, key, measure)
            out += funnel_findings(
                units, TEST, f"share that {words}, by {key}", f"excess share that {words}",
                "greater", data.level, _sentence(key, words, "earlier"),
                measure=_measure(key, f"that {words}"),
                date=(lambda r: r.unit) if key == "month" else None, **common)
    new = c[(c["month_new"].isin(result.shared_months))]
    new = new.rename(columns={"type_new": "category", "month_new": "month"})
    new = new.assign(appeared=new["status"] == "new")
    if not skips.fewer(settings, "min_changed", int(new["appeared"].sum()),
                       "crimes new in the later release", unit="appeared"):
        for key in ("category", "month"):
            units = unit_counts(new, key, "appeared")
            out += funnel_findings(
                units, TEST, f"share new in the later release, by {key}",
                "excess share first published in the later release", "greater", data.level,
                _sentence(key, "were not in the earlier release", "later"),
                measure=_measure(key, "first published in the later release"),
                date=(lambda r: r.unit) if key == "month" else None, **common)
    return out


def _measure(key: str, words: str):
    if key == "month":
        return f"share of crimes {words}, by month"
    return lambda r: f"share of {r.unit} crimes {words}"


def _sentence(key: str, words: str, release: str):
    def sentence(r) -> str:
        what = f"month {r.unit}" if key == "month" else f"crime type {r.unit}"
        return (f"Of {r.n:,} crimes published for {what} in the {release} release, "
                f"{r.events:,} ({100 * r.rate:.1f}%) {words}, against {100 * r.p0:.1f}% for "
                f"the other {plural('type' if key == 'category' else key)}.")
    return sentence


def compare_frames(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """The comparison's crime-by-crime table for two frames of canonical crimes (as
    :func:`comparison` builds it): one row per crime compared."""
    old = crimes_release(previous, "earlier release")
    new = crimes_release(current, "this release")
    return compare_releases(old, new).crimes


class Releases(Detector):
    """Test 8 (see the module notes)."""

    name = TEST
    question = ("Between two releases of the same months, which crimes vanished, changed "
                "type or changed outcome, and which appeared?")
    needs = (("crimes", "previous_release"),)
    Settings = ReleaseSettings

    def missing(self, data: DetectInput) -> str | None:
        if data.releases is not None:
            return None
        return super().missing(data)

    def run(self, data: DetectInput, settings: ReleaseSettings,
            skips: Skips | None = None) -> list[Finding]:
        return release_tests(data, settings, skips)
