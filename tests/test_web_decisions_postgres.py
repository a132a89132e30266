"""A team's decisions in PostgreSQL: ``serve --db`` moves them there once, the workbench and the
CLI write there, and every reader (the estimate, verify) reads the same rows through
``latest_decisions``, on a real PostgreSQL server this module starts (as test_web_store does).
"""

from __future__ import annotations

import shutil
import threading
import uuid

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from crimeaudit.audit import all_decisions, latest_decisions
from crimeaudit.audit.decisions import append_decisions, verify_chain
from crimeaudit.audit.decisions_postgres import DecisionsDatabaseError
from crimeaudit.cli import app as cli
from crimeaudit.store import Project
from crimeaudit.web import Workbench
from crimeaudit.web.passwords import hash_password
from test_web import PASSWORD, USERS, assign_all, make_workbench_project
from test_web_store import postgres_url  # noqa: F401  (the server fixture)

NO = {"should_record": "no", "cancellation_valid": "yes", "victim_told": "yes"}


@pytest.fixture
def database(postgres_url):  # noqa: F811
    """A fresh, empty database on the test server (one project per database)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_workbench_project(tmp_path_factory.mktemp("pgdec") / "force")


@pytest.fixture
def folder(tmp_path, template):
    src, sid, _ = template
    shutil.copytree(src, tmp_path / "force")
    return tmp_path / "force", sid


def _team(path, db, sid):
    """The workbench on the team database, with the test's accounts there."""
    wb = Workbench.open(path, db=db)
    for name, role in USERS.items():
        if wb.store.user(name) is None:
            wb.store.add_user(name, role, hash_password(PASSWORD, n=2**10, p=1))
    wb.sid = sid
    return wb


def _decide(wb, user, rids, answers=NO):
    for rid in rids:
        wb.decide(wb.store.user(user), wb.sid, rid, "first", 0, answers)


def test_serve_moves_the_decisions_and_every_reader_sees_the_same_ones(folder, database):
    path, sid = folder
    wb = Workbench.open(path)  # first on the project store, as a force starts
    wb.sid = sid
    assign_all(wb)
    recs = wb.sample(sid).records.record_id.tolist()
    _decide(wb, "ann", recs[:3])
    before = latest_decisions(wb.project, sid)
    wb.close()

    wb = _team(path, database.replace("workbench@", "workbench:pw@"), sid)
    try:
        settings = yaml.safe_load((path / "project.yaml").read_text())
        assert settings["decisions_db"] == database  # recorded, and without the password
        assert "pw" not in (path / "project.yaml").read_text()
        moved = latest_decisions(wb.project, sid)
        pd.testing.assert_frame_equal(moved, before, check_dtype=False)
        assign_all(wb)
        _decide(wb, "ann", recs[3:5])
    finally:
        wb.close()

    import psycopg

    with psycopg.connect(database) as con:
        assert con.execute("SELECT count(*) FROM audit_decisions").fetchone()[0] == 5
    with Project.open(path) as p:  # a later command, without --db: the same decisions
        assert p.engine.count("audit_decisions") == 3  # the store's table froze at the move
        current = latest_decisions(p, sid)
        assert sorted(current.record_id) == sorted(recs[:5])
        assert verify_chain(p) == (5, None)
    r = CliRunner().invoke(cli, ["verify", str(path)])
    assert r.exit_code == 0 and "intact: 5 decisions" in r.output and database in r.output


def test_decisions_in_postgresql_refuse_edits_and_verify_names_a_forged_row(folder, database):
    import psycopg

    path, sid = folder
    wb = _team(path, database, sid)
    assign_all(wb)
    _decide(wb, "ann", wb.sample(sid).records.record_id.tolist()[:3])
    wb.close()
    with psycopg.connect(database) as con:
        for sql in ("UPDATE audit_decisions SET should_record = 'yes'",
                    "DELETE FROM audit_decisions WHERE decision_id = 2",
                    "TRUNCATE audit_decisions"):
            with pytest.raises(psycopg.Error, match="append-only"):
                con.execute(sql)
            con.rollback()
        # An administrator who bypasses the triggers still cannot hide an edit.
        con.execute("ALTER TABLE audit_decisions DISABLE TRIGGER USER")
        con.execute("UPDATE audit_decisions SET should_record = 'yes' WHERE decision_id = 2")
        con.commit()
    r = CliRunner().invoke(cli, ["verify", str(path)])
    assert r.exit_code == 1 and "decision_id 2" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_two_writers_at_once_keep_one_chain_without_lost_or_doubled_rows(folder, database):
    path, sid = folder
    wb = Workbench.open(path, db=database)
    recs = wb.sample(sid).records
    rows = recs[["sample_id", "record_type", "record_id"]].assign(
        should_record="no", recorded=None, correctly_classified=None, correct_class=None,
        within_time_limit=None, cancellation_valid="yes", victim_told="yes", notes=None)
    errors = []

    def write(auditor):
        try:
            for i in range(5):
                append_decisions(wb.project, rows.assign(auditor=auditor), source="test",
                                 batch=f"{auditor}-{i}")
        except Exception as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(a,)) for a in ("ann", "bob", "cy")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        d = all_decisions(wb.project)
        assert len(d) == 3 * 5 * len(rows)
        assert list(d.decision_id) == list(range(1, len(d) + 1))
        assert d.groupby("batch").size().eq(len(rows)).all()
        assert verify_chain(wb.project) == (len(d), None)
    finally:
        wb.close()


def test_another_project_cannot_use_the_same_database(tmp_path, template, database):
    src, _, _ = template
    shutil.copytree(src, tmp_path / "a")
    Workbench.open(tmp_path / "a", db=database).close()
    other = Project.init(tmp_path / "b")
    other.close()
    (tmp_path / "b" / "workbench.sqlite").touch()
    with pytest.raises(DecisionsDatabaseError, match="holds the decisions of project"):
        Workbench.open(tmp_path / "b", db=database)


def test_an_unreachable_decisions_database_is_one_line(folder):
    path, _ = folder
    cfg = path / "project.yaml"
    cfg.write_text(cfg.read_text() + "decisions_db: postgresql://nobody@127.0.0.1:1/x\n")
    r = CliRunner().invoke(cli, ["verify", str(path)])
    assert r.exit_code != 0 and "cannot reach the project's decisions" in r.output
    assert "Traceback" not in r.output
