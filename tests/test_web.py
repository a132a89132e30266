"""The review workbench through HTTP (FastAPI's TestClient): sessions, roles, CSRF, escaping,
decisions through the hash-chained store, blind second review, adjudication, kappa, and the
CLI verbs (users, verify)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import threading
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client; httpx (a dev dependency) works the same.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from crimeaudit.audit import all_decisions, draw_sample, latest_decisions
from crimeaudit.audit.agreement import kappa_by_question, pairs
from crimeaudit.audit.decisions import verify_chain
from crimeaudit.cli import app as cli
from crimeaudit.store import Project
from crimeaudit.web import Workbench
from crimeaudit.web.app import create_app
from crimeaudit.web.passwords import hash_password
from crimeaudit.web.store import open_store
from test_audit import make_force

PASSWORD = "a long test password"
XSS = '<script>alert("x")</script> "><img src=x onerror=alert(1)> and he punched her'
USERS = {"lead": "lead", "ann": "auditor", "bob": "auditor", "vic": "viewer"}


def make_workbench_project(folder: Path, size: int = 10) -> tuple[Path, str, str]:
    """A small force with one drawn sample, screened, with a reclassified crime and a
    narrative full of markup; returns (folder, sample_id, the marked-up record's id)."""
    p = Project.init(folder)
    force = make_force(120)
    for name, table in force.items():
        p.engine.write(name, table)
    sample = draw_sample(p, kind="srs", size=size, seed=5)
    inc = sample.records[sample.records.record_type == "incident"].record_id.tolist()
    hostile = inc[0]
    incidents = force["incidents"].to_pandas()
    incidents.loc[incidents.incident_id == hostile, "narrative"] = XSS
    p.engine.write("incidents", pa.Table.from_pandas(incidents, schema=force["incidents"].schema,
                                                     preserve_index=False))
    ids = incidents.incident_id.tolist()
    p.engine.write("screen_scores", pa.table({
        "incident_id": ids, "p_crime": [0.9] * len(ids), "predicted_offence": ["8N"] * len(ids),
        "rule_hits": ["assault_act"] * len(ids), "model_version": ["test"] * len(ids)}))
    crimes = force["crimes"].to_pandas()
    crime = crimes[crimes.incident_id.isin(inc)].iloc[0]
    p.engine.write("classification_changes", pa.table({
        "crime_id": [crime.crime_id], "changed_at": [pd.Timestamp("2013-03-01 10:00")],
        "from_code": ["8N"], "to_code": [crime.offence_code], "changed_by": ["officer-7"]}))
    sid = sample.sample_id
    p.close()
    store = open_store(folder)
    for name, role in USERS.items():
        # Cheap hashes: the tests log in often; production parameters are tested apart.
        store.add_user(name, role, hash_password(PASSWORD, n=2**10, p=1))
    return folder, sid, hostile


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_workbench_project(tmp_path_factory.mktemp("web") / "force")


@pytest.fixture
def wb(tmp_path, template):
    folder, sid, hostile = template
    shutil.copytree(folder, tmp_path / "force")
    w = Workbench.open(tmp_path / "force")
    w.sid, w.hostile = sid, hostile
    yield w
    w.close()


def client(wb) -> TestClient:
    return TestClient(create_app(wb))


def login(c: TestClient, name: str, password: str = PASSWORD):
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return c.post("/login", data={"username": name, "password": password,
                                  "csrf_token": token, "next": "/"}, follow_redirects=False)


def csrf_of(c: TestClient, url: str = "/") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(url).text).group(1)


def seen_of(html: str) -> str:
    return re.search(r'name="seen" value="(\d+)"', html).group(1)


def decide(c, wb, rid, review="first", seen=None, **answers):
    url = f"/samples/{wb.sid}/records/{rid}"
    page = c.get(f"{url}?review={review}")
    data = {"csrf_token": csrf_of(c), "review": review,
            "seen": seen_of(page.text) if seen is None else str(seen), **answers}
    return c.post(f"{url}/decide", data=data, follow_redirects=False)


def assign_all(wb, second_share=1.0):
    lead = wb.store.user("lead")
    wb.assign_first(lead, wb.sid, ["ann"])
    wb.set_second_review(lead, wb.sid, second_share, ["bob"], seed=1)


NO_CRIME = {"should_record": "no", "cancellation_valid": "yes", "victim_told": "yes"}


