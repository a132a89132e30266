"""Ingest of force exports through the canonical profile: validation, quarantine, encodings,
idempotency, atomicity and pseudonymisation."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crimeaudit.ingestion import IngestError, ingest, load_profile, quarantined_rows
from crimeaudit.ingestion.pseudonym import pseudonym
from crimeaudit.store.project import Project

INCIDENTS = (
    "incident_id,reported_at,call_type,victim,officer\n"
    "I1,2013-01-01 10:00:00,ASSAULT,Jane Clearname,PC Alpha\n"
    "I2,2013-01-02 11:00:00,THEFT,Bob Visible,PC Alpha\n"
    "I3,2013-01-03 12:00:00,ASB,,PC Beta\n"
)
CRIMES_HEADER = "crime_id,incident_id,recorded_at,offence_code,status,victim\n"


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", "test-key-0123456789")
    with Project.init(tmp_path / "p") as p:
        yield p


def store_counts(project) -> dict[str, int]:
    eng = project.engine
    return {t: eng.count(t) for t in ("incidents", "crimes", "quarantine", "ingest_files")
            if eng.has_table(t)}


def test_damaged_crimes_file_reports_every_row(project, tmp_path):
    inc = write(tmp_path / "incidents.csv", INCIDENTS)
    crimes = write(tmp_path / "crimes.csv", (
        CRIMES_HEADER
        + "C1,I1,2013-01-01 12:00:00,8N,recorded,Jane Clearname\n"      # 2 good
        + "C2,I2,yesterday,49,recorded,\n"                                # 3 bad date
        + "C3,I2,2013-01-02 12:00:00,ZZ9,recorded,\n"                      # 4 unknown code
        + "C1,I1,2013-01-01 12:00:00,8N,recorded,\n"                      # 5 duplicate id
        + "C4,I2,2013-01-02 12:00:00\n"                                   # 6 ragged row
        + ",I2,2013-01-02 12:00:00,49,recorded,\n"                        # 7 missing id
        + "C5,I99,2013-01-02 12:00:00,49,recorded,\n"                     # 8 incident not loaded
        + "C6,I3,2013-01-03 13:00:00,58D,recorded,\n"                     # 9 good
    ).encode() + b"C7,I3,2013-01-03 13:00:00,58D,recorded,Ren\xe9\xff\n")  # 10 bad bytes
    # a valid UTF-8 name elsewhere makes the file UTF-8 with one damaged line
    write(crimes, crimes.read_bytes() + "C8,I3,2013-01-03 14:00:00,58D,recorded,José\n".encode())
    r = ingest(project, "canonical", [crimes, inc])
    by = {Path(f.file).name: f for f in r.files}
    assert by["incidents.csv"].loaded == 3
    c = by["crimes.csv"]
    assert (c.read, c.loaded, c.quarantined) == (10, 4, 6)
    q = {x["line"]: x for x in quarantined_rows(project, file="crimes.csv")}
    assert sorted(q) == [3, 4, 5, 6, 7, 10]
    assert "unparseable timestamp 'yesterday'" in q[3]["reason"] and q[3]["column"] == "recorded_at"
    assert "unknown offence code 'ZZ9'" in q[4]["reason"]
    assert q[5]["reason"].startswith("duplicate id 'C1'")
    assert q[6]["reason"].startswith("ragged row")
    assert q[7]["reason"].startswith("missing required field crimes.crime_id")
    # a crime pointing at an incident not (yet) loaded is loaded and reported, not quarantined
    assert (r.dangling, r.dangling_examples) == (1, ["I99"])
    assert q[10]["reason"].startswith("bad encoding")
    loaded = set(project.engine.to_pandas(project.engine.table("crimes")).crime_id)
    assert loaded == {"C1", "C5", "C6", "C8"}


@pytest.mark.parametrize("content,word", [(b"", "empty"), (b"\n  \n", "empty"),
                                          (b"PAR1\x00\x01\x02binary\x00" * 10, "binary")])
def test_unreadable_file_is_one_clear_error_and_nothing_loads(project, tmp_path, content, word):
    good = write(tmp_path / "incidents.csv", INCIDENTS)
    bad = write(tmp_path / "crimes.csv", content)
    before = store_counts(project)
    with pytest.raises(IngestError) as exc:
        ingest(project, "canonical", [good, bad])
    assert str(bad) in str(exc.value) and word in str(exc.value)
    assert store_counts(project) == before


@pytest.mark.parametrize("encoding,delimiter", [("utf-8", ","), ("utf-8-sig", ";"),
                                                ("cp1252", "\t"), ("cp1252", ";")])
def test_encodings_and_delimiters_are_detected(project, tmp_path, encoding, delimiter):
    text = INCIDENTS.replace("Bob Visible", "Zoë Café").replace("THEFT", "THEFT – café")
    text = text.replace(",", delimiter)
    f = write(tmp_path / "incidents.csv", text.encode(encoding))
    r = ingest(project, "canonical", [f])
    assert (r.files[0].loaded, r.files[0].quarantined) == (3, 0)
    inc = project.engine.to_pandas(project.engine.table("incidents"))
    assert "THEFT – café" in set(inc.call_type)
    assert pseudonym(b"test-key-0123456789", "Zoë Café") in set(inc.victim)


def test_same_file_twice_is_not_doubled(project, tmp_path):
    f = write(tmp_path / "incidents.csv", INCIDENTS)
    ingest(project, "canonical", [f])
    r = ingest(project, "canonical", [f])
    assert r.files[0].skipped
    assert project.engine.count("incidents") == 3
    # the same rows under another file name are identical re-sends: they change nothing
    g = write(tmp_path / "incidents-copy.csv", INCIDENTS + "I4,2013-01-04 10:00:00,ASB,,\n")
    r = ingest(project, "canonical", [g], table="incidents")
    assert (r.files[0].loaded, r.files[0].quarantined) == (4, 0)
    assert r.files[0].versions["incidents"] == {"new": 1, "changed": 0, "identical": 3}
    assert project.engine.count("incidents") == 4


class Boom(Exception):
    pass


def test_failure_mid_ingest_leaves_store_unchanged(project, tmp_path):
    from crimeaudit.progress import Progress

    class Failing(Progress):
        def task(self, description, total=None):
            from contextlib import contextmanager

            @contextmanager
            def t():
                def advance(n=1, **_):
                    raise Boom("interrupted after the first file")
                yield advance
            return t()

    write(tmp_path / "incidents.csv", INCIDENTS)
    crimes = write(tmp_path / "crimes.csv", CRIMES_HEADER + "C1,I1,2013-01-01 12:00:00,8N,"
                   "recorded,\n")
    before = store_counts(project)
    with pytest.raises(Boom):
        ingest(project, "canonical", [tmp_path / "incidents.csv", crimes], progress=Failing())
    assert store_counts(project) == before


def test_killed_process_leaves_store_as_before(tmp_path):
    d = tmp_path / "p"
    Project.init(d).close()
    write(tmp_path / "incidents.csv", INCIDENTS)
    write(tmp_path / "crimes.csv", CRIMES_HEADER + "C1,I1,2013-01-01 12:00:00,8N,recorded,\n")
    script = textwrap.dedent(f"""
        import os
        from crimeaudit.ingestion import ingest
        from crimeaudit.progress import Progress
        from crimeaudit.store.project import Project
        from contextlib import contextmanager

        class Kill(Progress):
            @contextmanager
            def task(self, description, total=None):
                def advance(n=1, **_):
                    os._exit(9)  # killed after the first file's rows were written
                yield advance

        p = Project.open({str(d)!r})
        ingest(p, "canonical", [{str(tmp_path / 'incidents.csv')!r},
                                {str(tmp_path / 'crimes.csv')!r}], progress=Kill())
    """)
    env = {**os.environ, "CRIMEAUDIT_PSEUDONYM_KEY": "kill-test-key-0123456789"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert done.returncode == 9, done.stderr.decode()
    with Project.open(d) as p:
        assert p.engine.count("incidents") == 0 and p.engine.count("crimes") == 0
        assert not p.engine.has_table("ingest_files") or p.engine.count("ingest_files") == 0


def test_personal_fields_never_stored_or_logged_in_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("CRIMEAUDIT_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("CRIMEAUDIT_PSEUDONYM_KEY_FILE", raising=False)
    d = tmp_path / "p"
    inc = write(tmp_path / "incidents.csv", INCIDENTS)
    crimes = write(tmp_path / "crimes.csv", CRIMES_HEADER
                   + "C1,I1,2013-01-01 12:00:00,8N,recorded,Jane Clearname\n"
                   + "C2,I1,not a date,8N,recorded,Jane Clearname\n"
                   + "C3,I1,2013-01-01 12:00:00,8N\n")
    with Project.init(d) as p:
        r = ingest(p, "canonical", [inc, crimes])
        assert r.key_created
        inc_rows = p.engine.to_pandas(p.engine.table("incidents"))
        crime_rows = p.engine.to_pandas(p.engine.table("crimes"))
        # the same person has the same pseudonym in both files
        jane = inc_rows.set_index("incident_id").victim["I1"]
        assert jane.startswith("p:") and crime_rows.victim.iloc[0] == jane
        assert len(quarantined_rows(p)) == 2
    key = d / "pseudonym.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert jane == pseudonym(key.read_bytes().strip(), "Jane Clearname")
    for f in d.rglob("*"):
        if f.is_file() and f.name != "pseudonym.key":
            data = f.read_bytes()
            for clear in (b"Jane Clearname", b"Bob Visible", b"PC Alpha"):
                assert clear not in data, f"{clear!r} found in {f}"


def test_user_profile_mistakes_are_named(tmp_path):
    bad = write(tmp_path / "mine.yaml", textwrap.dedent("""
        name: mine
        targets:
          - table: crimes
            columns:
              crime_id: {from: Ref}
              offence_cod: {from: Class}
    """))
    with pytest.raises(IngestError) as exc:
        load_profile(bad)
    assert "mine.yaml" in str(exc.value) and "offence_cod" in str(exc.value)
    with pytest.raises(IngestError, match="no profile 'nope'"):
        load_profile("nope")


def test_user_profile_maps_a_force_export(project, tmp_path):
    prof = write(tmp_path / "force.yaml", textwrap.dedent("""
        name: force-x
        personal: [Victim Name]
        crosswalks:
          hocr: {map: {ABH: 8N, COMMON: 105A}}
        targets:
          - table: crimes
            columns:
              crime_id: {from: Ref, prefix: "X-"}
              recorded_at: {from: Recorded, format: "%d/%m/%Y %H:%M"}
              offence_code: {from: Class, crosswalk: hocr}
              status: {value: recorded}
              location: {from: Victim Name}
    """))
    f = write(tmp_path / "export.csv", "Ref;Recorded;Class;Victim Name\n"
              "1;03/01/2013 10:00;ABH;Jane Clearname\n2;31/02/2013 10:00;COMMON;A B\n"
              "3;04/01/2013 10:00;THEFT;C D\n")
    r = ingest(project, prof, [f])
    assert (r.files[0].loaded, r.files[0].quarantined) == (2, 1)
    crimes = project.engine.to_pandas(project.engine.table("crimes")).sort_values("crime_id")
    assert list(crimes.crime_id) == ["X-1", "X-3"]
    # THEFT has no class in the crosswalk: loaded as unclassified, with the source's word
    assert list(crimes.offence_code) == ["8N", "unclassified"]
    assert list(crimes.source_offence_description) == ["ABH", "THEFT"]
    assert r.files[0].unmapped == {"crimes.offence_code (hocr) -> unclassified": {"THEFT": 1}}
    assert crimes.location.iloc[0] == pseudonym(b"test-key-0123456789", "Jane Clearname")
    q = quarantined_rows(project)
    assert "Jane" not in " ".join(x["raw"] for x in q)
    assert {x["line"] for x in q} == {3}


def test_missing_columns_name_the_file(project, tmp_path):
    f = write(tmp_path / "crimes.csv", "crime_id,offence_code\nC1,8N\n")
    with pytest.raises(IngestError, match=r"crimes.csv: missing required column\(s\) recorded_at"):
        ingest(project, "canonical", [f])


def test_repeated_personal_values_get_the_same_pseudonyms_as_unique_ones(project, tmp_path):
    # Officers repeat on every row (hashed once per distinct value and joined back); victims
    # are all different (hashed row by row): both must give exactly the keyed pseudonym of the
    # trimmed value, and a blank stays missing.
    officers = ["PC Alpha", " PC Beta ", "PC Gamma", ""]
    rows = [f"I{i},2013-01-01 10:00:00,ASB,Victim {i},{officers[i % 4]}" for i in range(40)]
    f = write(tmp_path / "incidents.csv", "incident_id,reported_at,call_type,victim,officer\n"
              + "\n".join(rows) + "\n")
    r = ingest(project, "canonical", [f])
    assert (r.files[0].loaded, r.files[0].quarantined) == (40, 0)
    inc = project.engine.to_pandas(project.engine.table("incidents")).set_index("incident_id")
    for i in range(40):
        name = officers[i % 4].strip()
        want = pseudonym(b"test-key-0123456789", name) if name else None
        got = inc.officer[f"I{i}"]
        assert (got if isinstance(got, str) else None) == want
        assert inc.victim[f"I{i}"] == pseudonym(b"test-key-0123456789", f"Victim {i}")
