"""The review workbench in real headless Chromium: a lead and two auditors take a sample
through first review, blind second review and adjudication, with the keyboard, offline.

Needs Debian's chromium and the ``playwright`` package (never ``playwright install``: we drive
the system browser). The server runs in this process on 127.0.0.1 and a free port, so the test
can read the store it writes.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

# CI sets CRIMEAUDIT_REQUIRE_BROWSER=1: there a missing browser fails instead of skipping.
_REQUIRED = os.environ.get("CRIMEAUDIT_REQUIRE_BROWSER") == "1"
try:
    from playwright import sync_api
except ImportError:
    if _REQUIRED:
        raise
    pytest.skip("playwright not installed (pip install playwright)", allow_module_level=True)
if not Path(CHROMIUM).exists():
    if _REQUIRED:
        raise RuntimeError(f"CRIMEAUDIT_REQUIRE_BROWSER=1 but no chromium at {CHROMIUM}")
    pytest.skip("chromium not installed (apt-get install -y chromium)", allow_module_level=True)

import uvicorn  # noqa: E402

from crimeaudit.web import Workbench  # noqa: E402
from crimeaudit.web.app import create_app, token_hash  # noqa: E402
from test_web import PASSWORD, XSS, make_workbench_project  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder, sid, hostile = make_workbench_project(tmp_path_factory.mktemp("wb") / "force")
    wb = Workbench.open(folder)
    wb.sid, wb.hostile = sid, hostile
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(wb), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the workbench did not start"
        time.sleep(0.05)
    yield wb, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    wb.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Person:
    """One user's browser context, with every request outside the workbench refused."""

    def __init__(self, browser, base: str, name: str):
        self.base, self.name = base, name
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.outside: list[str] = []
        self.dialogs: list[str] = []

        def route(r):
            if r.request.url.startswith(base):
                r.continue_()
            else:
                self.outside.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        # A busy 2-core CI machine can take seconds per request: wait long, fail clearly.
        self.context.set_default_timeout(90_000)
        self.page = self.context.new_page()
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(base + "/")
        assert "/login" in self.page.url
        self.page.fill("input[name=username]", name)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.keyboard.press("Enter")
        self.page.wait_for_url(base + "/")
        assert name in self.page.locator("#whoami").inner_text()

    def answer_with_keys(self, *keys: str) -> None:
        """Answer the focused question and the ones after it, one key each, as a person would."""
        for key in keys:
            self.page.keyboard.press(key)

    def focused(self, expected: str) -> str:
        """The focused field's name, once it is ``expected`` or after 5 s: the browser applies
        ``autofocus`` and the page's own focus moves after load, so a loaded machine may need a
        moment (the assertion on the answer stays exact). Polled from here with ``evaluate``:
        ``wait_for_function`` compiles its predicate in the page, which the workbench's
        Content-Security-Policy (no unsafe-eval) refuses."""
        js = "document.activeElement && (document.activeElement.name || document.activeElement.id)"
        deadline = time.monotonic() + 5
        while (name := self.page.evaluate(js)) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return name