def test_only_the_login_page_is_reachable_without_a_session(wb):
    c = client(wb)
    for url in ("/", f"/samples/{wb.sid}", f"/samples/{wb.sid}/records/{wb.hostile}", "/log",
                "/classes?q=assault"):
        r = c.get(url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), url
    r = c.post(f"/samples/{wb.sid}/records/{wb.hostile}/decide",
               data={"should_record": "no"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert c.get("/login").status_code == 200
    assert c.get("/static/htmx.min.js").status_code == 200
    assert len(all_decisions(wb.project)) == 0


def test_login_checks_password_and_its_own_csrf_token_and_is_logged(wb):
    c = client(wb)
    assert login(c, "ann", "wrong password!").status_code == 401
    assert login(c, "nobody").status_code == 401
    r = c.post("/login", data={"username": "ann", "password": PASSWORD, "next": "/"})
    assert r.status_code == 403  # no login token: a third party cannot log a victim in
    r = login(c, "ann")
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert c.get("/").status_code == 200
    events = [(e["event"], e["user"]) for e in wb.store.events()]
    assert ("login", "ann") in events and ("login_failed", "nobody") in events


def test_next_after_login_stays_on_this_site(wb):
    c = client(wb)
    page = c.get("/login?next=//evil.example/x")
    assert 'name="next" value="/"' in page.text


def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(wb):
    assign_all(wb)
    c = client(wb)
    login(c, "ann")
    url = f"/samples/{wb.sid}/records/{wb.hostile}"
    page = c.get(f"{url}?review=first")
    data = {"review": "first", "seen": seen_of(page.text), **NO_CRIME}
    assert c.post(f"{url}/decide", data=data).status_code == 403
    assert c.post(f"{url}/decide", data={**data, "csrf_token": "forged"}).status_code == 403
    assert len(all_decisions(wb.project)) == 0
    # The same form with the session's token goes through; so does HTMX's header.
    r = c.post(f"{url}/decide", data={**data, "csrf_token": csrf_of(c)},
               follow_redirects=False)
    assert r.status_code == 303
    assert len(all_decisions(wb.project)) == 1


def test_markup_in_a_narrative_is_shown_as_text_under_a_strict_csp(wb):
    c = client(wb)
    login(c, "lead")
    r = c.get(f"/samples/{wb.sid}/records/{wb.hostile}?review=current")
    assert r.status_code == 200
    assert "<script>alert" not in r.text and "<img src=x" not in r.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"


def test_the_review_screen_shows_incident_links_history_and_the_screen(wb):
    assign_all(wb)
    c = client(wb)
    login(c, "ann")
    queue = c.get("/").text
    assert wb.hostile in queue and "to review" in queue
    page = c.get(f"/samples/{wb.sid}/records/{wb.hostile}?review=first").text
    assert "P(a crime should have been recorded) = <strong>0.90</strong>" in page
    assert "assault_act" in page and "punched" in page  # the rule and the words it matched
    lead = wb.store.user("lead")
    views = [wb.record(lead, wb.sid, rid, "current")
             for rid in wb.sample(wb.sid).records.record_id]
    assert all(v["facts"]["division"] for v in views)
    reclassified = next(v for v in views if any(cr["changes"] for cr in v["crimes"]))
    page = c.get(f"/samples/{wb.sid}/records/{reclassified['record_id']}?review=first").text
    assert "Classification history: 8N →" in page and "by officer-7" in page
    assert "by reference on the incident" in page and "h after report" in page


def test_a_decision_is_stored_hash_chained_as_the_logged_in_auditor(wb):
    assign_all(wb)
    c = client(wb)
    login(c, "ann")
    r = decide(c, wb, wb.hostile, should_record="yes", recorded="no", correct_class="8n",
               cancellation_valid="yes", victim_told="yes", notes="=cmd|' /C calc'!A0")
    assert r.status_code == 303 and "done=" in r.headers["location"]
    d = all_decisions(wb.project)
    row = d.iloc[-1]
    assert (row.auditor, row.source, row.review, row.correct_class) == ("ann", "workbench",
                                                                         "first", "8N")
    assert verify_chain(wb.project) == (1, None)
    assert any(e["event"] == "decision" and e["detail"]["record_id"] == wb.hostile
               for e in wb.store.events())


def test_a_decision_breaking_the_vocabulary_rules_is_refused_with_the_reason(wb):
    assign_all(wb)
    c = client(wb)
    login(c, "ann")
    r = decide(c, wb, wb.hostile, should_record="yes")
    assert r.status_code == 422
    assert "required when should_record is yes" in r.text
    r = decide(c, wb, wb.hostile, should_record="perhaps")
    assert r.status_code == 422 and "is not allowed" in r.text
    assert len(all_decisions(wb.project)) == 0


def test_a_record_decided_meanwhile_is_not_overwritten(wb):
    assign_all(wb)
    c = client(wb)
    login(c, "ann")
    url = f"/samples/{wb.sid}/records/{wb.hostile}"
    stale = seen_of(c.get(f"{url}?review=first").text)
    assert decide(c, wb, wb.hostile, **NO_CRIME).status_code == 303
    r = decide(c, wb, wb.hostile, seen=stale, should_record="cannot_tell",
               cancellation_valid="no", victim_told="no")
    assert r.status_code == 409
    assert "was decided meanwhile by ann" in r.text
    assert list(all_decisions(wb.project).should_record) == ["no"]
    # With the current state seen, a correction supersedes the earlier decision.
    assert decide(c, wb, wb.hostile, should_record="cannot_tell", cancellation_valid="no",
                  victim_told="no").status_code == 303
    d = all_decisions(wb.project)
    assert list(d.should_record) == ["no", "cannot_tell"] and d.supersedes.iloc[-1] == 1


def test_two_auditors_submitting_at_once_store_exactly_one_decision(wb):
    assign_all(wb)
    ann = wb.store.user("ann")
    results = []

    def submit(notes):
        try:
            results.append(wb.decide(ann, wb.sid, wb.hostile, "first", 0,
                                     {**NO_CRIME, "notes": notes}))
        except Exception as exc:  # noqa: BLE001 - the loser's error is the point
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=submit, args=(f"n{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results)).count("DecisionConflict") == 5
    assert len(all_decisions(wb.project)) == 1
    assert verify_chain(wb.project) == (1, None)


def test_roles_viewer_reads_auditor_reviews_only_their_queue_lead_assigns(wb):
    c = client(wb)
    login(c, "vic")
    url = f"/samples/{wb.sid}/records/{wb.hostile}"
    page = c.get(url)
    assert page.status_code == 200 and 'id="decision"' not in page.text
    assert "viewers do not decide" in page.text
    data = {"csrf_token": csrf_of(c), "review": "first", "seen": "0", **NO_CRIME}
    assert c.post(f"{url}/decide", data=data).status_code == 403
    assert c.post(f"/samples/{wb.sid}/assign",
                  data={"csrf_token": data["csrf_token"], "auditor": "vic"}).status_code == 403
    assert c.get("/log").status_code == 403
    assert len(all_decisions(wb.project)) == 0

    a = client(wb)
    login(a, "ann")
    assert a.get(f"{url}?review=first").status_code == 403  # nothing assigned yet
    assert a.post(f"/samples/{wb.sid}/assign",
                  data={"csrf_token": csrf_of(a), "auditor": "ann"}).status_code == 403
    lead = client(wb)
    login(lead, "lead")
    r = lead.post(f"/samples/{wb.sid}/assign",
                  data={"csrf_token": csrf_of(lead), "auditor": ["ann", "bob"]})
    assert r.status_code == 200 and "10 records assigned" in r.text
    mine = [x.record_id for x in wb.store.assignments(wb.sid, "ann")]
    assert len(mine) == 5
    assert a.get(f"/samples/{wb.sid}/records/{mine[0]}?review=first").status_code == 200
    theirs = [x.record_id for x in wb.store.assignments(wb.sid, "bob")][0]
    assert a.get(f"/samples/{wb.sid}/records/{theirs}?review=first").status_code == 403
    r = lead.post(f"/samples/{wb.sid}/assign",
                  data={"csrf_token": csrf_of(lead), "auditor": ["vic"]})
    assert r.status_code == 400 and "not an active auditor" in r.text


def test_second_review_is_blind_and_disagreements_go_to_adjudication(wb):
    assign_all(wb)
    ann, bob, lead = client(wb), client(wb), client(wb)
    login(ann, "ann")
    login(bob, "bob")
    login(lead, "lead")
    assert decide(ann, wb, wb.hostile, notes="FIRST-SECRET", **NO_CRIME).status_code == 303
    page = bob.get(f"/samples/{wb.sid}/records/{wb.hostile}?review=second")
    assert page.status_code == 200 and "the first review is hidden" in page.text
    assert "FIRST-SECRET" not in page.text and ">ann<" not in page.text
    assert bob.get(f"/samples/{wb.sid}/records/{wb.hostile}?review=first").status_code == 403
    assert bob.get(f"/samples/{wb.sid}/records/{wb.hostile}?review=current").status_code == 403
    assert bob.get(f"/samples/{wb.sid}/disagreements").status_code == 403
    r = decide(bob, wb, wb.hostile, review="second", should_record="yes", recorded="no",
               correct_class="8N", cancellation_valid="yes", victim_told="yes")
    assert r.status_code == 303
    # The first auditor does not see the second decision either.
    first_view = ann.get(f"/samples/{wb.sid}/records/{wb.hostile}?review=first").text
    assert "bob" not in first_view
    listing = lead.get(f"/samples/{wb.sid}/disagreements")
    assert wb.hostile in listing.text and "Adjudicate" in listing.text
    adj = lead.get(f"/samples/{wb.sid}/records/{wb.hostile}?review=adjudication").text
    assert "FIRST-SECRET" in adj and 'class="differs"' in adj
    # An auditor cannot adjudicate.
    assert decide(bob, wb, wb.hostile, review="adjudication", seen=0,
                  **NO_CRIME).status_code == 403
    r = decide(lead, wb, wb.hostile, review="adjudication", should_record="yes",
               recorded="no", correct_class="8N", cancellation_valid="yes", victim_told="yes")
    assert r.status_code == 303
    current = latest_decisions(wb.project, wb.sid).set_index("record_id").loc[wb.hostile]
    assert (current.review, current.auditor, current.should_record) == ("adjudication",
                                                                         "lead", "yes")
    assert "0 open" in lead.get(f"/samples/{wb.sid}/disagreements").text
    assert verify_chain(wb.project) == (3, None)


def test_progress_and_kappa_are_shown_and_a_sample_closes_when_done(wb):
    assign_all(wb, second_share=1.0)
    ann_u, bob_u, lead_u = (wb.store.user(n) for n in ("ann", "bob", "lead"))
    recs = wb.sample(wb.sid).records.record_id.tolist()
    cancelled = wb._cancelled_of(wb.sample(wb.sid))
    def answers(crime: bool, rid: str) -> dict:
        out = {"should_record": "yes" if crime else "no"}
        if crime:
            out.update(recorded="no", correct_class="8N")
        if rid in cancelled:
            out.update(cancellation_valid="yes", victim_told="yes")
        return out

    for i, rid in enumerate(recs):  # the two reviews differ on records 2 and 5
        wb.decide(ann_u, wb.sid, rid, "first", 0, answers(i in (0, 1, 2), rid))
        wb.decide(bob_u, wb.sid, rid, "second", 0, answers(i in (0, 1, 5), rid))
    c = client(wb)
    login(c, "lead")
    page = c.get(f"/samples/{wb.sid}").text
    assert re.search(r'class="first-done">10<', page) and re.search(r'second-done">10<', page)
    assert 'data-auditor="ann"' in page and "10 / 10" in page
    k = wb.agreement(wb.sid).set_index("question").loc["should_record"]
    from sklearn.metrics import cohen_kappa_score

    p = pairs(wb.decisions(wb.sid))
    want = cohen_kappa_score(p.first_should_record, p.second_should_record)
    assert k.n == 10 and k.kappa == pytest.approx(want) and k.lower < k.kappa < k.upper
    assert f"{want:.2f}" in page
    r = c.post(f"/samples/{wb.sid}/close", data={"csrf_token": csrf_of(c)})
    assert r.status_code == 400 and "2 disagreements" in r.text
    for rid in p[p.open].record_id:
        seen = int(wb.decisions(wb.sid).query("record_id == @rid").decision_id.max())
        wb.decide(lead_u, wb.sid, rid, "adjudication", seen, answers(False, rid))
    r = c.post(f"/samples/{wb.sid}/close", data={"csrf_token": csrf_of(c)})
    assert r.status_code == 200 and "is closed" in r.text
    with pytest.raises(Exception, match="closed"):
        wb.decide(ann_u, wb.sid, recs[0], "first", 99, {"should_record": "no"})


def test_kappa_needs_two_answers_and_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    a = ["yes", "no", "yes", "yes", "no", "cannot_tell", "yes", "no"]
    b = ["yes", "no", "no", "yes", "no", "yes", "yes", "yes"]
    k = kappa_by_question(pd.DataFrame({"first_should_record": a, "second_should_record": b}))
    row = k.set_index("question").loc["should_record"]
    assert row.kappa == pytest.approx(cohen_kappa_score(a, b))
    same = kappa_by_question(pd.DataFrame({"first_recorded": ["yes"] * 3,
                                           "second_recorded": ["yes"] * 3}))
    assert "kappa undefined" in same.note.iloc[0] and same.agreement.iloc[0] == 1.0


def test_an_expired_session_goes_back_to_login(wb):
    c = client(wb)
    login(c, "ann")
    assert c.get("/").status_code == 200
    token = c.cookies.get("crimeaudit_session")
    from crimeaudit.web.app import token_hash

    wb.store.extend_session(token_hash(token), dt.datetime.now(dt.UTC) - dt.timedelta(1))
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and "expired=1" in r.headers["location"]
    assert "session expired" in c.get(r.headers["location"]).text


def test_logout_ends_the_session(wb):
    c = client(wb)
    login(c, "ann")
    token = c.cookies.get("crimeaudit_session")
    assert c.post("/logout", data={"csrf_token": csrf_of(c)},
                  follow_redirects=False).status_code == 303
    c.cookies.set("crimeaudit_session", token)
    assert c.get("/", follow_redirects=False).status_code == 303


def test_users_cli_adds_from_stdin_refuses_duplicates_and_weak_passwords(tmp_path):
    Project.init(tmp_path / "p").close()
    run = CliRunner().invoke
    r = run(cli, ["users", "add", str(tmp_path / "p"), "ann", "--role", "auditor",
                  "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    user = open_store(tmp_path / "p").user("ann")
    assert user.role == "auditor" and user.password_hash.startswith("scrypt$32768$8$3$")
    assert PASSWORD not in (tmp_path / "p" / "workbench.sqlite").read_bytes().decode("latin1")
    r = run(cli, ["users", "add", str(tmp_path / "p"), "ann", "--role", "auditor",
                  "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 2 and "already exists" in r.output
    r = run(cli, ["users", "add", str(tmp_path / "p"), "bob", "--role", "auditor",
                  "--password-stdin"], input="short\n")
    assert r.exit_code == 2 and "at least 10 characters" in r.output
    r = run(cli, ["users", "add", str(tmp_path / "p"), "bob", "--role", "boss",
                  "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 2 and "role must be one of" in r.output
    r = run(cli, ["users", "list", str(tmp_path / "p")])
    assert "ann\tauditor\tactive" in r.output
    r = run(cli, ["users", "add", str(tmp_path / "nowhere"), "x", "--role", "viewer",
                  "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 2 and "not a crimeaudit project" in r.output


def test_verify_names_the_first_broken_row(wb, tmp_path):
    assign_all(wb)
    ann = wb.store.user("ann")
    recs = wb.sample(wb.sid).records.record_id.tolist()
    cancelled = wb._cancelled_of(wb.sample(wb.sid))
    for rid in recs[:3]:
        extra = {"cancellation_valid": "yes", "victim_told": "yes"} if rid in cancelled else {}
        wb.decide(ann, wb.sid, rid, "first", 0, {"should_record": "no", **extra})
    folder = wb.project.path
    wb.close()
    run = CliRunner().invoke
    r = run(cli, ["verify", str(folder)])
    assert r.exit_code == 0 and "intact: 3 decisions" in r.output
    with Project.open(folder) as p:
        t = p.engine.to_pandas(p.engine.table("audit_decisions"))
        t.loc[t.decision_id == 2, "should_record"] = "yes"  # an edit behind the tool's back
        p.engine.write("audit_decisions", pa.Table.from_pandas(
            t, schema=p.engine.to_pyarrow(p.engine.table("audit_decisions")).schema,
            preserve_index=False))
    r = run(cli, ["verify", str(folder)])
    assert r.exit_code == 1
    assert "decision_id 2" in r.output and len(r.output.strip().splitlines()) == 1
    assert r.output.startswith("broken: ") and "[" not in r.output  # styled, not raw markup
    r = run(cli, ["verify", str(folder), "--json"])
    assert r.exit_code == 1
    assert json.loads(r.output)["broken_at"] == 2 and not json.loads(r.output)["intact"]
    wb.project = Project.open(folder)  # the fixture closes it
