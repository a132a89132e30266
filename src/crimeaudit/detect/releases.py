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

from crimeaudit.detect.downgrading import funnel_findings, plural
from crimeaudit.detect.funnel import unit_counts
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding

TEST = "releases"


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


def release_tests(data: DetectInput) -> list[Finding]:
    """Funnel tests of vanished and changed-type shares by category and by month."""
    if data.crimes is None or data.previous_crimes is None:
        return []
    diff = compare_releases(data.crimes, data.previous_crimes)
    if len(diff) < 100:
        return []
    out: list[Finding] = []
    what = {"vanished": "vanished from the later release",
            "changed_type": "changed crime type", "changed_outcome": "changed outcome"}
    for measure, words in what.items():
        if diff[measure].sum() < 5:
            continue
        for key in ("category", "month"):
            units = unit_counts(diff, key, measure)
            out += funnel_findings(
                units, TEST, f"share that {words}, by {key}", f"excess share that {words}",
                "greater", data.level,
                lambda r, words=words, key=key: (
                    f"Of {r.n:,} crimes published for {key} {r.unit} in the earlier release, "
                    f"{r.events:,} ({100 * r.rate:.1f}%) {words}, against {100 * r.p0:.1f}% "
                    f"for the other {plural(key)}."), min_n=20)
    new = appeared(data.crimes, data.previous_crimes)
    if new["appeared"].sum() >= 5:
        for key in ("category", "month"):
            units = unit_counts(new, key, "appeared")
            out += funnel_findings(
                units, TEST, f"share new in the later release, by {key}",
                "excess share first published in the later release", "greater", data.level,
                lambda r, key=key: (
                    f"Of {r.n:,} crimes published for {key} {r.unit} in the later release, "
                    f"{r.events:,} ({100 * r.rate:.1f}%) were not in the earlier release, "
                    f"against {100 * r.p0:.1f}% for the other {plural(key)}."), min_n=20)
    return out
