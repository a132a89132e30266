"""Profiles a registrar can write (issue 16, item 2): crosswalks that normalise codes and take
patterns, a crosswalk file shared by two profiles, exclusion rules, and ``profiles --check``
dry runs that say per column what would load, be excluded or quarantined and fail on a
profile that cannot load rows correctly."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from crimeaudit.cli import app
from crimeaudit.ingestion import IngestError, ingest, ingest_summary, load_profile
from crimeaudit.store.project import Project

runner = CliRunner()

# A force's export: semicolons, dd/mm/yyyy, codes spelt every way a registrar meets them.
EXPORT = (
    "Crime No;Recorded;HO Class;Outcome Text;Officer\n"
    "CR1;03/01/2024;008N;Charged;PC 1\n"
    "CR2;04/01/2024;8n;Charged;PC 2\n"
    "CR3;05/01/2024; 8 N ;No suspect;PC 1\n"
    "CR4;06/01/2024;037/2;No suspect;PC 3\n"
    "CR5;07/01/2024;105b;Charged;PC 1\n"
    "CR6;08/01/2024;N100;Not a crime;PC 2\n"
    "CR7;09/01/2024;999Z;No suspect;PC 2\n"
    "CR8;31/02/2024;8N;Charged;PC 2\n"
)

SHARED_CROSSWALK = """\
normalise: [case, space, zeros, punctuation]
map:
  8N: 8N
  37.2: "37.2"
patterns:
  '105[a-z]': 105A
