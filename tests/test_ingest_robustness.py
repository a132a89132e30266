"""The ingest stage's promises, under damaged and hostile input.

Each test asserts a promise a user relies on, not an implementation detail:

- every physical line of every input is loaded or quarantined, and read = loaded + quarantined
  (generated damage: random quotes, NULs, bad bytes, long lines, mixed line ends, missing and
  extra fields, truncation; and the named cases that once lost rows);
- wrong values (implausible dates and coordinates, decimal commas, a crime recorded before it
  was reported) are quarantined with the reason, never loaded as something else;
- the same rows under another file name add nothing;
- no clear personal value exists anywhere under the project folder, even after an ingest is
  killed at a random moment; quarantined text hides personal and unmapped columns; a profile
  naming a personal column the file lacks is refused;
- a project keeps one pseudonym key: a missing, different, empty or short key is refused;
- a failed ingest leaves the store as it was.
"""

from __future__ import annotations

import os
import random
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimeaudit.ingestion import IngestError, ingest, quarantined_rows, source
from crimeaudit.ingestion.pseudonym import KEY_ENV, KEY_FILE_ENV, fingerprint, pseudonym
from crimeaudit.store.project import Project

KEY = "robustness-test-key-0123456789"
HEADER = "incident_id,reported_at,call_type,victim,officer"
NAMES = ("Zebedee Quintrell", "Ottoline Fairweather", "Barnaby Quist")
FIX = Path(__file__).parent / "fixtures" / "ingest"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


def row(i: int) -> str:
    return (f"I{i},2013-01-{1 + i % 28:02d} 10:00:00,ASSAULT,{NAMES[i % 3]} {i},"
            f"PC {NAMES[(i + 1) % 3]}")


def physical_lines(data: bytes) -> dict[int, bytes]:
    """Non-empty physical lines after the header, by number (lines end at \\r\\n, \\n or \\r)."""
    return {n: line for n, line in enumerate(re.split(rb"\r\n|\r|\n", data), start=1)
            if n > 1 and line}


def store_state(project) -> dict[str, object]:
    eng = project.engine
    out: dict[str, object] = {}
    for t in ("incidents", "crimes", "counts", "quarantine", "ingest_files"):
        if eng.has_table(t):
            df = eng.to_pandas(eng.table(t))
            out[t] = sorted(map(str, df.astype(str).itertuples(index=False)))
    return out


def assert_accounted(project, path: Path, report, must_load: dict[int, str]) -> None:
    """Every non-empty physical line is one record, loaded or quarantined; the counts
    reconcile; the lines ``must_load`` (line -> id) were loaded."""
    (f,) = report.files
    lines = physical_lines(path.read_bytes())
    assert f.read == f.loaded + f.quarantined == len(lines), (f, len(lines))
    q = [x["line"] for x in quarantined_rows(project) if x["file"] == str(path)]
    assert len(q) == len(set(q)) == f.quarantined
    assert set(q) <= set(lines), sorted(set(q) - set(lines))
    assert not set(q) & set(must_load), sorted(set(q) & set(must_load))
    inc = project.engine.to_pandas(project.engine.table("incidents"))
    assert set(must_load.values()) <= set(inc.incident_id)
    # The personal columns hold pseudonyms only. (A damaged line may shift a name into another
    # column, such as a quoted "ASSAULT,Zebedee Quintrell": that is the file's own content.)
    for col in ("victim", "officer"):
        assert inc[col].dropna().str.startswith("p:").all()


# -- generated damage ---------------------------------------------------------------------------

ENDS = (b"\n", b"\r\n", b"\r")
DAMAGE = ("quote", "nul", "bad byte", "long", "drop field", "extra field")
LAYOUT = ("crlf", "cr", "blank line")


