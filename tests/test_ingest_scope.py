"""Excluded is not quarantined, on the real public files: every file reconciles as read =
loaded + excluded + quarantined against an independent pandas count of its rows, at most 1% is
quarantined, every excluded row is counted under a reason, and the real crimes that used to be
lost (sexual offences, offences against children, domestic injury, telephone threats and
harassment, data.police.uk "Other crime") are loaded with their published text.

The full files are read from /work/shared/data (as tests/test_ingest_public.py does)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crimeaudit.cli import app
from crimeaudit.ingestion import excluded_rows, ingest, ingest_summary
from crimeaudit.model.codes import UNCLASSIFIED
from crimeaudit.store.project import Project

SHARED = Path("/work/shared/data")
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="shared real data not present")
runner = CliRunner()

COL = SHARED / "uk/police-uk-city-of-london"
REAL = {
    "sf-incidents": [SHARED / "us/san-francisco/sfpd-incident-reports-2018-12.csv"],
    "lapd": [SHARED / "us/lapd/lapd-crime-2020-sample-10000.csv"],
    "chicago": [SHARED / "us/chicago/chicago-crimes-2014-02-28_to_2014-03-15.csv"],
    "seattle-calls": sorted((SHARED / "us/seattle").glob("*.csv")),
    "ons-pfa": [SHARED / "uk/ons-recorded-crime-by-pfa/rec-crime-pfa.csv"],
    "mps-borough-monthly": sorted((SHARED / "uk/mps-borough-monthly").glob("*.csv")),
    "police-uk-street": sorted((COL / "later-release").glob("*.csv")),
    "police-uk-street:earlier": sorted((COL / "earlier-release").glob("*.csv")),
}


def _pandas_rows(profile: str, path: Path) -> int:
    """Rows of the raw file as pandas reads it (wide MPS files: one row per series x month)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if profile == "mps-borough-monthly":
        return len(df) * sum(1 for c in df.columns if c.isdigit() and len(c) == 6)
    return len(df)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Each profile's real files ingested once into a project of their own."""
    out = {}
    mp = pytest.MonkeyPatch()
    mp.setenv("CRIMEAUDIT_PSEUDONYM_KEY", "scope-test-key-0123456789")
    root = tmp_path_factory.mktemp("real")
    try:
        for key, files in REAL.items():
            profile = key.split(":")[0]
            with Project.init(root / key.replace(":", "-")) as p:
                rep = ingest(p, profile, files)
                crimes = (p.engine.to_pandas(p.engine.table("crimes"))
                          if p.engine.has_table("crimes") else pd.DataFrame())
                incidents = (p.engine.to_pandas(p.engine.table("incidents"))
                             if p.engine.has_table("incidents") else pd.DataFrame())
                out[key] = {"report": rep, "summary": ingest_summary(p), "crimes": crimes,
                            "incidents": incidents, "excluded": excluded_rows(p),
                            "path": p.path}
    finally:
        mp.undo()
    return out


@needs_shared
@pytest.mark.parametrize("key", list(REAL))
def test_every_real_file_reconciles_with_an_independent_count(loaded, key):
    rep = loaded[key]["report"]
    profile = key.split(":")[0]
    assert len(rep.files) == len(REAL[key]) > 0
    for f in rep.files:
        assert f.read == _pandas_rows(profile, Path(f.file)), f.file
        assert f.read == f.loaded + f.excluded + f.quarantined, f.file
        # at most 1% quarantined in every file (a Crime ID data.police.uk repeats within a
        # month is loaded as a marked copy, not quarantined)
        assert f.quarantined <= 0.01 * f.read, (f.file, f.quarantined)
    # every excluded row is summarised by a reason, file by file
    for s in loaded[key]["summary"]["files"]:
        assert s["reconciles"]
        assert sum(e["rows"] for e in s["excluded_reasons"]) == s["excluded"]
        assert sum(q["rows"] for q in s["quarantine_reasons"]) == s["quarantined"]


@needs_shared
def test_sf_out_of_scope_reports_are_excluded_by_reason_not_quarantined(loaded):
    rep, summary = loaded["sf-incidents"]["report"], loaded["sf-incidents"]["summary"]
    raw = pd.read_csv(REAL["sf-incidents"][0], dtype=str)
    cat = raw["Incident Category"]
    (f,) = rep.files
    assert f.quarantined == 0
    reasons = {e["reason"]: e for e in summary["files"][0]["excluded_reasons"]}
    # The named out-of-scope categories, each counted in full under its own reason.
    for category, words in [("Non-Criminal", "non-criminal"), ("Missing Person", "missing"),
                            ("Warrant", "warrant")]:
        (reason,) = [r for r in reasons if words in r]
        assert reasons[reason]["values"][category] == int((cat == category).sum())
    lost = [r for r in reasons if "lost property" in r][0]
    assert reasons[lost]["values"]["Lost Property"] == int((cat == "Lost Property").sum())
    # ... and no real crime among the excluded: Assault, theft, burglary, robbery all load.
    crimes = loaded["sf-incidents"]["crimes"]
    for category in ("Assault", "Larceny Theft", "Burglary", "Robbery", "Sex Offense"):
        assert (crimes.source_offence_description.str.startswith(category + ":").sum()
                == int((cat == category).sum())), category


