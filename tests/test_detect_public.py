"""Detect on the real public data in /work/shared/data (skipped where it is absent).

TEST SCAFFOLDING: until ``crimeaudit.ingest`` lands, the small loaders below turn the public
files into the canonical ``counts`` and ``crimes`` frames. They are not the product's ingest:
they do only what these tests and the worked example need (``benchmarks/bench_detect.py public``
reuses them). When ``crimeaudit.ingest`` exists, use it instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

DATA = Path(os.environ.get("CRIMEAUDIT_PUBLIC_DATA", "/work/shared/data"))
ONS = DATA / "uk/ons-recorded-crime-by-pfa/rec-crime-pfa.csv"
MPS = DATA / "uk/mps-borough-monthly"
CITY = DATA / "uk/police-uk-city-of-london"
LAPD = DATA / "us/lapd/lapd-crime-2020-sample-10000.csv"


# -- test scaffolding: public files -> canonical frames ----------------------------------------


def ons_counts(path: Path = ONS) -> pd.DataFrame:
    """rec-crime-pfa.csv as rolling 12-month counts (one malformed date moved to month end)."""
    raw = pd.read_csv(path)
    end = pd.to_datetime(raw["12 months ending"], format="%d-%m-%Y")
    # 30-12-2017 is the one date that is not a month end: the period is the year to 31 Dec.
    end = end + pd.offsets.MonthEnd(0)
    return pd.DataFrame({
        "source": "ons-rec-crime-pfa", "area": raw["PFA"], "offence": raw["Offence"],
        "offence_group": None, "period_start": end - pd.DateOffset(years=1) + pd.Timedelta(days=1),
        "period_end": end, "period_type": "rolling_12m",
        "count": raw["Rolling year total number of offences"].astype(float), "adjustment": False,
    })


def mps_counts(folder: Path = MPS) -> pd.DataFrame:
    """MPS borough files (wide, one column per month) as monthly counts."""
    frames = []
    for f, source in (("MPS_Borough_Level_Crime_Historic.csv", "mps-borough-2008-2016"),
                      ("MPS_Borough_Level_Crime_2017-2018.csv", "mps-borough-2017-2018")):
        raw = pd.read_csv(folder / f)
        long = raw.melt(id_vars=["Borough", "Major Category", "Minor Category"],
                        var_name="month", value_name="count")
        start = pd.to_datetime(long["month"], format="%Y%m")
        frames.append(pd.DataFrame({
            "source": source, "area": long["Borough"], "offence": long["Minor Category"],
            "offence_group": long["Major Category"], "period_start": start,
            "period_end": start + pd.offsets.MonthEnd(0), "period_type": "month",
            "count": long["count"].astype(float), "adjustment": False,
        }))
    return pd.concat(frames, ignore_index=True)


def lapd_counts(path: Path = LAPD) -> pd.DataFrame:
    """The LAPD sample as monthly counts by area and crime description (date reported)."""
    raw = pd.read_csv(path, dtype=str)
    start = pd.to_datetime(raw["Date Rptd"].str[:10], format="%m/%d/%Y").dt.to_period("M")
    g = raw.assign(start=start.dt.to_timestamp()).groupby(
        ["AREA NAME", "Crm Cd Desc", "start"]).size().reset_index(name="count")
    return pd.DataFrame({
        "source": "lapd-2020-sample", "area": g["AREA NAME"], "offence": g["Crm Cd Desc"],
        "offence_group": None, "period_start": g["start"],
        "period_end": g["start"] + pd.offsets.MonthEnd(0), "period_type": "month",
        "count": g["count"].astype(float), "adjustment": False,
    })


def police_uk_crimes(release: str) -> pd.DataFrame:
    """A data.police.uk release (street files) as canonical crimes (ASB rows are incidents)."""
    frames = [pd.read_csv(f, dtype=str) for f in sorted((CITY / release).glob("*.csv"))]
    raw = pd.concat(frames, ignore_index=True)
    raw = raw[raw["Crime ID"].notna()]
    month = pd.to_datetime(raw["Month"], format="%Y-%m")
    return pd.DataFrame({
        "crime_id": raw["Crime ID"].to_numpy(), "recorded_at": month.to_numpy(),
        "offence_code": raw["Crime type"].to_numpy(), "status": "recorded",
        "outcome": raw["Last outcome category"].to_numpy(), "division": None,
    })


needs_data = pytest.mark.skipif(not ONS.exists(), reason="public data not available")

# -- tests -------------------------------------------------------------------------------------


@needs_data
def test_kent_recording_break_stands_out_in_ons_series():
    from crimeaudit.detect.breaks import break_tests
    from crimeaudit.detect.inputs import DetectInput

    counts = ons_counts()
    counts = counts[counts["offence"].isin(["Robbery", "Violence without injury"])]
    found = {f.unit: f for f in break_tests(DetectInput.from_frames(counts=counts))}
    # Kent's share of national robbery stepped up around the 2013 inspection, which found about
    # one crime in ten unrecorded; its violence share rose at the same time.
    for offence, p_max in (("Robbery", 0.001), ("Violence without injury", 1.0)):
        kent = found[f"ons-rec-crime-pfa: Kent: {offence}"]
        assert kent.effect > 0.2 and kent.p_value <= p_max
        assert "2012-06-30" <= kent.extra["break_date"] <= "2014-03-31"


@needs_data
def test_city_of_london_releases_show_vanished_crimes():
    from crimeaudit.detect.inputs import DetectInput
    from crimeaudit.detect.releases import compare_releases, release_tests

    cur, prev = police_uk_crimes("later-release"), police_uk_crimes("earlier-release")
    data = DetectInput.from_frames(crimes=cur, previous_crimes=prev)
    diff = compare_releases(data.crimes, data.previous_crimes)
    # Every earlier crime in the shared months is accounted for exactly once.
    assert len(diff) == prev["crime_id"].nunique()
    # In these two City of London releases no crime vanished or changed type, but outcomes
    # were updated for many.
    assert diff["changed_outcome"].sum() > 1000
    findings = release_tests(data)
    assert any(f.unit.startswith("share that changed outcome, by category") for f in findings)


@needs_data
def test_lapd_assault_pair_is_compared_across_areas():
    from crimeaudit.detect.downgrading import pair_ratio_tests
    from crimeaudit.detect.inputs import DetectInput

    data = DetectInput.from_frames(counts=lapd_counts())
    found = [f for f in pair_ratio_tests(data) if "assault" in f.unit]
    assert len(found) >= 10  # one per LAPD area with at least 20 assaults of either class
    assert all(-1 <= f.effect <= 1 for f in found)