@st.composite
def damaged_files(draw):
    """A function of an id prefix giving (file bytes, {line: id} of the rows that must load)."""
    n = draw(st.integers(1, 30))
    lines = [row(i).encode() for i in range(n)]
    ends = [b"\n"] * n
    hurt: set[int] = set()
    for op, i, pos in draw(st.lists(st.tuples(st.sampled_from(DAMAGE + LAYOUT),
                                              st.integers(0, n - 1), st.integers(0, 999)),
                                    max_size=6)):
        at = pos % (len(lines[i]) + 1)
        if op in DAMAGE:
            hurt.add(i)
        if op == "quote":
            lines[i] = lines[i][:at] + b'"' + lines[i][at:]
        elif op == "nul":
            lines[i] = lines[i][:at] + b"\0" + lines[i][at:]
        elif op == "bad byte":
            lines[i] = lines[i][:at] + b"\xff" + lines[i][at:]
        elif op == "long":
            lines[i] = lines[i][:at] + b"x" * (LONG + 1) + lines[i][at:]
        elif op == "drop field":
            lines[i] = lines[i].replace(b",", b" ", 1)
        elif op == "extra field":
            lines[i] += b",extra"
        elif op in ("crlf", "cr"):
            ends[i] = ENDS[1 if op == "crlf" else 2]
        else:
            ends[i] = ends[i] * 2
    header_end = draw(st.sampled_from(ENDS))
    cut = draw(st.none() | st.floats(0, 1))  # truncated at that fraction of the rows

    def build(prefix: bytes) -> tuple[bytes, dict[int, str]]:
        data = HEADER.encode() + header_end
        must: dict[int, str] = {}
        line_no = 2
        for i, (line, end) in enumerate(zip(lines, ends, strict=True)):
            if i not in hurt:
                must[line_no] = f"{prefix.decode()}I{i}"
            data += prefix + line + end
            line_no += len(re.findall(rb"\r\n|\r|\n", end))
        if cut is not None:  # the line cut, and every line after it, need not load
            data = data[:len(HEADER) + 2 + int(cut * (len(data) - len(HEADER) - 2))]
            kept = physical_lines(data)
            last = max(kept, default=0)
            must = {k: v for k, v in must.items() if k in kept and k != last}
        return data, must

    return build


LONG = 2048  # the line limit while generating (the real one is tested on its own below)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One project for all generated files (each with its own ids): a store per example
    would spend the time on creating stores."""
    d = tmp_path_factory.mktemp("damage")
    with Project.init(d / "p") as p:
        yield d, p, iter(range(1_000_000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(build=damaged_files())
def test_every_physical_line_is_loaded_or_quarantined(shared, build):
    d, p, counter = shared
    k = next(counter)
    data, must_load = build(f"E{k}-".encode())
    path = d / f"incidents-{k}.csv"
    path.write_bytes(data)
    before = source.MAX_LINE_BYTES
    source.MAX_LINE_BYTES = LONG
    try:
        r = ingest(p, "canonical", [path], table="incidents")
        if not r.files[0].skipped:  # (skipped: the same bytes as an earlier example)
            assert_accounted(p, path, r, must_load)
    finally:
        source.MAX_LINE_BYTES = before


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two projects: one reading files as the ingest chooses, one always through the
    splitter (each example with its own ids)."""
    d = tmp_path_factory.mktemp("agree")
    with Project.init(d / "fast") as fast, Project.init(d / "split") as split:
        yield d, fast, split, iter(range(1_000_000))


@settings(max_examples=10, deadline=None)
@given(values=st.lists(st.text(alphabet=st.sampled_from('ab ,;"\t\'é–'), max_size=12),
                       min_size=3, max_size=3), n=st.integers(1, 12))
def test_the_fast_reader_and_the_splitter_agree(pair, values, n):
    """A clean file is read by DuckDB's reader; the same file split here must load the same
    rows (fields with quotes, delimiters and non-ASCII text, quoted as a CSV writer does)."""
    import csv
    import io

    d, fast, split, counter = pair
    k = next(counter)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["incident_id", "reported_at", "call_type", "location", "division"])
    for i in range(n):
        w.writerow([f"A{k}-{i}", "2013-01-01 10:00:00", *values])
    path = d / f"incidents-{k}.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    assert source.inspect_file(path).clean
    real = source.inspect_file

    def unclean(*a, **kw):
        s = real(*a, **kw)
        s.clean = False
        return s

    ingest(fast, "canonical", [path])
    with mock.patch("crimeaudit.ingestion.load.inspect_file", unclean):
        ingest(split, "canonical", [path])
    assert store_state(fast)["incidents"] == store_state(split)["incidents"]