@needs_shared
def test_named_real_crimes_are_loaded_with_a_class_and_their_text(loaded):
    la = loaded["lapd"]["crimes"]
    raw = pd.read_csv(REAL["lapd"][0], dtype=str)
    for code in ("815", "812"):
        got = la[la.source_offence_code == code]
        assert len(got) == int((raw["Crm Cd"] == code).sum()) > 0
        assert set(got.offence_code) == {"20A"}
    sf = loaded["sf-incidents"]["crimes"]
    spouse = sf[sf.source_offence_description.str.contains("Spouse, Cohabitee", regex=False)]
    raw_sf = pd.read_csv(REAL["sf-incidents"][0], dtype=str)
    assert len(spouse) == int(raw_sf["Incident Description"].str.contains(
        "Spouse, Cohabitee", regex=False).sum()) > 0
    assert set(spouse.offence_code) == {"8N"}
    ch = loaded["chicago"]["crimes"]
    raw_ch = pd.read_csv(REAL["chicago"][0], dtype=str)
    for desc, code in (("TELEPHONE THREAT", "8R"), ("HARASSMENT BY TELEPHONE", "8L"),
                       ("HARASSMENT BY ELECTRONIC MEANS", "8L")):
        got = ch[ch.source_offence_description == f"OTHER OFFENSE - {desc}"]
        assert len(got) == int((raw_ch.Description == desc).sum()) > 0
        assert set(got.offence_code) == {code}


@needs_shared
@pytest.mark.parametrize("key", ["police-uk-street", "police-uk-street:earlier"])
def test_other_crime_is_loaded_unclassified_with_the_published_text(loaded, key):
    crimes = loaded[key]["crimes"]
    raw = pd.concat([pd.read_csv(f, dtype=str) for f in REAL[key]])
    other = crimes[crimes.source_offence_description == "Other crime"]
    # Every published row is a crime record: a Crime ID repeated in a file is loaded once per
    # copy, the later copies marked "~copy2"...
    rows = int((raw["Crime type"] == "Other crime").sum())
    assert len(other) == rows > 0
    copies = other[other.crime_id.str.contains("~copy", regex=False)]
    assert len(other) - len(copies) == raw.loc[raw["Crime type"] == "Other crime",
                                               "Crime ID"].nunique()
    assert set(other.offence_code) == {UNCLASSIFIED}
    # the published outcome text sits next to its code; distinct texts sharing a code stay
    # distinct (both "Awaiting court outcome" and "Court result unavailable" are OC1)
    texts = set(crimes.source_outcome_description.dropna())
    assert texts <= set(raw["Last outcome category"].dropna())
    oc1 = set(crimes[crimes.outcome == "OC1"].source_outcome_description)
    assert {"Awaiting court outcome", "Court result unavailable"} <= oc1


@needs_shared
def test_seattle_keeps_final_call_type_and_clearance_text(loaded):
    inc = loaded["seattle-calls"]["incidents"]
    calls = pd.read_csv(SHARED / "us/seattle/seattle-call-data-madison-beach-2010-2024.csv",
                        dtype=str)
    mine = inc[inc.incident_id.isin(set(calls["CAD.Event.Number"]))].set_index("incident_id")
    want = calls.set_index("CAD.Event.Number")
    assert len(mine) == len(calls)
    assert (mine.final_call_type == want.loc[mine.index, "Final.Call.Type"]).all()
    assert (mine.source_closing_description
            == want.loc[mine.index, "Event.Clearance.Description"]).all()
    assert {"FALSE COMPLAINT/UNFOUNDED", "REPORT WRITTEN (NO ARREST)"} <= set(
        mine.source_closing_description)


@needs_shared
def test_quarantine_summary_cli_gives_counts_by_file_and_reason(loaded, monkeypatch):
    import crimeaudit.cli.common as cli_common

    # a wide terminal (the console is made once, so COLUMNS set now would not reach it)
    monkeypatch.setattr(cli_common.console, "width", 200)
    d = loaded["sf-incidents"]["path"]
    res = runner.invoke(app, ["quarantine", str(d), "--summary", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    (f,) = out["files"]
    rep = loaded["sf-incidents"]["report"].files[0]
    assert (f["read"], f["loaded"], f["excluded"], f["quarantined"]) == (
        rep.read, rep.loaded, rep.excluded, rep.quarantined)
    assert sum(r["rows"] for r in out["excluded_reasons"]) == rep.excluded > 0
    res = runner.invoke(app, ["quarantine", str(d), "--summary"])
    assert res.exit_code == 0, res.output
    assert "excluded" in res.output and "missing or found person" in res.output
    assert f"{rep.read:,} = loaded {rep.loaded:,} + excluded {rep.excluded:,}" in res.output
