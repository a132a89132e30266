"""Every built-in profile on real public files (slices in tests/fixtures/ingest; the full files
in /work/shared/data too when that folder is present)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from crimeaudit.ingestion import ingest, load_profile, quarantined_rows
from crimeaudit.store.project import Project

FIX = Path(__file__).parent / "fixtures" / "ingest"
SHARED = Path("/work/shared/data")


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", "test-key-0123456789")
    with Project.init(tmp_path / "p") as p:
        yield p


def _rows(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) - 1


def _reconciles(report) -> None:
    for f in report.files:
        assert f.read == f.loaded + f.excluded + f.quarantined, f


def test_police_uk_street_splits_asb_into_incidents(project):
    f = FIX / "2019-06-city-of-london-street.csv"
    r = ingest(project, "police-uk-street", [f])
    _reconciles(r)
    lines = f.read_text().splitlines()[1:]
    asb = sum(1 for x in lines if x.startswith(","))
    assert r.files[0].read == len(lines)
    assert project.engine.count("incidents") == asb > 0
    crimes = project.engine.to_pandas(project.engine.table("crimes"))
    # Every crime row is a record: a Crime ID the file repeats is kept as "<id>~copy2".
    ids = [x.split(",")[0] for x in lines if not x.startswith(",")]
    assert len(crimes) == len(ids) and not quarantined_rows(project)
    assert set(crimes.crime_id.str.replace(r"~copy\d+$", "", regex=True)) == set(ids)
    assert (crimes.crime_id.str.contains("~copy", regex=False).sum()
            == len(ids) - len(set(ids)) > 0)
    assert (crimes.recorded_at.dt.strftime("%Y-%m-%d") == "2019-06-01").all()
    # "Other crime" has no class: loaded as unclassified, its published text kept.
    other = [x.split(",")[0] for x in lines if ",Other crime," in x]
    assert other and not quarantined_rows(project, reason="unknown offence code")
    got = crimes[crimes.crime_id.isin(other)]
    assert set(got.offence_code) == {"unclassified"}
    assert set(got.source_offence_description) == {"Other crime"}


def test_police_uk_outcomes_update_loaded_crimes(project):
    ingest(project, "police-uk-street", [FIX / "2019-06-city-of-london-street.csv"])
    r = ingest(project, "police-uk-outcomes", [FIX / "2019-06-city-of-london-outcomes.csv"])
    _reconciles(r)
    assert (r.files[0].loaded, r.files[0].quarantined) == (3, 1)
    crimes = project.engine.to_pandas(project.engine.table("crimes"))
    assert {"OC18", "OC1", "OC3"} <= set(crimes.outcome)
    (q,) = quarantined_rows(project, file="outcomes")
    assert q["line"] == 5 and "no crimes row" in q["reason"]


def test_ons_pfa_reads_30_12_2017_as_the_quarter_ending_december_and_says_so(project):
    f = FIX / "rec-crime-pfa-slice.csv"
    r = ingest(project, "ons-pfa", [f])
    _reconciles(r)
    lines = f.read_text().splitlines()
    bad = [i + 1 for i, x in enumerate(lines) if x.startswith("30-12-2017")]
    assert bad and r.files[0].quarantined == 0
    ((what, values),) = r.files[0].adjusted.items()
    assert values == {"30-12-2017": len(bad)} and "not the last day of a month" in what
    counts = project.engine.to_pandas(project.engine.table("counts"))
    assert (counts.period_end.astype(str).str[:10] == "2017-12-31").sum() == len(bad)


def test_ons_pfa_with_month_end_required_quarantines_the_malformed_date(project, tmp_path):
    own = tmp_path / "ons-strict.yaml"
    own.write_text(load_profile("ons-pfa").model_dump_json(by_alias=True, exclude_none=True)
                   .replace('"month_end":"snap"', '"month_end":"required"'))
    f = FIX / "rec-crime-pfa-slice.csv"
    r = ingest(project, own, [f])
    _reconciles(r)
    lines = f.read_text().splitlines()
    bad = [i + 1 for i, x in enumerate(lines) if x.startswith("30-12-2017")]
    q = quarantined_rows(project)
    assert sorted(x["line"] for x in q) == bad
    assert all("30-12-2017" in x["reason"] and x["column"] == "period" for x in q)
    counts = project.engine.to_pandas(project.engine.table("counts"))
    assert set(counts.period_type) == {"rolling_12m"}
    assert len(counts) == len(lines) - 1 - len(bad)


@pytest.mark.skipif(not SHARED.exists(), reason="shared real data not present")
def test_ons_pfa_full_file_loads_the_30_12_2017_quarter(project):
    r = ingest(project, "ons-pfa", [SHARED / "uk/ons-recorded-crime-by-pfa/rec-crime-pfa.csv"])
    _reconciles(r)
    assert r.files[0].read == 46469 == r.files[0].loaded
    raw = (SHARED / "uk/ons-recorded-crime-by-pfa/rec-crime-pfa.csv").read_text().splitlines()
    assert list(r.files[0].adjusted.values()) == [
        {"30-12-2017": sum(x.startswith("30-12-2017") for x in raw)}]


def test_home_office_prc_keeps_negative_counts_as_adjustments(project):
    r = ingest(project, "home-office-prc", [FIX / "prc-quarterly-written.csv"])
    _reconciles(r)
    counts = project.engine.to_pandas(project.engine.table("counts"))
    neg = counts[counts["count"] < 0]
    assert len(neg) == 1 and bool(neg.adjustment.iloc[0])
    q1 = counts[(counts.area == "Kent") & counts.offence.str.startswith("8N")]
    assert str(q1.period_start.min())[:10] == "2019-04-01"
    assert str(q1.period_end.max())[:10] == "2020-03-31"
    (q,) = quarantined_rows(project)
    assert q["line"] == 8


def test_mps_borough_monthly_goes_long(project):
    files = [FIX / "MPS_Borough_Level_Crime_2017-2018-slice.csv",
             FIX / "MPS_Borough_Level_Crime_Historic-slice.csv"]
    r = ingest(project, "mps-borough-monthly", files)
    _reconciles(r)
    for f, rep in zip(files, r.files, strict=True):
        header = f.read_text().splitlines()[0].split(",")
        assert rep.read == _rows(f) * (len(header) - 3)
    counts = project.engine.to_pandas(project.engine.table("counts"))
    assert set(counts.period_type) == {"month"}
    assert str(counts.period_start.min())[:7] == "2008-01"


@pytest.mark.parametrize("profile,fixture", [
    ("lapd", "lapd-slice.csv"),
    ("chicago", "chicago-slice.csv"),
    ("sf-incidents", "sfpd-slice.csv"),
])
def test_us_crime_records_map_to_code_list(project, profile, fixture):
    r = ingest(project, profile, [FIX / fixture])
    _reconciles(r)
    assert r.files[0].read == _rows(FIX / fixture)
    crimes = project.engine.to_pandas(project.engine.table("crimes"))
    assert len(crimes) == r.files[0].loaded > 0
    assert set(crimes.offence_code) <= set(project.codes.offences) | {"unclassified"}
    # an unclassified crime always carries the source's own category
    assert crimes[crimes.offence_code == "unclassified"].source_offence_description.notna().all()
    for q in quarantined_rows(project):
        assert q["reason"].startswith("duplicate id")
    # The source's own code and description land beside the crosswalked class.
    source = _SOURCE_OFFENCE[profile]
    rows = list(csv.DictReader((FIX / fixture).open(encoding="utf-8")))
    expected = {r[source[0]]: r[source[1]] for r in rows}
    assert crimes.source_offence_code.notna().all()
    landed = dict(zip(crimes.source_offence_code, crimes.source_offence_description, strict=True))
    for code, desc in landed.items():
        assert code in expected
        assert expected[code] in desc


_SOURCE_OFFENCE = {"lapd": ("Crm Cd", "Crm Cd Desc"), "chicago": ("IUCR", "Description"),
                   "sf-incidents": ("Incident Code", "Incident Description")}


def test_lapd_aggravated_and_simple_assault_classes(project):
    ingest(project, "lapd", [FIX / "lapd-slice.csv"])
    crimes = project.engine.to_pandas(project.engine.table("crimes"))
    raw = {x.split(",")[0]: x.split(",")[8] for x in
           (FIX / "lapd-slice.csv").read_text().splitlines()[1:]}
    by_code = {raw[c]: o for c, o in zip(crimes.crime_id, crimes.offence_code, strict=True)}
    assert by_code.get("624") == "105A"
    assert by_code.get("230", "8N") == "8N"


def test_sf_unfounded_is_a_cancellation(project):
    ingest(project, "sf-incidents", [FIX / "sfpd-slice.csv"])
    crimes = project.engine.to_pandas(project.engine.table("crimes"))
    cancelled = crimes[crimes.status == "cancelled"]
    assert len(cancelled) >= 1 and set(cancelled.cancellation_reason) == {"avi"}


def test_seattle_both_files_become_incidents_with_links(project):
    files = [FIX / "seattle-911-slice.csv", FIX / "seattle-call-data-slice.csv"]
    r = ingest(project, "seattle-calls", files)
    _reconciles(r)
    inc = project.engine.to_pandas(project.engine.table("incidents"))
    assert len(inc) == sum(_rows(f) for f in files)
    assert inc.crime_refs.notna().sum() == _rows(files[0])
    assert "CRIME_RECORDED" in set(inc.closing_code)
    assert inc.reported_at.notna().all()