# -- the named cases ------------------------------------------------------------------------------

def test_unterminated_quote_costs_its_line_only(tmp_path):
    rows = [row(i) for i in range(5000)]
    rows[99] = rows[99].replace(",ASSAULT,", ',"ASSAULT,')
    f = tmp_path / "incidents.csv"
    f.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    with Project.init(tmp_path / "p") as p:
        r = ingest(p, "canonical", [f])
        assert (r.files[0].read, r.files[0].loaded, r.files[0].quarantined) == (5000, 4999, 1)
        (q,) = quarantined_rows(p)
        assert q["line"] == 101 and q["reason"].startswith("unterminated quote")
        assert_accounted(p, f, r, {n + 2: f"I{n}" for n in range(5000) if n != 99})


def test_police_uk_stray_quote_in_location(tmp_path):
    lines = (FIX / "2019-06-city-of-london-street.csv").read_text().splitlines()[:21]
    fields = lines[6].split(",")
    fields[6] = '"' + fields[6]
    lines[6] = ",".join(fields)
    f = tmp_path / "street.csv"
    f.write_text("\n".join(lines) + "\n")
    with Project.init(tmp_path / "p") as p:
        r = ingest(p, "police-uk-street", [f])
        rep = r.files[0]
        assert rep.read == 20 == rep.loaded + rep.quarantined
        assert [(q["line"], q["reason"][:18]) for q in quarantined_rows(p)
                if not q["reason"].startswith("unknown offence")] == [(7, "unterminated quote")]


def test_a_line_over_32_mb_is_quarantined_and_the_rest_read(tmp_path):
    f = tmp_path / "incidents.csv"
    with f.open("w") as out:
        out.write(HEADER + "\n" + "\n".join(row(i) for i in range(20)) + "\n")
        out.write("I99,2013-01-01 10:00:00," + "x" * (33 << 20) + ",v,o\n")
        out.write("\n".join(row(i) for i in range(20, 30)) + "\n")
    with Project.init(tmp_path / "p") as p:
        r = ingest(p, "canonical", [f])
        assert (r.files[0].read, r.files[0].loaded, r.files[0].quarantined) == (31, 30, 1)
        (q,) = quarantined_rows(p)
        assert q["line"] == 22 and q["reason"].startswith("line too long")


@pytest.mark.parametrize("end", [b"\r", b"\r\n", b"mixed"])
def test_any_line_ends_load_every_row(tmp_path, end):
    rows = [row(i).encode() for i in range(9)]
    ends = [(b"\r", b"\n", b"\r\n")[i % 3] if end == b"mixed" else end for i in range(10)]
    data = HEADER.encode() + ends[0] + b"".join(r + e for r, e in zip(rows, ends[1:],
                                                                     strict=True))
    f = tmp_path / "incidents.csv"
    f.write_bytes(data)
    with Project.init(tmp_path / "p") as p:
        r = ingest(p, "canonical", [f])
        assert (r.files[0].read, r.files[0].loaded) == (9, 9)


CRIMES = "crime_id,reported_at,recorded_at,offence_code,status,latitude,longitude\n"