def test_lead_and_two_auditors_review_a_sample_in_chromium(served, browser, tmp_path):
    wb, base = served
    sid, hostile = wb.sid, wb.hostile

    # The lead shares the sample for first review and draws half of it for second review.
    lead = Person(browser, base, "lead")
    lead.page.click(f"a[href='/samples/{sid}']")
    lead.page.check("#assign-form input[value=ann]")
    lead.page.click("#assign-form button")
    assert "10 records assigned for first review to ann" in lead.page.inner_text("#message")
    lead.page.fill("#second-form input[name=share]", "50")
    lead.page.check("#second-form input[value=bob]")
    lead.page.click("#second-form button")
    assert "5 records assigned for blind second review" in lead.page.inner_text("#message")
    second = {a.record_id for a in wb.store.assignments(sid) if a.review == "second"}
    if hostile not in second:  # the marked-up record goes through every step
        wb.store.assign(sid, "second", [(hostile, "bob")], by="lead")

    # The first auditor reviews the marked-up record with the keyboard only.
    ann = Person(browser, base, "ann")
    ann.page.click(f"#queue a[href*='/records/{hostile}?review=first']")
    assert XSS in ann.page.inner_text("#narrative")  # shown as text, not run
    assert ann.page.locator("#narrative img, #narrative script").count() == 0
    assert ann.focused("should_record") == "should_record"
    ann.answer_with_keys("n")  # should a crime have been recorded? no
    cancelled = ann.page.locator("fieldset[data-question=cancellation_valid]").count() > 0
    if cancelled:
        assert ann.focused("cancellation_valid") == "cancellation_valid"
        ann.answer_with_keys("y", "y")
    assert ann.page.locator("fieldset[data-question=recorded]").is_hidden()
    ann.page.keyboard.press("Control+Enter")
    ann.page.wait_for_url(f"**done={hostile}*")
    assert f"Your decision on {hostile} was stored" in ann.page.inner_text("#message")
    first = wb.decisions(sid).query("record_id == @hostile").iloc[-1]
    assert (first.auditor, first.review, first.should_record, first.source) == (
        "ann", "first", "no", "workbench")

    # The second auditor, blind, thinks a crime should have been recorded as 8N.
    bob = Person(browser, base, "bob")
    bob.page.click(f"#queue a[href*='/records/{hostile}?review=second']")
    assert bob.page.locator("#blind-note").is_visible()
    assert not re.search(r"\bann\b", bob.page.inner_text("main"))  # who reviewed first
    assert bob.page.locator("#decision-history").count() == 0
    bob.answer_with_keys("y", "n")  # should record: yes; recorded: no
    assert bob.focused("correct_class") == "correct_class"
    bob.page.keyboard.type("injury")  # the class search (HTMX, served by the workbench)
    pick = bob.page.locator(".pick-class[data-code='8N']")
    pick.wait_for()
    pick.focus()
    bob.page.keyboard.press("Enter")
    assert bob.page.input_value("#correct_class") == "8N"
    if cancelled:
        assert bob.focused("cancellation_valid") == "cancellation_valid"
        bob.answer_with_keys("y", "y")
    bob.page.keyboard.press("Control+Enter")
    bob.page.wait_for_url(f"**done={hostile}*")
    second_row = wb.decisions(sid).query("record_id == @hostile and review == 'second'")
    assert list(second_row.correct_class) == ["8N"] and list(second_row.auditor) == ["bob"]

    # The lead sees the disagreement, both reviews side by side, and adjudicates.
    lead.page.goto(f"{base}/samples/{sid}/disagreements")
    row = lead.page.locator(f"#disagreements tr[data-record='{hostile}']")
    assert "Should a crime have been recorded?: no / yes" in row.inner_text()
    row.locator("a").click()
    assert lead.page.locator("#compare tr.differs").count() >= 1
    # The keyboard path is tested above; here the lead clicks (Playwright waits for each
    # question to appear, so a slow machine cannot race the form's own script).
    lead.page.check("input[name=should_record][value=yes]")
    lead.page.check("input[name=recorded][value=no]")
    lead.page.fill("#correct_class", "8N")
    if cancelled:
        lead.page.check("input[name=cancellation_valid][value=yes]")
        lead.page.check("input[name=victim_told][value=yes]")
    lead.page.click("#store")
    lead.page.wait_for_url("**/disagreements")
    assert "adjudicated" in lead.page.locator(
        f"#disagreements tr[data-record='{hostile}']").inner_text()

    # Progress and agreement on the sample page.
    lead.page.goto(f"{base}/samples/{sid}")
    assert lead.page.inner_text(".first-done") == "1"
    assert lead.page.inner_text(".second-done") == "1"
    assert "1 / 10" in lead.page.inner_text("tr[data-auditor=ann]")
    assert lead.page.locator("#kappa tr[data-question=should_record]").is_visible()
    lead.page.screenshot(path=str(tmp_path / "sample.png"), full_page=True)

    # A viewer reads but has no decision form.
    vic = Person(browser, base, "vic")
    vic.page.goto(f"{base}/samples/{sid}/records/{hostile}")
    assert vic.page.locator("#read-only").is_visible()
    assert vic.page.locator("#decision").count() == 0

    # An expired session goes back to the login page, which says why.
    token = next(c["value"] for c in ann.context.cookies() if c["name"] == "crimeaudit_session")
    wb.store.extend_session(token_hash(token), dt.datetime.now(dt.UTC) - dt.timedelta(1))
    ann.page.goto(f"{base}/")
    assert "/login" in ann.page.url
    assert "session expired" in ann.page.inner_text("#message")

    assert wb.verify() == (3, None)
    for person in (lead, ann, bob, vic):
        assert person.outside == [] and person.dialogs == []
        person.context.close()
