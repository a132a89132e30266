"""The workbench store's contract, on SQLite and on a real PostgreSQL server started here.

PostgreSQL comes from Debian's ``postgresql`` package: the test runs ``initdb`` and ``pg_ctl``
(as the ``postgres`` user when run as root) in a temporary folder on a free loopback port. In
CI (``CI=true``) a server that cannot be started fails the run; elsewhere those tests skip.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import warnings
from pathlib import Path

import pytest

from crimeaudit.web.store import SQLiteStore, WorkbenchStoreError, open_store

IN_CI = os.environ.get("CI") == "true"


def _unavailable(why: str):
    if IN_CI:
        pytest.fail(f"PostgreSQL is needed in CI and {why}")
    pytest.skip(why)


def _tool(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server; its URL (trust auth on 127.0.0.1 only)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'psycopg[binary]')")
    initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
    if not (initdb and pg_ctl):
        _unavailable("PostgreSQL is not installed (apt-get install -y postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="crimeaudit-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)

    made = run(initdb, "-D", str(data), "-U", "workbench", "--auth=trust", "-E", "UTF8")
    if made.returncode:
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(f"initdb failed: {made.stderr.strip()[-300:]}")
    started = run(pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "-o",
                  f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")
    if started.returncode:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(f"PostgreSQL did not start: {started.stderr.strip()[-200:]} {log[-300:]}")
    try:
        yield f"postgresql://workbench@127.0.0.1:{port}/postgres"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "workbench.sqlite")
    url = request.getfixturevalue("postgres_url")
    s = open_store(tmp_path, url)
    with s._transaction() as cur:  # each test starts empty (the log cannot be deleted from)
        for t in ("workbench_users", "workbench_sessions", "workbench_assignments",
                  "workbench_closed_samples", "workbench_log"):
            cur.execute(f"TRUNCATE {t}")
    return s


def test_accounts(store):
    store.add_user("ann", "auditor", "scrypt$x")
    with pytest.raises(WorkbenchStoreError, match="already exists"):
        store.add_user("ann", "lead", "scrypt$y")
    with pytest.raises(WorkbenchStoreError, match="role must be one of"):
        store.add_user("bob", "boss", "scrypt$y")
    store.set_password("ann", "scrypt$z")
    assert store.user("ann").password_hash == "scrypt$z"
    store.set_active("ann", False)
    assert not store.user("ann").active and store.user("nobody") is None
    with pytest.raises(WorkbenchStoreError, match="no user"):
        store.set_password("nobody", "x")


def test_sessions_expire_and_end_with_a_new_password(store):
    store.add_user("ann", "auditor", "h")
    now = dt.datetime.now(dt.UTC)
    store.create_session("t1", "ann", "c1", now + dt.timedelta(minutes=5))
    s = store.session("t1")
    assert (s.user_name, s.csrf) == ("ann", "c1") and s.expires_at > now
    store.extend_session("t1", now - dt.timedelta(seconds=1))
    assert store.session("t1").expires_at < now
    store.create_session("t2", "ann", "c2", now + dt.timedelta(minutes=5))
    assert store.session("t1") is None  # expired sessions are swept
    store.set_password("ann", "h2")
    assert store.session("t2") is None


def test_assignments_move_and_samples_close(store):
    store.assign("S1", "first", [("I1", "ann"), ("I2", "bob")], by="lead")
    store.assign("S1", "first", [("I2", "ann")], by="lead")
    store.assign("S1", "second", [("I1", "bob")], by="lead")
    mine = [(a.record_id, a.review) for a in store.assignments("S1", "ann")]
    assert mine == [("I1", "first"), ("I2", "first")]
    assert [a.auditor for a in store.assignments("S1") if a.review == "second"] == ["bob"]
    with pytest.raises(WorkbenchStoreError):
        store.assign("S1", "adjudication", [("I1", "lead")], by="lead")
    assert store.closed("S1") is None
    store.close_sample("S1", "lead")
    store.close_sample("S1", "other")  # closing twice keeps the first
    assert store.closed("S1")[0] == "lead"


def test_the_log_is_append_only(store):
    first = store.log("ann", "login", client="127.0.0.1")
    second = store.log(None, "user_added", name="bob")
    assert second > first
    events = store.events()
    assert [e["event"] for e in events] == ["user_added", "login"]
    assert events[1]["detail"] == {"client": "127.0.0.1"}
    for sql in ("UPDATE workbench_log SET user_name = 'x'", "DELETE FROM workbench_log"):
        with pytest.raises(Exception, match="append-only"), store._transaction() as cur:
            cur.execute(sql)
    assert len(store.events()) == 2


def test_a_bad_url_is_one_line_without_the_password(tmp_path):
    with pytest.raises(WorkbenchStoreError, match="must be a postgresql://"):
        open_store(tmp_path, "mysql://x")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    with pytest.raises(WorkbenchStoreError, match="cannot reach PostgreSQL") as err:
        open_store(tmp_path, f"postgresql://ann:s3cret@127.0.0.1:{port}/audit")
    assert "s3cret" not in str(err.value) and "ann:***@" in str(err.value)


def test_the_workbench_runs_on_postgresql(postgres_url, tmp_path):
    """Login, a decision and the log, with accounts and log in PostgreSQL."""
    from crimeaudit.audit.decisions import verify_chain
    from crimeaudit.web import Workbench
    from crimeaudit.web.app import create_app
    from crimeaudit.web.passwords import hash_password
    from test_web import PASSWORD, make_workbench_project

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    folder, sid, hostile = make_workbench_project(tmp_path / "force", size=6)
    wb = Workbench.open(folder, db=postgres_url)
    try:
        for name in ("pg-lead", "pg-ann"):
            if wb.store.user(name) is None:
                wb.store.add_user(name, "lead" if name == "pg-lead" else "auditor",
                                  hash_password(PASSWORD, n=2**10, p=1))
        wb.assign_first(wb.store.user("pg-lead"), sid, ["pg-ann"])
        c = TestClient(create_app(wb))
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
        assert c.post("/login", data={"username": "pg-ann", "password": PASSWORD,
                                      "csrf_token": token}).status_code == 200
        page = c.get(f"/samples/{sid}/records/{hostile}?review=first").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = c.post(f"/samples/{sid}/records/{hostile}/decide", follow_redirects=False, data={
            "csrf_token": csrf, "review": "first", "seen": "0", "should_record": "no",
            "cancellation_valid": "yes", "victim_told": "yes"})
        assert r.status_code == 303
        assert verify_chain(wb.project) == (1, None)
        events = [(e["event"], e["user"]) for e in wb.store.events()]
        assert ("decision", "pg-ann") in events and ("login", "pg-ann") in events
    finally:
        wb.close()