@pytest.mark.parametrize("line,column,reason", [
    ("C2,2099-01-01 10:00:00,2099-01-01 11:00:00,8N,recorded,51.5,-0.1", "reported_at",
     "implausible date '2099-01-01 10:00:00'"),
    ("C2,1900-01-01 10:00:00,1900-01-01 11:00:00,8N,recorded,51.5,-0.1", "reported_at",
     "implausible date"),
    ("C2,0001-01-01 10:00:00,0001-01-01 11:00:00,8N,recorded,51.5,-0.1", "reported_at",
     "implausible date"),
    ("C2,99999-01-01 10:00:00,99999-01-01 11:00:00,8N,recorded,51.5,-0.1", "reported_at",
     "implausible date"),
    ("C2,2013-01-02 10:00:00,2013-01-01 11:00:00,8N,recorded,51.5,-0.1", "recorded_at",
     "crime recorded 2013-01-01 11:00:00 before it was reported"),
    ('C2,2013-01-01 10:00:00,2013-01-01 11:00:00,8N,recorded,"51,3",-0.1', "latitude",
     "unparseable float '51,3'"),
    ("C2,2013-01-01 10:00:00,2013-01-01 11:00:00,8N,recorded,513.0,-0.1", "latitude",
     "implausible latitude '513.0'"),
    ("C2,2013-01-01 10:00:00,2013-01-01 11:00:00,8N,recorded,51.5,-181", "longitude",
     "implausible longitude"),
    ("C2,2013-01-01 10:00:00,2013-01-01 11:00:00,8N,recorded,nan,-0.1", "latitude",
     "unparseable float 'nan'"),
])
def test_wrong_values_are_quarantined_with_the_reason(tmp_path, line, column, reason):
    f = tmp_path / "crimes.csv"
    f.write_text(CRIMES + "C1,2013-01-01 10:00:00,2013-01-01 11:00:00,8N,recorded,51.5,-0.1\n"
                 + line + "\n")
    with Project.init(tmp_path / "p") as p:
        r = ingest(p, "canonical", [f])
        assert (r.files[0].loaded, r.files[0].quarantined) == (1, 1)
        (q,) = quarantined_rows(p)
        assert q["line"] == 3 and q["column"] == column and q["reason"].startswith(reason)


def test_plausible_ranges_are_project_settings(tmp_path):
    f = tmp_path / "crimes.csv"
    f.write_text(CRIMES + "C1,1985-06-01 10:00:00,1985-06-01 11:00:00,8N,recorded,51.5,-0.1\n"
                 "C2,2013-01-01 10:00:00,2013-01-01 11:00:00,8N,recorded,40.7,-74.0\n")
    with Project.init(tmp_path / "p", earliest_date="1980-01-01", latitude=(49, 61),
                      longitude=(-9, 2)) as p:
        r = ingest(p, "canonical", [f])
        assert (r.files[0].loaded, r.files[0].quarantined) == (1, 1)
        assert quarantined_rows(p)[0]["reason"].startswith("implausible latitude '40.7'")


def test_decimal_commas_parse_where_the_profile_declares_them(tmp_path):
    prof = tmp_path / "comma.yaml"
    prof.write_text(textwrap.dedent("""
        name: comma
        delimiter: ";"
        decimal: ","
        targets:
          - table: incidents
            columns:
              incident_id: {from: Ref}
              reported_at: {from: Date, format: "%d/%m/%Y"}
              latitude: {from: Lat}
              longitude: {from: Lon}
    """))
    f = tmp_path / "export.csv"
    f.write_text("Ref;Date;Lat;Lon\nA;03/01/2013;51,3;-0,12\nB;03/01/2013;51.3;-0,12\n")
    with Project.init(tmp_path / "p") as p:
        r = ingest(p, prof, [f])
        assert (r.files[0].loaded, r.files[0].quarantined) == (1, 1)
        inc = p.engine.to_pandas(p.engine.table("incidents"))
        assert inc.latitude.tolist() == [51.3] and inc.longitude.tolist() == [-0.12]
        assert quarantined_rows(p)[0]["reason"].startswith("unparseable float '51.3'")


