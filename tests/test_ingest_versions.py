"""Versioned records from refreshed monthly exports (issue #16, item 1).

A simulated force is exported as a registrar gets it: one file of incidents and one of crimes
per month, each crime as it stood at the end of that month, and every later month re-sending
the crimes cancelled or reclassified in it. Loaded in either order, the store ends with the
force's final records, the cancellations with their history, nothing quarantined as a
duplicate or a dangling reference; a load can be undone or replaced, and the project's
reference date picks the versions every stage reads.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import crimeaudit as ca
from crimeaudit.cli import app
from crimeaudit.ingestion import (
    IngestError,
    history,
    ingest,
    ingested_files,
    quarantined_rows,
    unload,
)
from crimeaudit.store.project import Project

MONTHS = ("2013-01", "2013-02", "2013-03", "2013-04")
KEY = "test-key-0123456789"
FIELDS = ["crime_id", "status", "offence_code", "cancellation_reason", "cancelled_at"]


def _month_end(month: str) -> pd.Timestamp:
    return pd.Timestamp(f"{month}-01") + pd.offsets.MonthEnd(0) + pd.Timedelta("23:59:59")


def _as_at(crimes: pd.DataFrame, changes: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """The crimes recorded by ``end`` as the force's system showed them then: not yet
    cancelled if the cancellation came later, in the class before any later change."""
    c = crimes[crimes.recorded_at <= end].copy()
    later = c.cancelled_at > end
    c.loc[later, ["status", "cancellation_reason"]] = ["recorded", None]
    c.loc[later, "cancelled_at"] = pd.NaT
    first_later = (changes[changes.changed_at > end].sort_values("changed_at")
                   .drop_duplicates("crime_id").set_index("crime_id").from_code)
    hit = c.crime_id.isin(first_later.index)
    c.loc[hit, "offence_code"] = c.loc[hit, "crime_id"].map(first_later)
    return c


@pytest.fixture(scope="module")
def force(tmp_path_factory) -> dict:
    """Monthly exports of a simulated force, and its records as they finally stood."""
    root = tmp_path_factory.mktemp("force")
    ca.simulate("kent-2013", seed=16, n_incidents=6000, out_dir=root / "sim", fmt="csv")
    inc = pd.read_csv(root / "sim" / "incidents.csv", parse_dates=["reported_at"])
    crimes = pd.read_csv(root / "sim" / "crimes.csv", dtype={"offence_code": str},
                         parse_dates=["reported_at", "recorded_at", "cancelled_at"])
    changes = pd.read_csv(root / "sim" / "classification_changes.csv",
                          dtype={"from_code": str, "to_code": str}, parse_dates=["changed_at"])
    months = [m for m in MONTHS if (crimes.recorded_at.dt.strftime("%Y-%m") == m).any()]
    crimes = crimes[crimes.recorded_at <= _month_end(months[-1])]
    inc = inc[inc.reported_at <= _month_end(months[-1])]
    out = root / "exports"
    out.mkdir()
    files, resent, again, before = {}, {}, {}, None
    for m in months:
        end = _month_end(m)
        state = _as_at(crimes, changes, end)
        this_month = state.recorded_at.dt.strftime("%Y-%m") == m
        changed = pd.Series(False, index=state.index)
        if before is not None:
            prev = before.set_index("crime_id")
            old = state.crime_id.isin(prev.index) & ~this_month
            cur = state[old].set_index("crime_id")
            diff = ((cur.status != prev.loc[cur.index, "status"])
                    | (cur.offence_code != prev.loc[cur.index, "offence_code"]))
            changed[old] = diff.to_numpy()
        # Like many force extracts, each month also re-sends the month before whole.
        last_month = state.recorded_at.dt.strftime("%Y-%m") == months[months.index(m) - 1] \
            if before is not None else pd.Series(False, index=state.index)
        export = state[this_month | changed | last_month]
        resent[m] = int(changed.sum())
        again[m] = int((last_month & ~changed).sum())
        files[f"crimes-{m}"] = out / f"crimes-{m}.csv"
        export.to_csv(files[f"crimes-{m}"], index=False, date_format="%Y-%m-%d %H:%M:%S")
        files[f"incidents-{m}"] = out / f"incidents-{m}.csv"
        inc[inc.reported_at.dt.strftime("%Y-%m") == m].to_csv(
            files[f"incidents-{m}"], index=False, date_format="%Y-%m-%d %H:%M:%S")
        before = state
    # what the force's system showed at the last export (later changes are in no export)
    return {"files": files, "months": months, "resent": resent, "again": again,
            "final": before,
            "changes": changes, "root": root}


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", KEY)


def _store(project) -> pd.DataFrame:
    c = project.engine.to_pandas(project.engine.table("crimes"))
    return c[FIELDS].sort_values("crime_id").reset_index(drop=True)


def _expected(frame: pd.DataFrame) -> pd.DataFrame:
    e = frame[FIELDS].sort_values("crime_id").reset_index(drop=True)
    return e.astype({"cancelled_at": "datetime64[us]"})


def _load(tmp_path, force, order: list[str], name: str) -> tuple[Project, list]:
    p = Project.init(tmp_path / name)
    reports = [ingest(p, "canonical", [force["files"][k]]) for k in order]
    return p, reports


def test_the_export_really_re_sends_cancelled_and_reclassified_crimes(force):
    # The check below means something only if later months re-send changed crimes.
    later = force["months"][1:]
    assert sum(force["resent"][m] for m in later) >= 10
    final = force["final"]
    assert (final.status == "cancelled").sum() >= 10


@pytest.mark.parametrize("order", ["forwards", "crimes first, newest first"])
def test_monthly_refreshes_load_in_either_order_to_the_final_records(tmp_path, force, order):
    months = force["months"]
    if order == "forwards":
        keys = [k for m in months for k in (f"incidents-{m}", f"crimes-{m}")]
    else:
        keys = [f"crimes-{m}" for m in reversed(months)] + [f"incidents-{m}" for m in months]
    p, reports = _load(tmp_path, force, keys, order.replace(" ", "-").replace(",", ""))
    with p:
        # Nothing is quarantined: no re-sent crime is a "duplicate", no reference "dangling".
        assert quarantined_rows(p) == []
        for r in reports:
            f = r.files[0]
            assert f.read == f.loaded and f.quarantined == 0
            assert f.loaded == sum(f.versions[t][k] for t in f.versions
                                   for k in ("new", "changed", "identical"))
        # The store holds every crime once, in its final state: cancellations arrived.
        pd.testing.assert_frame_equal(_store(p), _expected(force["final"]),
                                      check_dtype=False)
        assert p.engine.count("incidents") == sum(
            len(pd.read_csv(force["files"][k])) for k in keys if k.startswith("incidents"))
        if order == "forwards":
            # Each later month's re-sent crimes are new versions, the rest new records.
            for r, k in zip(reports, keys, strict=True):
                if k.startswith("crimes"):
                    v = r.files[0].versions["crimes"]
                    assert v["changed"] == force["resent"][k[7:]]
                    assert v["identical"] == force["again"][k[7:]]
        else:
            # Crimes loaded before their incidents wait (reported, never quarantined) and all
            # resolve when the incidents arrive.
            crimes_only = reports[len(months) - 1]
            assert crimes_only.dangling > 100
            assert reports[-1].dangling == 0


def test_a_cancelled_crime_keeps_its_history_and_the_audit_sees_the_latest(tmp_path, force):
    months = force["months"]
    keys = [k for m in months for k in (f"incidents-{m}", f"crimes-{m}")]
    p, _ = _load(tmp_path, force, keys, "hist")
    final = force["final"]
    month_of = final.recorded_at.dt.strftime("%Y-%m")
    cancelled_later = final[(final.status == "cancelled") & (month_of == months[0])
                            & (final.cancelled_at > _month_end(months[0]))]
    assert len(cancelled_later)
    crime = cancelled_later.iloc[0]
    with p:
        [h] = history(p, crime.crime_id)
        assert h.table == "crimes" and len(h.versions) >= 2
        first, last = h.versions[0], h.versions[-1]
        assert first.values["status"] == "recorded" and first.files[0].endswith(
            f"crimes-{months[0]}.csv")
        assert last.values["status"] == "cancelled" and last.current
        assert "status" in last.changed and "cancelled_at" in last.changed
        # the sample of cancellations is drawn from the latest versions
        s = ca.draw_sample(p, frame="cancellations", size=5, seed=1,
                           period_start=dt.date(2013, 1, 1),
                           period_end=_month_end(months[-1]).date())
        assert s.frame_size == int((final.status == "cancelled").sum())
    # The CLI shows the same, and the JSON keeps personal fields pseudonymised.
    res = CliRunner().invoke(app, ["history", str(tmp_path / "hist"), crime.crime_id,
                                   "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [v["values"]["status"] for v in data[0]["versions"]][-1] == "cancelled"
    victims = {v["values"]["victim"] for v in data[0]["versions"]} - {None}
    assert victims and all(v.startswith("p:") for v in victims)
    assert crime.victim not in res.output
    res = CliRunner().invoke(app, ["history", str(tmp_path / "hist"), crime.crime_id],
                             terminal_width=80)
    assert res.exit_code == 0 and "cancelled" in res.output and "first seen" in res.output


def test_the_reference_date_picks_the_versions_every_stage_reads(tmp_path, force):
    months = force["months"]
    keys = [k for m in months for k in (f"incidents-{m}", f"crimes-{m}")]
    p, _ = _load(tmp_path, force, keys, "ref")
    p.close()
    cfg = tmp_path / "ref" / "project.yaml"
    cfg.write_text(cfg.read_text() + f"reference_date: '{_month_end(months[0]).date()}'\n")
    end = _month_end(months[0])
    with Project.open(tmp_path / "ref") as p:
        expected = _as_at(force["final"], force["changes"], end)
        pd.testing.assert_frame_equal(_store(p), _expected(expected), check_dtype=False)
        first = pd.read_csv(force["files"][f"incidents-{months[0]}"])
        assert p.engine.count("incidents") == len(first)
        links = ca.link(p)  # links are made between the records as they stood then
        assert links["crimes"] == len(expected)
        assert links["exact"] >= int(expected.incident_id.isin(first.incident_id).sum()) > 0
    cfg.write_text("\n".join(x for x in cfg.read_text().splitlines()
                             if not x.startswith("reference_date")) + "\n")
    with Project.open(tmp_path / "ref") as p:
        pd.testing.assert_frame_equal(_store(p), _expected(force["final"]), check_dtype=False)


def test_identical_re_sends_change_nothing_and_are_counted_as_such(tmp_path, force):
    m = force["months"][0]
    p, _ = _load(tmp_path, force, [f"incidents-{m}", f"crimes-{m}"], "same")
    copy = tmp_path / f"crimes-{m}-again.csv"
    copy.write_bytes(force["files"][f"crimes-{m}"].read_bytes())
    copy.write_text(copy.read_text() + "\n")  # other bytes, the same rows
    with p:
        before = _store(p)
        r = ingest(p, "canonical", [copy])
        f = r.files[0]
        assert f.versions["crimes"] == {"new": 0, "changed": 0, "identical": f.read}
        assert f.quarantined == 0
        pd.testing.assert_frame_equal(_store(p), before)
        [h] = history(p, before.crime_id.iloc[0])
        assert len(h.versions) == 1 and len(h.versions[0].files) == 2


def test_unload_undoes_a_month_and_reingesting_a_changed_file_replaces_it(tmp_path, force):
    months = force["months"]
    keys = [k for m in months[:2] for k in (f"incidents-{m}", f"crimes-{m}")]
    p, _ = _load(tmp_path, force, keys, "undo")
    after_one = _as_at(force["final"], force["changes"], _month_end(months[0]))
    with p:
        full = _store(p)
    res = CliRunner().invoke(app, ["unload", str(tmp_path / "undo"), f"crimes-{months[1]}.csv"])
    assert res.exit_code == 0, res.output
    assert "unloaded crimes-" in res.output
    with Project.open(tmp_path / "undo") as p:
        # the month-2 cancellations are gone again, the month-1 records are back as they were
        pd.testing.assert_frame_equal(_store(p), _expected(after_one), check_dtype=False)
        assert not any(f["file"].endswith(f"crimes-{months[1]}.csv")
                       for f in ingested_files(p))
        # load it again, then replace it with a changed copy at the same path
        path = force["files"][f"crimes-{months[1]}"]
        ingest(p, "canonical", [path])
        pd.testing.assert_frame_equal(_store(p), full)
        changed = tmp_path / path.name
        frame = pd.read_csv(path, dtype={"offence_code": str})
        dropped = frame.crime_id.iloc[-1]
        frame.iloc[:-1].to_csv(changed, index=False)
        ingest(p, "canonical", [changed])
        r = ingest(p, "canonical", [changed])  # the same bytes again: nothing to do
        assert r.files[0].skipped
        last = frame.iloc[-1:].assign(outcome="OC1")  # back, and given an outcome
        changed.write_text(changed.read_text() + last.to_csv(index=False, header=False))
        r = ingest(p, "canonical", [changed])
        assert r.files[0].replaced
        assert r.files[0].versions["crimes"] == {"new": 0, "changed": 1,
                                                 "identical": len(frame) - 1}
        ledger = ingested_files(p)
        assert sum(Path(f["file"]).name == path.name for f in ledger) == 2  # two paths
        store = p.engine.to_pandas(p.engine.table("crimes")).set_index("crime_id")
        assert store.loc[dropped, "outcome"] == "OC1"
        with pytest.raises(IngestError, match="names 2 loads"):
            unload(p, path.name)


def test_unload_refuses_what_it_cannot_undo(tmp_path, force):
    with Project.init(tmp_path / "p") as p:
        ingest(p, "canonical", [force["root"] / "sim" / "classification_changes.csv"])
        with pytest.raises(IngestError, match="keep no file of origin"):
            unload(p, "classification_changes.csv")
        with pytest.raises(IngestError, match="no load of this file"):
            unload(p, "nothing.csv")
    res = CliRunner().invoke(app, ["unload", str(tmp_path / "p"), "nothing.csv"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "no load of this file" in res.output


def test_a_file_with_nothing_to_load_does_not_lose_the_next_ones_rows(tmp_path):
    """DuckDB 1.5.6 drops, without an error, an INSERT of a row group or more (122,880 rows)
    into a table that had an INSERT ... SELECT of no rows earlier in the same transaction: one
    ingest of an all-quarantined file and a large one must still load every row of the large
    one, and keep its versions."""
    bad = tmp_path / "classification_changes-a.csv"
    bad.write_text("crime_id,changed_at,from_code,to_code\nC1,2013-01-01 10:00,ZZ1,ZZ2\n")
    big = tmp_path / "classification_changes-b.csv"
    n = 130_000
    big.write_text("crime_id,changed_at,from_code,to_code\n" + "".join(
        f"C{i},2013-01-01 10:00,8N,105A\n" for i in range(n)))
    crimes = tmp_path / "crimes-b.csv"
    crimes.write_text("crime_id,recorded_at,offence_code,status\n" + "".join(
        f"C{i},2013-01-01 10:00,8N,recorded\n" for i in range(n)))
    bad_crimes = tmp_path / "crimes-a.csv"
    bad_crimes.write_text("crime_id,recorded_at,offence_code,status\nC1,2013-01-01,ZZ1,x\n")
    with Project.init(tmp_path / "p") as p:
        r = ingest(p, "canonical", [bad, big])
        assert [f.loaded for f in r.files] == [0, n]
        assert p.engine.count("classification_changes") == n
        r = ingest(p, "canonical", [bad_crimes, crimes])
        assert [f.loaded for f in r.files] == [0, n]
        assert p.engine.count("crimes") == n
        [h] = history(p, f"C{n - 1}")  # its version was kept: history and unload rest on it
        assert len(h.versions) == 1 and h.versions[0].current


def test_the_cli_says_which_crimes_wait_for_their_incidents_and_takes_an_as_of(tmp_path):
    crimes = tmp_path / "crimes-feb.csv"
    crimes.write_text("crime_id,incident_id,recorded_at,offence_code,status,outcome\n"
                      "C1,I1,2013-01-05 10:00,8N,recorded,OC18\n"
                      "C2,I2,2013-01-06 10:00,49,recorded,\n")
    early = tmp_path / "crimes-jan.csv"  # taken before February's, though its times say later
    early.write_text("crime_id,incident_id,recorded_at,offence_code,status,outcome\n"
                     "C1,I1,2013-01-05 10:00,8N,recorded,\n"
                     "C3,I1,2013-01-20 10:00,49,recorded,\n")
    incidents = tmp_path / "incidents.csv"
    incidents.write_text("incident_id,reported_at\nI1,2013-01-05 09:00\n")
    d = str(tmp_path / "p")
    run = CliRunner().invoke
    assert run(app, ["init", d]).exit_code == 0
    res = run(app, ["ingest", d, str(crimes), "-p", "canonical", "--as-of", "2013-02-28"])
    assert res.exit_code == 0, res.output
    assert "crimes: 2 new" in res.output
    assert "2 crimes point at incidents not loaded (such as I1, I2)" in res.output
    res = run(app, ["ingest", d, str(early), "-p", "canonical", "--as-of", "2013-01-31",
                    "--json"])
    data = json.loads(res.stdout)
    assert data["versions"]["crimes"] == {"new": 1, "changed": 1, "identical": 0}
    assert data["dangling"] == 3
    res = run(app, ["ingest", d, str(incidents), "-p", "canonical"])
    assert "1 crimes point at incidents not loaded (such as I2)" in res.output
    res = run(app, ["status", d])
    assert "1 crimes point at incidents not loaded (such as I2)" in res.output
    # February's export is the later one: C1 keeps its outcome, January's is its first version
    res = run(app, ["history", d, "C1", "--json"])
    versions = json.loads(res.stdout)[0]["versions"]
    assert [v["values"]["outcome"] for v in versions] == [None, "OC18"]
    assert versions[-1]["current"] and versions[-1]["changed"] == ["outcome"]
    res = run(app, ["ingest", d, str(early), "-p", "canonical", "--as-of", "31/01/2013"])
    assert res.exit_code != 0 and "--as-of '31/01/2013'" in res.output
    assert "Traceback" not in res.output


def test_records_written_before_versioning_are_adopted_as_their_first_version():
    """A store whose incidents were written directly (an earlier version of crimeaudit, or a
    fixture) keeps those rows: the first versioned load adopts each as a version seen before any
    export, so a re-send is 'identical' or 'changed' against it, never a silent new record."""
    import datetime as dt

    from crimeaudit.engine import duckdb_versions as v
    from crimeaudit.engine.duckdb import DuckDBEngine
    from crimeaudit.model.schema import TABLES

    eng = DuckDBEngine.connect()
    eng.create_empty("incidents", TABLES["incidents"].arrow_schema())
    eng.rows("INSERT INTO incidents (incident_id, reported_at, call_type, source) VALUES "
             "('a', TIMESTAMP '2020-01-01', 'X', 'old'), ('b', TIMESTAMP '2020-01-02', 'Y', 'old')")
    rv = eng.record_versions()
    rv.ensure_tables()

    def send(rows, sha, as_of):
        name = v.stage(eng._con, "incidents")
        eng.rows(f"INSERT INTO {name} (incident_id, reported_at, call_type, source) VALUES "
                 + ", ".join(f"('{i}', TIMESTAMP '{t}', '{c}', '{sha}')" for i, t, c in rows))
        return rv.apply("incidents", sha, "p", as_of, rv.next_load_seq(), None)

    got = send([("a", "2020-01-01", "X"), ("b", "2020-01-02", "Z"), ("c", "2020-01-03", "W")],
               "f1", dt.datetime(2020, 2, 1))
    assert got == {"new": 1, "changed": 1, "identical": 1}
    adopted = eng.rows("SELECT record_id FROM record_sightings WHERE load_seq = 0 "
                       "ORDER BY record_id")
    assert adopted == [("a",), ("b",)]
    assert eng.rows("SELECT count(*) FROM incident_versions") == [(4,)]
    assert send([("a", "2020-01-01", "Q")], "f2", dt.datetime(2020, 3, 1)) == {
        "new": 0, "changed": 1, "identical": 0}
    assert eng.rows("SELECT incident_id, call_type FROM incidents ORDER BY 1") == [
        ("a", "Q"), ("b", "Z"), ("c", "W")]
