"""Ingest on any engine (issue #15): the scratch loader and versions give the DuckDB ingest's
store, row for row.

A test-only engine, :class:`ScratchStore`, is a DuckDB store whose ingest goes through
:mod:`crimeaudit.engine.scratch_ingest` (as the PySpark engine's does): each file's work in a
private scratch DuckDB, merged back through the generic Engine API only. The same commands are
run on it and on a native DuckDB project, and every table the ingest writes is compared (times
aside; a sighting's -infinity as-of is stored as 0001-01-01 by the scratch), with the reports.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import crimeaudit as ca
import crimeaudit.store.project as project_module
from crimeaudit.engine import duckdb_versions as dv
from crimeaudit.engine.base import Engine
from crimeaudit.engine.duckdb import DuckDBEngine
from crimeaudit.engine.scratch_ingest import (
    NO_TIME,
    ScratchFileLoader,
    ScratchRecordVersions,
)
from crimeaudit.ingestion import history, ingest, unload
from crimeaudit.model.schema import TABLES
from crimeaudit.store.project import Project

KEY = "test-key-0123456789"
FIX = Path(__file__).parent / "fixtures" / "ingest"
SHARED = Path(os.environ.get("CRIMEAUDIT_PUBLIC_DATA", "/work/shared/data"))
#: Every table an ingest writes, with the columns that hold the time of the command.
COMPARED = {"incidents": (), "crimes": (), "classification_changes": (), "counts": (),
            "record_sightings": (), "incident_versions": (), "crime_versions": (),
            "quarantine": ("time",), "ingest_exclusions": ("time",), "ingest_files": ("time",),
            "record_state": ("built_at",)}


class ScratchStore(DuckDBEngine):
    """A DuckDB store ingested as an engine without updates would be: through the scratch
    classes. Its SQL entry points refuse (the scratch classes must not use them), and it notes
    every rewrite of a table (a replace of an existing table)."""

    def file_loader(self, profile, offences, hash_sql):
        return ScratchFileLoader(self, profile, offences, hash_sql, self.record_versions())

    def record_versions(self):
        if getattr(self, "_versions", None) is None:
            self._versions = ScratchRecordVersions(self)
        return self._versions

    def write(self, name, data, mode="replace", schema=None):
        if mode == "replace" and self.has_table(name):
            self.__dict__.setdefault("rewrites", []).append(name)
        elif mode == "append" and isinstance(data, pa.Table):
            assert data.num_rows, f"an empty append to {name}"
        super().write(name, data, mode=mode, schema=schema)

    def rows(self, sql, params=()):
        raise AssertionError(f"SQL on the store: {sql}")

    def insert_rows(self, name, data):
        raise AssertionError(f"insert_rows on the store: {name}")


# (subclassing registered the test engine under "duckdb": the real one stays the default)
Engine._by_name["duckdb"] = DuckDBEngine


@pytest.fixture(autouse=True)
def _scratch_projects(monkeypatch):
    """Projects whose folder name starts with ``scratch`` open on :class:`ScratchStore`."""
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", KEY)
    real = project_module.connect

    def connect(name, path):
        if Path(path).parent.name.startswith("scratch"):
            return ScratchStore.connect(path)
        return real(name, path)

    monkeypatch.setattr(project_module, "connect", connect)


def _normal(name: str, t: pa.Table) -> pa.Table:
    t = t.drop_columns([c for c in COMPARED.get(name, ()) if c in t.column_names])
    if "as_of" in t.column_names:  # -infinity (DuckDB) and NO_TIME (scratch) are one time
        us = t.column("as_of").cast(pa.int64())
        floor = int((NO_TIME - dt.datetime(1970, 1, 1)) / dt.timedelta(microseconds=1))
        us = pc.if_else(pc.less(us, floor), floor, us)
        t = t.set_column(t.column_names.index("as_of"), "as_of", us)
    return t.sort_by([(c, "ascending") for c in t.column_names])


def _tables(engine) -> dict[str, list[dict]]:
    return {name: _normal(name, engine.to_pyarrow(engine.table(name))).to_pylist()
            for name in COMPARED if engine.has_table(name)}


def assert_same_store(a, b) -> None:
    ta, tb = _tables(a.engine), _tables(b.engine)
    assert sorted(ta) == sorted(tb)
    for name in ta:
        assert len(ta[name]) == len(tb[name]), name
        diff = [(x, y) for x, y in zip(ta[name], tb[name], strict=True) if x != y]
        assert not diff, f"{name}: {len(diff)} rows differ, e.g. {diff[0]}"


def _reports(ra, rb) -> None:
    assert ra.to_dict() == rb.to_dict()


class Pair:
    """A native DuckDB project and a scratch one, given the same commands."""

    def __init__(self, root: Path):
        self.root = root
        self.native = Project.init(root / "native")
        self.scratch = Project.init(root / "scratch")
        assert type(self.native.engine) is DuckDBEngine
        assert isinstance(self.scratch.engine, ScratchStore)

    def ingest(self, profile, files, **kw):
        self.scratch.engine.__dict__["rewrites"] = []
        ra = ingest(self.native, profile, files, **kw)
        rb = ingest(self.scratch, profile, files, **kw)
        _reports(ra, rb)
        assert_same_store(self.native, self.scratch)
        return rb

    def unload(self, file):
        self.scratch.engine.__dict__["rewrites"] = []
        ra, rb = unload(self.native, file), unload(self.scratch, file)
        assert ra.to_dict() == rb.to_dict()
        assert_same_store(self.native, self.scratch)
        return rb

    @property
    def rewrites(self) -> list[str]:
        return self.scratch.engine.__dict__.get("rewrites", [])

    def reopen(self, reference_date: str | None) -> None:
        """Set the projects' reference date and open them again (which rebuilds the records)."""
        for name in ("native", "scratch"):
            getattr(self, name).close()
            cfg = self.root / name / "project.yaml"
            lines = [x for x in cfg.read_text().splitlines()
                     if not x.startswith("reference_date")]
            if reference_date:
                lines.append(f"reference_date: '{reference_date}'")
            cfg.write_text("\n".join(lines) + "\n")
            setattr(self, name, Project.open(self.root / name))
        assert_same_store(self.native, self.scratch)

    def same_reading(self, table: str, ids: list[str]) -> None:
        va = self.native.engine.record_versions()
        vb = self.scratch.engine.record_versions()
        ha, hb = va.history(table, ids), vb.history(table, ids)
        assert ha.column_names == hb.column_names and ha.num_rows > 0
        assert _normal("history", ha).to_pylist() == _normal("history", hb).to_pylist()
        assert va.dangling_references() == vb.dangling_references()
        for i in ids[:3]:
            assert va.find_ids(table, i) == vb.find_ids(table, i)
            assert va.find_ids(table, i[-4:]) == vb.find_ids(table, i[-4:])
        assert va.loaded_from("x", "y") == vb.loaded_from("x", "y") == {}
        assert repr(history(self.native, ids[0])) == repr(history(self.scratch, ids[0]))

    def close(self) -> None:
        self.native.close()
        self.scratch.close()


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames), list(r)