def test_the_same_police_uk_month_under_another_name_adds_nothing(tmp_path):
    src = FIX / "2019-06-city-of-london-street.csv"
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(src.read_bytes() + b"\n")  # another name, another hash: not skipped
    with Project.init(tmp_path / "p") as p:
        ingest(p, "police-uk-street", [src])
        before = {t: p.engine.count(t) for t in ("incidents", "crimes")}
        assert before["incidents"] > 0
        r = ingest(p, "police-uk-street", [copy])
        assert {t: p.engine.count(t) for t in ("incidents", "crimes")} == before
        # every row is an identical re-send (loaded, changing nothing) or quarantined as
        # in the original, never as "already in the store"
        f = r.files[0]
        assert f.loaded == sum(v["identical"] for v in f.versions.values()) > 0
        assert all(v["new"] == v["changed"] == 0 for v in f.versions.values())
        again = quarantined_rows(p, file="renamed")
        assert sorted((q["line"], q["reason"]) for q in again) == sorted(
            (q["line"], q["reason"]) for q in quarantined_rows(p, file=src.name))
        assert not any("already in the store" in q["reason"] for q in again)


def test_two_identical_asb_rows_are_two_incidents(tmp_path):
    lines = (FIX / "2019-06-city-of-london-street.csv").read_text().splitlines()
    asb = next(x for x in lines[1:] if x.startswith(","))
    f = tmp_path / "street.csv"
    f.write_text("\n".join([lines[0], asb, asb]) + "\n")
    with Project.init(tmp_path / "p") as p:
        r = ingest(p, "police-uk-street", [f])
        assert r.files[0].loaded == 2 and p.engine.count("incidents") == 2


# -- personal data ------------------------------------------------------------------------------

def test_quarantine_hides_personal_and_unmapped_columns(tmp_path):
    f = tmp_path / "incidents.csv"
    f.write_text("incident_id,reported_at,victim,address,phone\n"
                 "I1,2013-01-01 10:00:00,Zebedee Quintrell,12 Quintrell Road,07700 900123\n"
                 "I2,not a date,Zebedee Quintrell,12 Quintrell Road,07700 900123\n"
                 "I3,2013-01-01 10:00:00,Zebedee Quintrell,12 Quintrell Road\n")
    with Project.init(tmp_path / "p") as p:
        r = ingest(p, "canonical", [f])
        assert (r.files[0].loaded, r.files[0].quarantined) == (1, 2)
        raws = " ".join(q["raw"] for q in quarantined_rows(p))
        assert "I2" in raws and "not a date" in raws and "[not mapped]" in raws
        assert pseudonym(KEY.encode(), "Zebedee Quintrell") in raws
        for clear in ("Zebedee", "Quintrell", "07700"):
            assert clear not in raws


def test_a_personal_column_the_file_lacks_is_refused(tmp_path):
    prof = tmp_path / "typo.yaml"
    prof.write_text(textwrap.dedent("""
        name: typo
        personal: [Victim Nmae]
        targets:
          - table: incidents
            columns:
              incident_id: {from: Ref}
              reported_at: {from: Date}
              location: {from: Victim Name}
    """))
    f = tmp_path / "export.csv"
    f.write_text("Ref,Date,Victim Name\nA,2013-01-01,Zebedee Quintrell\n")
    with Project.init(tmp_path / "p") as p:
        before = store_state(p)
        with pytest.raises(IngestError) as exc:
            ingest(p, prof, [f])
        msg = str(exc.value)
        assert "'typo'" in msg and "Victim Nmae" in msg and "Ref, Date, Victim Name" in msg
        assert "\n" not in msg and str(f) in msg
        assert store_state(p) == before


