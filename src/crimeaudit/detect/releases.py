"""Test 8, release differences: crimes that vanished, changed type or changed outcome between
two releases of the same months (data.police.uk publishes each month again in later archives).

Records are matched on ``crime_id``; only months present in both releases are compared.
Cancelled ("no-crimed") records are removed before publication, so a crime present in the
earlier release and missing from the later one was most likely cancelled or merged after the
first publication. Each category's (and each month's) share that vanished or changed type is
compared with the other categories (months) on an over-dispersed funnel: ordinary data
cleaning removes some records everywhere, and only categories well beyond that are flagged.
"""

from __future__ import annotations

import pandas as pd
from pydantic import Field

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.downgrading import funnel_findings, plural
from crimeaudit.detect.funnel import unit_counts
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding

TEST = "releases"


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


def compare_releases(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """One row per crime of the previous release in the shared months, with what happened."""
    cur = current.dropna(subset=["crime_id"]).drop_duplicates("crime_id").set_index("crime_id")
    prev = previous.dropna(subset=["crime_id"]).drop_duplicates("crime_id")
    cur_months = set(cur["recorded_at"].dt.to_period("M"))
    prev = prev[prev["recorded_at"].dt.to_period("M").isin(cur_months)]
    out = pd.DataFrame({
        "crime_id": prev["crime_id"].to_numpy(),
        "month": prev["recorded_at"].dt.strftime("%Y-%m").to_numpy(),
        "category": prev["offence_code"].to_numpy(),
    })
    matched = cur.reindex(out["crime_id"])
    out["vanished"] = matched["offence_code"].isna().to_numpy()
    out["changed_type"] = (~out["vanished"]) & (
        matched["offence_code"].to_numpy() != prev["offence_code"].to_numpy())
    if "outcome" in prev and "outcome" in cur:
        a = prev["outcome"].fillna("").to_numpy()
        b = matched["outcome"].fillna("").to_numpy()
        out["changed_outcome"] = (~out["vanished"]) & (a != b)
    else:
        out["changed_outcome"] = False
    return out


def appeared(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Crimes of the later release, in the shared months, with whether they are new in it."""
    prev_months = set(previous["recorded_at"].dt.to_period("M"))
    cur = current.dropna(subset=["crime_id"]).drop_duplicates("crime_id")
    cur = cur[cur["recorded_at"].dt.to_period("M").isin(prev_months)]
    return pd.DataFrame({
        "month": cur["recorded_at"].dt.strftime("%Y-%m").to_numpy(),
        "category": cur["offence_code"].to_numpy(),
        "appeared": ~cur["crime_id"].isin(set(previous["crime_id"].dropna())).to_numpy(),
    })


def release_tests(data: DetectInput, settings: ReleaseSettings | None = None,
                  skips: Skips | None = None) -> list[Finding]:
    """Funnel tests of vanished and changed-type shares by category and by month."""
    settings = settings or ReleaseSettings()
    skips = skips if skips is not None else Skips()
    if data.crimes is None or data.previous_crimes is None:
        return []
    # Crime by crime: only the four columns compared leave the engine.
    current = data.release_crimes()
    diff = compare_releases(current, data.previous_crimes)
    if skips.fewer(settings, "min_crimes_compared", len(diff),
                   "crimes of the earlier release in the shared months", unit="releases"):
        return []
    out: list[Finding] = []
    common = {"min_n": settings.min_crimes_per_unit, "min_units": settings.min_units,
              "settings": settings, "skips": skips, "min_n_setting": "min_crimes_per_unit",
              "n_words": "crimes"}
    what = {"vanished": "vanished from the later release",
            "changed_type": "changed crime type", "changed_outcome": "changed outcome"}
    for measure, words in what.items():
        if skips.fewer(settings, "min_changed", int(diff[measure].sum()),
                       f"crimes that {words}", unit=measure):
            continue
        for key in ("category", "month"):
            units = unit_counts(diff, key, measure)
            out += funnel_findings(
                units, TEST, f"share that {words}, by {key}", f"excess share that {words}",
                "greater", data.level,
                lambda r, words=words, key=key: (
                    f"Of {r.n:,} crimes published for {key} {r.unit} in the earlier release, "
                    f"{r.events:,} ({100 * r.rate:.1f}%) {words}, against {100 * r.p0:.1f}% "
                    f"for the other {plural(key)}."), **common)
    new = appeared(current, data.previous_crimes)
    if not skips.fewer(settings, "min_changed", int(new["appeared"].sum()),
                       "crimes new in the later release", unit="appeared"):
        for key in ("category", "month"):
            units = unit_counts(new, key, "appeared")
            out += funnel_findings(
                units, TEST, f"share new in the later release, by {key}",
                "excess share first published in the later release", "greater", data.level,
                lambda r, key=key: (
                    f"Of {r.n:,} crimes published for {key} {r.unit} in the later release, "
                    f"{r.events:,} ({100 * r.rate:.1f}%) were not in the earlier release, "
                    f"against {100 * r.p0:.1f}% for the other {plural(key)}."), **common)
    return out


class Releases(Detector):
    """Test 8 (see the module notes)."""

    name = TEST
    question = ("Between two releases of the same months, which crimes vanished, changed "
                "type or changed outcome, and which appeared?")
    needs = (("crimes", "previous_release"),)
    Settings = ReleaseSettings

    def run(self, data: DetectInput, settings: ReleaseSettings,
            skips: Skips | None = None) -> list[Finding]:
        return release_tests(data, settings, skips)