def _write(path: Path, header: list[str], rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def force(tmp_path_factory) -> dict[str, Path]:
    """A simulated force's exports: two months of incidents and crimes, the second re-sending
    some crimes unchanged and some cancelled; classification changes, twice over."""
    root = tmp_path_factory.mktemp("force")
    ca.simulate("kent-2013", seed=7, n_incidents=1500, out_dir=root / "sim", fmt="csv")
    ih, inc = _read(root / "sim" / "incidents.csv")
    ch, crimes = _read(root / "sim" / "crimes.csv")
    gh, changes = _read(root / "sim" / "classification_changes.csv")
    inc.sort(key=lambda r: r["reported_at"])
    crimes.sort(key=lambda r: r["recorded_at"])
    cut_i, cut_c = int(len(inc) * 0.5), int(len(crimes) * 0.6)
    first = crimes[:cut_c]
    cancelled = [{**r, "status": "cancelled", "cancellation_reason": "C2",
                  "cancelled_at": "2013-12-30 10:00:00"} for r in first[:40]]
    out = {
        "incidents-a": _write(root / "incidents-a.csv", ih, inc[:cut_i]),
        "incidents-b": _write(root / "incidents-b.csv", ih, inc[cut_i:]),
        "crimes-a": _write(root / "crimes-a.csv", ch, first),
        "crimes-b": _write(root / "crimes-b.csv", ch,
                           crimes[cut_c:] + cancelled + first[40:80]),
        "changes": _write(root / "classification_changes.csv", gh, changes),
        "changes-again": _write(root / "classification_changes-again.csv", gh,
                                changes[:5] + [{**changes[6], "crime_id": "CR-X",
                                                "to_code": "ZZ9"}]),
    }
    recut = [{**r, "offence_code": "9A"} for r in first[80:90]]
    out["crimes-b2"] = (ch, crimes[cut_c:] + cancelled[:20] + first[40:80] + recut)
    return out


def test_a_simulated_force_ingests_versions_unloads_and_rebuilds_as_on_duckdb(tmp_path, force):
    pair = Pair(tmp_path)
    try:
        r = pair.ingest("canonical", [force["incidents-a"], force["crimes-a"]])
        assert pair.rewrites == []  # a first load appends only
        assert r.dangling > 0  # (crimes of the second month's incidents)
        # incidents written straight to the store (before versions were kept) that the next
        # export sends again: adopted as versions as of -infinity (NO_TIME in the scratch's store)
        _, later = _read(force["incidents-b"])
        old = pa.table({"incident_id": [x["incident_id"] for x in later[:20]],
                        "reported_at": [dt.datetime(2013, 1, 1)] * 20,
                        "call_type": ["OLD"] * 10 + [x["call_type"] for x in later[10:20]]})
        for p in (pair.native, pair.scratch):
            p.engine.write("incidents", old, mode="append")
        r = pair.ingest("canonical", [force["incidents-b"], force["crimes-b"]])
        assert r.versions["crimes"]["changed"] == 40 and r.versions["crimes"]["identical"] == 40
        g = pair.scratch.engine.table("record_sightings")
        assert pair.scratch.engine.execute(g.filter(g.as_of == NO_TIME).count()) == 20
        assert r.dangling == 0
        r = pair.ingest("canonical", [force["changes"]])
        r = pair.ingest("canonical", [force["changes-again"]])
        assert r.files[0].quarantined == 6  # five already in the store, one unknown code
        assert "classification_changes" not in pair.rewrites
        # the same path with other content replaces the earlier load
        header, rows = force["crimes-b2"]
        _write(force["crimes-b"], header, rows)
        r = pair.ingest("canonical", [force["crimes-b"]])
        assert r.files[0].replaced and r.versions["crimes"]["changed"] == 30
        ids = [row["crime_id"] for row in rows[-12:]]
        pair.same_reading("crimes", ids)
        pair.unload("crimes-a.csv")
        pair.same_reading("crimes", ids)
        pair.reopen("2013-02-15")
        pair.same_reading("crimes", ids)
        # a load while the reference date is set: records exported after it wait in versions
        pair.ingest("canonical", [force["crimes-a"]])
        pair.reopen(None)
        pair.same_reading("crimes", ids)
    finally:
        pair.close()


def _damaged(src: Path, dest: Path) -> Path:
    """A copy of a street file with a bad latitude, a line that is not a record, and a
    crime whose month is not a date."""
    lines = src.read_text(encoding="utf-8").splitlines()
    cells = next(csv.reader([lines[3]]))
    cells[5] = "fifty-one"
    lines[3] = ",".join(f'"{c}"' if "," in c else c for c in cells)
    lines[5] = lines[5] + ',"unbalanced'
    cells = next(csv.reader([lines[8]]))
    cells[1] = "June"
    lines[8] = ",".join(f'"{c}"' if "," in c else c for c in cells)
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def test_real_public_files_load_quarantine_exclude_and_update_as_on_duckdb(tmp_path):
    city = SHARED / "uk/police-uk-city-of-london"
    later = city / "later-release/2020-05-city-of-london-street.csv"
    earlier = city / "earlier-release/2020-05-city-of-london-street.csv"
    sf = SHARED / "us/san-francisco/sfpd-incident-reports-2018-12.csv"
    pfa = SHARED / "uk/ons-recorded-crime-by-pfa/rec-crime-pfa.csv"
    if not later.exists():
        later, earlier = (FIX / "2019-06-city-of-london-street.csv",) * 2
        sf, pfa = FIX / "sfpd-slice.csv", FIX / "rec-crime-pfa-slice.csv"
    pair = Pair(tmp_path)
    try:
        r = pair.ingest("police-uk-street", [later])
        assert pair.rewrites == []
        r = pair.ingest("police-uk-street", [_damaged(earlier, tmp_path / "damaged.csv")])
        assert r.files[0].quarantined >= 2 and r.versions["crimes"]["identical"] > 0
        r = pair.ingest("police-uk-street", [FIX / "2019-06-city-of-london-street.csv"])
        r = pair.ingest("police-uk-outcomes", [FIX / "2019-06-city-of-london-outcomes.csv"])
        assert (r.files[0].loaded, r.files[0].quarantined) == (3, 1)
        assert set(pair.rewrites) == {"crimes", "crime_versions", "record_state"}
        r = pair.ingest("sf-incidents", [sf])
        assert r.files[0].excluded > 0
        r = pair.ingest("ons-pfa", [pfa])
        assert r.files[0].adjusted and pair.rewrites == ["record_state"]
        r = pair.ingest("ons-pfa", [FIX / "rec-crime-pfa-slice.csv"])
        assert r.files[0].quarantined == r.files[0].read  # every row already in the store
        pair.unload("damaged.csv")
        assert "quarantine" in pair.rewrites
        pair.reopen("2020-05-15")
    finally:
        pair.close()


def test_no_timestamp_versions_round_trip_as_year_one():
    """-infinity (a record adopted from before versions, a file with no timestamp) is stored
    as 0001-01-01 by the scratch versions, read back as -infinity, and ordered the same."""
    native, scratch = DuckDBEngine.connect(), ScratchStore.connect()
    engines = (native, scratch)
    old = pa.table({"incident_id": ["a", "b"],
                    "reported_at": [dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 2)],
                    "call_type": ["X", "Y"], "source": ["old", "old"]})
    for eng in engines:
        eng.create_empty("incidents", TABLES["incidents"].arrow_schema())
        eng.write("incidents", old, mode="append")

    def send(rows, sha, as_of):
        got = []
        for eng in engines:
            rv = eng.record_versions()
            con = rv.scratch.con if isinstance(rv, ScratchRecordVersions) else eng._con
            name = dv.stage(con, "incidents")
            con.execute(f"INSERT INTO {name} (incident_id, reported_at, call_type, source) "
                        "VALUES " + ", ".join(f"('{i}', TIMESTAMP '{t}', '{c}', '{sha}')"
                                              for i, t, c in rows))
            got.append(rv.apply("incidents", sha, "p", as_of, rv.next_load_seq(), None))
        assert got[0] == got[1]
        same()
        return got[0]

    def same():
        for name in ("incidents", "incident_versions", "record_sightings"):
            a, b = (_normal(name, e.to_pyarrow(e.table(name))).to_pylist() for e in engines)
            assert a == b, name

    assert send([("a", "2020-01-01", "X"), ("b", "2020-01-02", "Z"), ("c", "2020-01-03", "W")],
                "f1", None) == {"new": 1, "changed": 1, "identical": 1}
    times = scratch.to_pyarrow(scratch.table("record_sightings")).column("as_of").to_pylist()
    assert times == [NO_TIME] * 5  # two adopted, three from the file: none infinite
    assert send([("a", "2020-01-01", "Q")], "f2", dt.datetime(2020, 3, 1)) == {
        "new": 0, "changed": 1, "identical": 0}
    # (b back as adopted, "Y": a change from f1's "Z", both as of -infinity, in load order)
    assert send([("b", "2020-01-02", "Y")], "f3", None) == {
        "new": 0, "changed": 1, "identical": 0}
    assert scratch.count("record_sightings") == native.count("record_sightings") == 7
    hs = scratch.record_versions().history("incidents", ["a"])
    assert hs.column("as_of").to_pylist() == [NO_TIME, NO_TIME, dt.datetime(2020, 3, 1)]
    for eng in engines:
        assert eng.record_versions().unload("f2", "p", None) == {"incidents": 1}
    same()
    for eng in engines:
        eng.record_versions().record_reference_date(None)
        assert eng.record_versions().sync(dt.date(2019, 12, 31))
    same()
    # the records seen in no-timestamp files count as of any reference date; the rest do not
    assert sorted(scratch.to_pyarrow(scratch.table("incidents")).column("incident_id")
                  .to_pylist()) == ["a", "b", "c"]


def test_a_large_file_after_one_with_nothing_to_load_keeps_every_row(tmp_path):
    """DuckDB 1.5.6 loses an INSERT of 122,880 rows or more after an INSERT of none into the
    same table in one transaction: the scratch's merge never appends an empty table."""
    n = 130_000
    bad = tmp_path / "crimes-a.csv"
    bad.write_text("crime_id,recorded_at,offence_code,status\nC1,2013-01-01,ZZ1,x\n")
    big = tmp_path / "crimes-b.csv"
    big.write_text("crime_id,recorded_at,offence_code,status\n" + "".join(
        f"C{i},2013-01-01 10:00,8N,recorded\n" for i in range(n)))
    pair = Pair(tmp_path)
    try:
        r = pair.ingest("canonical", [bad, big])
        assert [f.loaded for f in r.files] == [0, n] and pair.rewrites == []
        eng = pair.scratch.engine
        assert eng.count("crimes") == eng.count("crime_versions") == n
    finally:
        pair.close()