def test_killed_ingest_leaves_no_clear_personal_value_anywhere(tmp_path):
    """A Windows-1252 file (once copied to a clear UTF-8 temporary file) is ingested by a child
    process killed at random moments; then every byte under the project folder is searched."""
    rows = [f"I{i};2013-01-{1 + i % 28:02d} 10:00:00;ASSAULT – café;Zebedee Quintrell {i % 97};"
            f"PC Ottoline Fairweather;{i} Quist Road" for i in range(30_000)]
    f = tmp_path / "incidents.csv"
    f.write_bytes(("incident_id;reported_at;call_type;victim;officer;address\n"
                   + "\n".join(rows) + "\n").encode("cp1252"))
    script = textwrap.dedent(f"""
        import sys, time
        from crimeaudit.ingestion import ingest
        from crimeaudit.store.project import Project
        with Project.open(sys.argv[1]) as p:
            print("start", flush=True)
            t = time.perf_counter()
            ingest(p, "canonical", [{str(f)!r}])
            print("done", time.perf_counter() - t, flush=True)
    """)
    env = {**os.environ, KEY_ENV: KEY}
    rng = random.Random(14)
    took = None
    for attempt in range(4):
        d = tmp_path / f"p{attempt}"
        Project.init(d).close()
        if not attempt:  # a clear copy an older version's killed ingest left: cleaned up
            (d / "ingest-tmp").mkdir()
            (d / "ingest-tmp" / "0123.utf8.csv").write_text("Zebedee Quintrell\n")
        child = subprocess.Popen([sys.executable, "-c", script, str(d)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout.readline().strip() == b"start", child.stderr.read()
        if took is None:  # the first runs to the end: it gives the time to aim the kills at
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err.decode()
            took = float(out.split()[-1])
        else:
            time.sleep(rng.uniform(0, took))
            child.send_signal(signal.SIGKILL)
            child.communicate()
        found = [(str(x.relative_to(d)), name) for x in d.rglob("*") if x.is_file()
                 for name in (b"Zebedee", b"Quintrell", b"Ottoline", b"Quist")
                 if name in x.read_bytes()]
        assert not found, f"clear personal values after a kill at attempt {attempt}: {found}"
        with Project.open(d) as p:
            assert p.engine.count("incidents") in (0, 30_000)


# -- keys -------------------------------------------------------------------------------------

def _file(tmp_path) -> Path:
    f = tmp_path / "incidents.csv"
    f.write_text(HEADER + "\n" + row(1) + "\n")
    return f


def test_the_key_file_is_private_and_its_fingerprint_recorded(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    d = tmp_path / "p"
    with Project.init(d) as p:
        ingest(p, "canonical", [_file(tmp_path)])
        key = (d / "pseudonym.key").read_bytes().strip()
        assert p.config.pseudonym_key_fingerprint == fingerprint(key)
        victim = p.engine.to_pandas(p.engine.table("incidents")).victim.iloc[0]
        assert victim == pseudonym(key, f"{NAMES[1]} 1")
    assert stat.S_IMODE((d / "pseudonym.key").stat().st_mode) == 0o600
    with Project.open(d) as p:  # recorded in project.yaml, so it outlives the process
        assert p.config.pseudonym_key_fingerprint == fingerprint(key)


def test_a_deleted_key_file_is_refused_not_replaced(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    d = tmp_path / "p"
    f = _file(tmp_path)
    with Project.init(d) as p:
        ingest(p, "canonical", [f])
    (d / "pseudonym.key").unlink()
    g = tmp_path / "incidents2.csv"
    g.write_text(HEADER + "\n" + row(2) + "\n")
    with Project.open(d) as p:
        before = store_state(p)
        with pytest.raises(IngestError, match=r"pseudonym.key: no pseudonym key.*restore"):
            ingest(p, "canonical", [g])
        assert store_state(p) == before
    assert not (d / "pseudonym.key").exists()


def test_another_key_is_refused(tmp_path, monkeypatch):
    d = tmp_path / "p"
    with Project.init(d) as p:
        ingest(p, "canonical", [_file(tmp_path)])
    monkeypatch.setenv(KEY_ENV, "another-key-0123456789abcdef")
    g = tmp_path / "incidents2.csv"
    g.write_text(HEADER + "\n" + row(2) + "\n")
    with Project.open(d) as p:
        before = store_state(p)
        with pytest.raises(IngestError) as exc:
            ingest(p, "canonical", [g])
        assert "not this project's key" in str(exc.value) and "\n" not in str(exc.value)
        assert store_state(p) == before


@pytest.mark.parametrize("where,key,word", [("env", "k", "1 bytes"), ("env", "", "is empty"),
                                            ("file", "", "is empty"),
                                            ("file", "aaaaaaaaaaaaaaaaaaaaaaaa", "different"),
                                            ("env", "short-key", "at least 16")])
def test_weak_keys_are_refused(tmp_path, monkeypatch, where, key, word):
    if where == "file":
        monkeypatch.delenv(KEY_ENV)
        (tmp_path / "key").write_text(key)
        monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "key"))
    else:
        monkeypatch.setenv(KEY_ENV, key)
    with Project.init(tmp_path / "p") as p:
        with pytest.raises(IngestError, match=word):
            ingest(p, "canonical", [_file(tmp_path)])
        assert p.engine.count("incidents") == 0


def test_a_failed_ingest_leaves_the_store_unchanged(tmp_path):
    """An ingest that fails after its first file was written (here: the progress display
    raises) leaves the store exactly as it was, the quarantine and the ledger included."""
    from contextlib import contextmanager

    from crimeaudit.progress import Progress

    class Failing(Progress):
        @contextmanager
        def task(self, description, total=None):
            def advance(n=1, **_):
                raise KeyboardInterrupt

            yield advance

    with Project.init(tmp_path / "p") as p:
        ingest(p, "canonical", [_file(tmp_path)])
        before = store_state(p)
        crimes = tmp_path / "crimes.csv"
        crimes.write_text(CRIMES + "C1,2013-01-01 10:00:00,2013-01-01 11:00:00,8N,recorded,,\n"
                          "C2,2099-01-01 10:00:00,2099-01-01 11:00:00,8N,recorded,,\n")
        with pytest.raises(KeyboardInterrupt):
            ingest(p, "canonical", [crimes], progress=Failing())
        assert store_state(p) == before


def test_multiline_fields_where_the_profile_allows_them(tmp_path):
    """With ``multiline_fields: true`` a quoted narrative may hold line breaks; a quote that
    never closes still costs its own line only, and later lines keep their numbers."""
    prof = tmp_path / "narratives.yaml"
    prof.write_text("name: narratives\ncanonical: true\nmultiline_fields: true\n")
    f = tmp_path / "incidents.csv"
    f.write_text('incident_id,reported_at,narrative\n'
                 'I1,2013-01-01 10:00:00,"Caller says:\nhe ran off, ""fast"""\n'
                 'I2,2013-01-01 11:00:00,"never closed\n'
                 'I3,2013-01-01 12:00:00,plain\n'
                 'I4,2013-01-01 13:00:00,plain,extra\n')
    with Project.init(tmp_path / "p") as p:
        r = ingest(p, prof, [f])
        assert (r.files[0].read, r.files[0].loaded, r.files[0].quarantined) == (4, 2, 2)
        inc = p.engine.to_pandas(p.engine.table("incidents")).set_index("incident_id")
        assert inc.narrative["I1"] == 'Caller says:\nhe ran off, "fast"'
        q = {x["line"]: x["reason"] for x in quarantined_rows(p)}
        assert q[4].startswith("unterminated quote") and q[6].startswith("ragged row")


# -- plausible dates follow the audit period -----------------------------------------------------

PERIOD = {"audit_period_start": "2013-04-01", "audit_period_end": "2013-09-30"}


def _crimes_on(tmp_path, days: list[str]) -> Path:
    f = tmp_path / "crimes.csv"
    f.write_text(CRIMES + "".join(f"C{i},{d} 10:00:00,{d} 11:00:00,8N,recorded,51.5,-0.1\n"
                                  for i, d in enumerate(days, start=1)))
    return f


def test_plausible_dates_default_to_a_window_around_the_audit_period(tmp_path):
    """An audit of April-September 2013: a date eleven years before its start or two years
    after its end is a typing error there (though plausible in another audit), quarantined
    with a reason that names the period and the settings to change."""
    f = _crimes_on(tmp_path, ["2013-05-01", "2004-06-01", "2002-06-01", "2014-09-01",
                              "2015-11-01"])
    with Project.init(tmp_path / "p", **PERIOD) as p:
        r = ingest(p, "canonical", [f])
        assert (r.files[0].read, r.files[0].loaded, r.files[0].quarantined) == (5, 3, 2)
        q = {x["line"]: x["reason"] for x in quarantined_rows(p)}
        assert sorted(q) == [4, 6]
        for reason in q.values():
            assert reason.startswith("implausible date") and "2003-04-01 to 2014-10-01" in reason
            assert "audit period 2013-04-01 to 2013-09-30" in reason
            assert "plausible_years_before" in reason and "plausible_days_after" in reason
    # Without a period the wide default stands: all five load.
    with Project.init(tmp_path / "q") as p:
        assert ingest(p, "canonical", [f]).files[0].loaded == 5


def test_the_window_around_the_audit_period_is_configurable_and_dates_given_win(tmp_path):
    f = _crimes_on(tmp_path, ["2013-05-01", "2002-06-01", "2015-11-01"])
    with Project.init(tmp_path / "p", plausible_years_before=20, plausible_days_after=30,
                      **PERIOD) as p:
        r = ingest(p, "canonical", [f])
        assert (r.files[0].loaded, r.files[0].quarantined) == (2, 1)
        (q,) = quarantined_rows(p)
        assert q["line"] == 4 and "1993-04-01 to 2013-10-30" in q["reason"]
    with Project.init(tmp_path / "q", earliest_date="2000-01-01", latest_date="2020-01-01",
                      **PERIOD) as p:
        assert ingest(p, "canonical", [f]).files[0].loaded == 3


# -- the Python API refuses what the CLI refuses, in the same line -------------------------------

def _bad_input(tmp_path, case: str) -> Path:
    if case == "directory":
        d = tmp_path / "exports"
        d.mkdir()
        return d
    f = tmp_path / "incidents.csv"
    text = HEADER + "\n" + row(1) + "\n"
    if case == "utf16-bom":
        f.write_bytes(text.encode("utf-16"))
    elif case == "utf16-no-bom":
        f.write_bytes(text.encode("utf-16-le"))
    else:
        f.write_text(",".join(f"c{i}" for i in range(50_000)) + "\n" + "1," * 49_999 + "1\n")
    return f


@pytest.mark.parametrize("case,said", [
    ("directory", "is a directory, not a data file"), ("utf16-bom", "UTF-16 text"),
    ("utf16-no-bom", "UTF-16 text"), ("columns", "50,000 columns")])
def test_the_python_ingest_refuses_a_bad_file_in_one_line_and_loads_nothing(tmp_path, case,
                                                                            said):
    import crimeaudit

    bad = _bad_input(tmp_path, case)
    with Project.init(tmp_path / "p") as p:
        before = store_state(p)
        with pytest.raises(IngestError) as exc:
            crimeaudit.ingest(p, "canonical", [bad])
        msg = str(exc.value)
        assert msg.startswith(f"{bad}: ") and said in msg and "\n" not in msg
        assert "binary" not in msg and "no such file" not in msg
        assert store_state(p) == before


# -- a killed ingest's leftovers go at the next command of any kind ------------------------------

def test_opening_the_project_removes_a_killed_ingests_clear_copy(tmp_path):
    d = tmp_path / "p"
    Project.init(d).close()
    (d / "ingest-tmp").mkdir()
    (d / "ingest-tmp" / "0123.utf8.csv").write_text("Zebedee Quintrell,12 Quist Road\n")
    with Project.open(d) as p:  # any command, any API call, opens the project first
        assert not (p.path / "ingest-tmp").exists()
    found = [x for x in d.rglob("*") if x.is_file() and b"Zebedee" in x.read_bytes()]
    assert found == []
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("not yours")
    (d / "ingest-tmp").symlink_to(outside, target_is_directory=True)
    Project.open(d).close()
    assert not (d / "ingest-tmp").exists() and (outside / "keep.txt").read_text() == "not yours"
