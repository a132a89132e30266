"""Detect on the real public data in /work/shared/data, loaded the way a user loads it.

Each source goes through its ``crimeaudit ingest`` profile into a project (``ons-pfa``,
``mps-borough-monthly``, ``police-uk-street`` for each City of London release, ``lapd``) and the
detectors read the project's tables with :func:`crimeaudit.detect.runner.project_input`, as
``crimeaudit detect DIR`` does. ``benchmarks/bench_detect.py public`` builds the same projects
with :func:`build_public_projects` and runs ``detect_project`` on each (the worked example's
numbers). Skipped where the data is absent.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

DATA = Path(os.environ.get("CRIMEAUDIT_PUBLIC_DATA", "/work/shared/data"))
ONS = DATA / "uk/ons-recorded-crime-by-pfa/rec-crime-pfa.csv"
MPS = DATA / "uk/mps-borough-monthly"
CITY = DATA / "uk/police-uk-city-of-london"
LAPD = DATA / "us/lapd/lapd-crime-2020-sample-10000.csv"
SEATTLE = DATA / "us/seattle/seattle-call-data-madison-beach-2010-2024.csv"
SF = DATA / "us/san-francisco/sfpd-incident-reports-2018-12.csv"
# Ingest pseudonymises personal columns with a keyed hash; none of these public files has
# one, but the key must be set for ingest to run.
KEY = "public-data-example-key-0123456789"


def public_sources(months: str = "") -> dict[str, list[tuple[str, list[Path]]]]:
    """Project name -> (profile, files) to ingest. ``months`` keeps City files matching it."""
    def city(release: str) -> list[Path]:
        return sorted((CITY / release).glob(f"{months}*-street.csv"))

    return {
        "ons": [("ons-pfa", [ONS])],
        "mps": [("mps-borough-monthly", sorted(MPS.glob("*.csv")))],
        "lapd": [("lapd", [LAPD])],
        "city-earlier": [("police-uk-street", city("earlier-release"))],
        "city-later": [("police-uk-street", city("later-release"))],
        "seattle": [("seattle-calls", [SEATTLE])],
        "sf": [("sf-incidents", [SF])],
    }


def build_public_projects(root: Path, only=None, months: str = "") -> dict[str, Path]:
    """Ingest each public source into its own project under ``root``; name -> project dir."""
    from crimeaudit.ingestion import ingest
    from crimeaudit.store.project import Project

    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRIMEAUDIT_PSEUDONYM_KEY", os.environ.get("CRIMEAUDIT_PSEUDONYM_KEY", KEY))
        for name, steps in public_sources(months).items():
            if only is not None and name not in only:
                continue
            with Project.init(root / name) as project:
                for profile, files in steps:
                    report = ingest(project, profile, files)
                    for f in report.files:  # every row loaded, excluded or quarantined
                        excluded = getattr(f, "excluded", 0)
                        assert f.read == f.loaded + excluded + f.quarantined, f
            out[name] = root / name
    return out


@contextmanager
def project_data(path: Path, previous: Path | None = None):
    """The detect input of a project, as ``crimeaudit detect`` reads it.

    A context: the detectors ask the project's engine for their summaries, so the project
    stays open while they run.
    """
    from crimeaudit.detect.runner import project_input
    from crimeaudit.store.project import Project

    with Project.open(path) as project:
        yield project_input(project, previous_dir=previous)


needs_data = pytest.mark.skipif(not ONS.exists(), reason="public data not available")


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    # The City files of 2020 keep the test quick; the benchmark ingests every month.
    return build_public_projects(tmp_path_factory.mktemp("public"),
                                 only={"ons", "lapd", "city-earlier", "city-later"},
                                 months="2020-")


@needs_data
def test_kent_recording_break_stands_out_in_ons_series(projects):
    from crimeaudit.detect.breaks import break_tests

    with project_data(projects["ons"]) as data:
        data.counts = data.counts[data.counts["offence"].isin(["Robbery",
                                                               "Violence without injury"])]
        found = {f.unit: f for f in break_tests(data)}
    # Kent's share of national robbery stepped up around the 2013 inspection, which found about
    # one crime in ten unrecorded; its violence share rose at the same time.
    # (The quarter the file writes 30-12-2017 is loaded as the 12 months ending 2017-12-31,
    # as the ingest reports, so each series has every quarter of the raw file.)
    for offence, p_max in (("Robbery", 0.01), ("Violence without injury", 1.0)):
        kent = found[f"ons-pfa: Kent: {offence}"]
        assert kent.effect > 0.2 and kent.p_value <= p_max
        assert "2012-06-30" <= kent.extra["break_date"] <= "2014-03-31"


@needs_data
def test_city_of_london_releases_show_changed_outcomes(projects):
    from crimeaudit.detect.base import Skips
    from crimeaudit.detect.releases import release_tests

    skips = Skips()
    with project_data(projects["city-later"], previous=projects["city-earlier"]) as data:
        findings = release_tests(data, skips=skips)
    facts = skips.facts
    # Every earlier crime in the shared months is accounted for exactly once.
    assert facts["matched"] + facts["vanished"] == facts["old_crimes"] > 4000
    # Between the two releases outcomes were updated for many crimes of 2020 (investigations
    # that ended after the earlier download), and the test reports them by crime type.
    assert facts["outcome_changes"] > 100 and facts["vanished"] == 0
    assert any(f.unit.startswith("share that changed outcome, by category") for f in findings)


@needs_data
def test_ons_area_puts_the_forces_own_recording_change_first(projects):
    from crimeaudit.detect import run_detection

    with project_data(projects["ons"]) as data:
        run = run_detection(data)
    kent = run.for_area("Kent")
    assert {f.extra["area"] for f in kent} == {"Kent"}
    top = kent[0]
    # Kent's robbery recording stepped up around the 2013 inspection: first in its list.
    assert top.test == "breaks" and top.q_value < 0.05
    assert top.extra["measure"] == "share of national Robbery"
    assert "2012-06-30" <= top.extra["date"] <= "2014-03-31"
    # The quarter written 30-12-2017 is loaded (read as ending 2017-12-31): no gap, no cut.
    assert top.extra["gaps"] == [] and top.n >= 46
    # Structural comparisons are left out with a reason, never ranked.
    left_out = {(e["area"], e["test"]) for e in run.excluded}
    assert ("British Transport Police", "downgrading") in left_out
    assert ("City of London", "downgrading") in left_out
    assert not any(f.extra["area"] in ("British Transport Police", "City of London")
                   for f in run.findings if f.test in ("downgrading", "displacement"))


@needs_data
def test_lapd_assault_pair_is_compared_across_areas(projects):
    from crimeaudit.detect.downgrading import pair_ratio_tests

    with project_data(projects["lapd"]) as data:
        found = [f for f in pair_ratio_tests(data) if "assault" in f.unit]
    assert len(found) >= 10  # one per LAPD area with at least 20 assaults of either class
    assert all(-1 <= f.effect <= 1 for f in found)