"""


def _profile(name: str) -> str:
    return textwrap.dedent(f"""\
        name: {name}
        personal: [Officer]
        crosswalks:
          hocr: {{file: shared/hocr.yaml}}
        targets:
          - table: crimes
            exclude:
              - column: HO Class
                values: [N100]
                reason: "N100: a rape report recorded as not a crime (checked elsewhere)"
            columns:
              crime_id: {{from: Crime No}}
              recorded_at: {{from: Recorded, format: "%d/%m/%Y"}}
              offence_code: {{from: HO Class, crosswalk: hocr}}
              source_offence_code: {{from: HO Class}}
              source_outcome_description: {{from: Outcome Text}}
              officer: {{from: Officer}}
        """)


@pytest.fixture
def force(tmp_path, monkeypatch):
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", "profiles-test-key-0123456789")
    (tmp_path / "profiles" / "shared").mkdir(parents=True)
    (tmp_path / "profiles" / "shared" / "hocr.yaml").write_text(SHARED_CROSSWALK)
    good = tmp_path / "profiles" / "kent.yaml"
    good.write_text(_profile("kent").replace(
        "      officer: {from: Officer}",
        "      officer: {from: Officer}\n      status: {value: recorded}"))
    export = tmp_path / "export.csv"
    export.write_text(EXPORT)
    return tmp_path, good, export


def test_codes_are_normalised_and_patterns_match(force):
    root, profile, export = force
    with Project.init(root / "p") as p:
        r = ingest(p, profile, [export])
        crimes = p.engine.to_pandas(p.engine.table("crimes")).set_index("crime_id")
        summary = ingest_summary(p)
    (f,) = r.files
    assert (f.read, f.loaded, f.excluded, f.quarantined) == (8, 6, 1, 1)
    # 008N, 8n and " 8 N " are all 8N; 037/2 is 37.2; 105b matches the 105[a-z] pattern
    assert crimes.loc[["CR1", "CR2", "CR3"], "offence_code"].tolist() == ["8N"] * 3
    assert crimes.loc["CR4", "offence_code"] == "37.2"
    assert crimes.loc["CR5", "offence_code"] == "105A"
    # a code the crosswalk does not list loads unclassified, its own code kept beside it
    assert crimes.loc["CR7", ["offence_code", "source_offence_code"]].tolist() == [
        "unclassified", "999Z"]
    assert f.unmapped == {"crimes.offence_code (hocr) -> unclassified": {"999Z": 1}}
    # the published outcome text is stored as written
    assert crimes.loc["CR4", "source_outcome_description"] == "No suspect"
    # N100 is out of scope, counted under the profile's reason; 31/02 is wrong, quarantined
    (exc,) = summary["files"][0]["excluded_reasons"]
    assert exc["values"] == {"N100": 1} and exc["reason"].startswith("N100")
    (q,) = summary["files"][0]["quarantine_reasons"]
    assert "unparseable timestamp" in q["reason"] and q["first_line"] == 9


def test_one_crosswalk_file_serves_two_profiles(force):
    root, profile, export = force
    other = root / "profiles" / "essex.yaml"
    other.write_text(profile.read_text().replace("name: kent", "name: essex").replace(
        "hocr: {file: shared/hocr.yaml}",
        "hocr: {file: shared/hocr.yaml, map: {999Z: 8L}}"))
    a, b = load_profile(profile), load_profile(other)
    assert a.crosswalks["hocr"].translate("008n") == b.crosswalks["hocr"].translate("8N")
    # the profile's own entries add to the shared file's
    assert b.crosswalks["hocr"].translate("999z") == (True, "8L")
    assert a.crosswalks["hocr"].translate("999z") == (False, None)
    (root / "profiles" / "shared" / "hocr.yaml").write_text(
        SHARED_CROSSWALK.replace("8N: 8N", "8N: 8L"))
    assert load_profile(other).crosswalks["hocr"].translate("008N") == (True, "8L")


def test_a_missing_shared_crosswalk_file_is_one_clear_error(force):
    root, profile, _ = force
    profile.write_text(profile.read_text().replace("shared/hocr.yaml", "shared/nope.yaml"))
    with pytest.raises(IngestError, match=r"crosswalk 'hocr': file 'shared/nope.yaml'"):
        load_profile(profile)


def test_keys_that_normalise_alike_but_map_apart_are_refused(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text(_profile("bad").replace("hocr: {file: shared/hocr.yaml}",
                                           "hocr: {normalise: true, map: {8N: 8N, 008n: 8L}}"))
    with pytest.raises(IngestError, match="same code once normalised"):
        load_profile(bad)


def test_profiles_check_dry_run_reports_per_column(force):
    root, profile, export = force
    res = runner.invoke(app, ["profiles", "--check", str(profile), str(export), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ok"] and out["problems"] == []
    (f,) = out["files"]
    assert (f["read"], f["loaded"], f["excluded"], f["quarantined"]) == (8, 6, 1, 1)
    assert f["unmapped"] == {"crimes.offence_code (hocr) -> unclassified": {"999Z": 1}}
    cols = {(c["column"], c["what"]): c["rows"] for c in f["columns"]}
    assert cols == {("crimes.recorded_at", "quarantined"): 1, ("HO Class", "excluded"): 1}
    # nothing was written next to the profile or the export
    assert sorted(p.name for p in root.iterdir()) == ["export.csv", "profiles"]
    res = runner.invoke(app, ["profiles", "--check", str(profile), str(export)],
                        env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    assert "would load 6 + exclude 1 + quarantine 1" in res.output
    assert "999Z" in res.output and "crimes.recorded_at" in res.output


def test_profiles_check_fails_a_profile_that_cannot_load_rows(force):
    root, profile, export = force
    broken = root / "profiles" / "broken.yaml"
    # no status mapping, a class the code list does not have, a misspelt personal column
    broken.write_text(profile.read_text()
                      .replace("      status: {value: recorded}\n", "")
                      .replace("personal: [Officer]", "personal: [Oficer]")
                      .replace("hocr: {file: shared/hocr.yaml}",
                               "hocr: {file: shared/hocr.yaml, map: {999Z: 99X}}"))
    res = runner.invoke(app, ["profiles", "--check", str(broken), str(export), "--json"])
    assert res.exit_code == 1, res.output
    problems = json.loads(res.stdout)["problems"]
    assert any("crimes.status is required" in p for p in problems)
    assert any("'99X'" in p and "code list does not have" in p for p in problems)
    assert any("personal column 'Oficer'" in p for p in problems)
    # without files the static checks still fail it
    res = runner.invoke(app, ["profiles", "--check", str(broken)])
    assert res.exit_code == 1 and "crimes.status is required" in res.output
    assert "Traceback" not in res.output


def test_profiles_check_passes_every_builtin_profile():
    for name in ("police-uk-street", "lapd", "chicago", "sf-incidents", "seattle-calls",
                 "ons-pfa", "mps-borough-monthly", "police-uk-outcomes", "home-office-prc"):
        res = runner.invoke(app, ["profiles", "--check", name, "--json"])
        assert res.exit_code == 0, (name, res.output)
        assert json.loads(res.stdout)["problems"] == []


def test_files_without_check_are_refused_in_one_line(tmp_path):
    res = runner.invoke(app, ["profiles", str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and "--check" in res.output and "Traceback" not in res.output


def test_an_id_repeated_within_a_file_can_be_kept_as_marked_copies(tmp_path):
    """A source that repeats some ids (data.police.uk's Crime IDs) loads every row when the
    profile says ``copies: true``: the later copies are records ``<id>~copy2``..., and the same
    file again under another name adds nothing."""
    prof = tmp_path / "copies.yaml"
    prof.write_text(textwrap.dedent("""\
        name: copies
        targets:
          - table: crimes
            columns:
              crime_id: {from: Crime ID, copies: true}
              recorded_at: {from: Month, format: "%Y-%m"}
              offence_code: {value: "49"}
              status: {value: recorded}
              source_outcome_description: {from: Outcome}
        """), encoding="utf-8")
    data = tmp_path / "2020-01.csv"
    data.write_text("Crime ID,Month,Outcome\nA,2020-01,one\nB,2020-01,x\n A ,2020-01,two\n"
                    "A,2020-01,three\n,2020-01,none\n", encoding="utf-8")
    with Project.init(tmp_path / "p") as p:
        rep = ingest(p, str(prof), [data])
        assert (rep.files[0].read, rep.files[0].loaded, rep.files[0].quarantined) == (5, 4, 1)
        crimes = p.engine.to_pandas(p.engine.table("crimes")).set_index("crime_id")
        assert crimes["source_outcome_description"].to_dict() == {
            "A": "one", "B": "x", "A~copy2": "two", "A~copy3": "three"}
        again = tmp_path / "renamed.csv"
        again.write_bytes(data.read_bytes())
        ingest(p, str(prof), [again])
        assert p.engine.count("crimes") == 4
