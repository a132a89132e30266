"""The workbench's HTTP side: pages, sessions, CSRF, roles. The work itself is in
:mod:`crimeaudit.web.workbench`.

Safe by construction rather than by each route remembering:

* one app-wide dependency (:func:`_guard`) runs before every route: it lets only ``/login``
  through without a session and checks the CSRF token of every request that is not a GET
  (a hidden ``csrf_token`` field, or the ``X-CSRF-Token`` header HTMX sends). The login form has
  its own token (double-submit cookie), so a third party cannot log a victim into its account;
* sessions are random tokens kept server-side (only their SHA-256 is stored), expire after
  ``session_minutes`` without use and after 12 hours in any case, and travel in an HttpOnly,
  SameSite=Strict cookie that is also Secure whenever the request came over HTTPS;
* templates autoescape everything (narratives are text anyone may have typed) and every page
  is sent with a Content-Security-Policy that allows scripts and styles from the workbench
  only, so even a missed escape could not run a script;
* JavaScript (HTMX, vendored in ``static/``, and ``workbench.js``) only enhances: every form
  works as a plain HTML form.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from crimeaudit import __version__
from crimeaudit.audit.decisions import DECISION_COLUMNS, VOCABULARY
from crimeaudit.web.passwords import dummy_hash, verify_password
from crimeaudit.web.store import User, WorkbenchStoreError, utcnow
from crimeaudit.web.workbench import (
    DecisionConflict,
    DecisionRefused,
    Forbidden,
    NotFound,
    Workbench,
    WorkbenchError,
)

HERE = Path(__file__).parent
SESSION_COOKIE = "crimeaudit_session"
LOGIN_COOKIE = "crimeaudit_login"
MAX_SESSION = dt.timedelta(hours=12)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
QUESTIONS = {
    "should_record": "Should a crime have been recorded?",
    "recorded": "Was a crime recorded?",
    "correctly_classified": "Correctly classified?",
    "correct_class": "Correct class",
    "within_time_limit": "Recorded within the time limit?",
    "cancellation_valid": "Was the cancellation correct?",
    "victim_told": "Was the victim told of the cancellation?",
}
LABELS = {"yes": "Yes", "no": "No", "cannot_tell": "Cannot tell"}


class LoginRequired(Exception):
    """No valid session: the request goes to the login page (``expired`` says why)."""

    def __init__(self, expired: bool = False):
        self.expired = expired


class CsrfRefused(Exception):
    """A state-changing request without the right CSRF token."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def safe_next(target: str | None) -> str:
    """Where to go after login: a path of this site only (no open redirect).

    >>> safe_next("/samples/S1"), safe_next("//evil.example"), safe_next("https://x")
    ('/samples/S1', '/', '/')
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def create_app(workbench: Workbench, secure_cookies: bool = False) -> FastAPI:
    """The workbench as an ASGI app over an open :class:`Workbench`.

    ``secure_cookies`` forces the Secure flag even on plain HTTP (for a TLS proxy that does not
    send X-Forwarded-Proto); over HTTPS it is always set.
    """
    wb = workbench
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals.update(version=__version__, questions=QUESTIONS, labels=LABELS,
                       vocabulary=VOCABULARY, decision_columns=DECISION_COLUMNS)
    lifetime = dt.timedelta(minutes=wb.session_minutes)

    async def _guard(request: Request) -> None:
        if request.url.path == "/login":
            if request.method not in SAFE_METHODS:
                form = await request.form()
                cookie = request.cookies.get(LOGIN_COOKIE, "")
                if not cookie or not hmac.compare_digest(str(form.get("csrf_token", "")),
                                                         cookie):
                    raise CsrfRefused()
            return
        user, session = await run_in_threadpool(_authenticate, request)
        request.state.user, request.state.session = user, session
        if request.method not in SAFE_METHODS:
            sent = request.headers.get("x-csrf-token")
            if sent is None:
                sent = str((await request.form()).get("csrf_token", ""))
            if not hmac.compare_digest(sent, session.csrf):
                raise CsrfRefused()

    def _authenticate(request: Request):
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise LoginRequired()
        session = wb.store.session(token_hash(token))
        if session is None:
            raise LoginRequired(expired=True)
        now = utcnow()
        if session.expires_at <= now or now - session.created_at > MAX_SESSION:
            wb.store.end_session(session.token_hash)
            raise LoginRequired(expired=True)
        user = wb.store.user(session.user_name)
        if user is None or not user.active:
            wb.store.end_session(session.token_hash)
            raise LoginRequired()
        # Sliding expiry, written at most once a minute so reads stay reads.
        if (now + lifetime) - session.expires_at > dt.timedelta(minutes=1):
            wb.store.extend_session(session.token_hash, now + lifetime)
        return user, session

    app = FastAPI(title="crimeaudit workbench", version=__version__, docs_url=None,
                  redoc_url=None, openapi_url=None, dependencies=[Depends(_guard)])
    app.state.workbench = wb
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    def _secure(request: Request) -> bool:
        return secure_cookies or request.url.scheme == "https"

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        session = getattr(request.state, "session", None)
        ctx.setdefault("user", getattr(request.state, "user", None))
        ctx.setdefault("csrf", session.csrf if session else "")
        ctx.setdefault("message", "")
        html = env.get_template(name).render(request=request, **ctx)
        return HTMLResponse(html, status_code=status)

    def me(request: Request) -> User:
        return request.state.user

    # -- errors -------------------------------------------------------------------------------
    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = "/login?" + ("expired=1&" if exc.expired else "")
        url += "next=" + quote(target if request.method in SAFE_METHODS else "/", safe="")
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": url})
        response = RedirectResponse(url, status_code=303)
        if exc.expired:
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused):
        return render(request, "error.html", 403, title="Request refused",
                      message="This form was missing its security token or it was stale "
                              "(CSRF protection). Go back, reload the page and try again.")

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        return render(request, "error.html", 403, title="Not allowed", message=str(exc))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound):
        return render(request, "error.html", 404, title="Not found", message=str(exc))

    @app.exception_handler(WorkbenchError)
    async def _refused(request: Request, exc: WorkbenchError):
        return render(request, "error.html", 400, title="Refused", message=str(exc))

    # -- login --------------------------------------------------------------------------------
    def _login_page(request: Request, status: int = 200, message: str = "",
                    next_url: str = "/") -> HTMLResponse:
        token = secrets.token_urlsafe(32)
        expired = request.query_params.get("expired") == "1"
        response = render(request, "login.html", status, login_csrf=token, next_url=next_url,
                          message=message or ("Your session expired; log in again."
                                              if expired else ""), user=None)
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/login", httponly=True,
                            samesite="strict", secure=_secure(request))
        return response

    @app.get("/login")
    async def login_form(request: Request, next: str = "/"):
        return _login_page(request, next_url=safe_next(next))

    @app.post("/login")
    async def login(request: Request):
        form = await request.form()
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        next_url = safe_next(str(form.get("next", "/")))

        def check() -> User | None:
            user = wb.store.user(name)
            ok = verify_password(password, user.password_hash if user else dummy_hash())
            return user if ok and user and user.active else None

        user = await run_in_threadpool(check)
        if user is None:
            await run_in_threadpool(wb.store.log, name or None, "login_failed",
                                    client=request.client.host if request.client else None)
            return _login_page(request, 401, "Wrong user name or password.", next_url)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        await run_in_threadpool(wb.store.create_session, token_hash(token), user.name, csrf,
                                utcnow() + lifetime)
        await run_in_threadpool(wb.store.log, user.name, "login",
                                client=request.client.host if request.client else None)
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="strict",
                            secure=_secure(request))
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @app.post("/logout")
    async def logout(request: Request):
        await run_in_threadpool(wb.store.end_session, request.state.session.token_hash)
        await run_in_threadpool(wb.store.log, me(request).name, "logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages --------------------------------------------------------------------------------
    @app.get("/")
    async def home(request: Request):
        user = me(request)
        samples = await run_in_threadpool(wb.samples)
        queue = await run_in_threadpool(wb.queue, user) if user.role != "viewer" else []
        progress = {s["sample_id"]: await run_in_threadpool(wb.progress, s["sample_id"])
                    for s in samples}
        done = request.query_params.get("done", "")[:100]
        return render(request, "home.html", samples=samples, queue=queue, progress=progress,
                      message=f"Your decision on {done} was stored."
                      if done else "")

    def _sample_page(request: Request, sample_id: str, status: int = 200, message: str = ""):
        user = me(request)
        progress = wb.progress(sample_id)
        kappa = wb.agreement(sample_id).to_dict("records")
        records = []
        if user.role in ("lead", "viewer"):
            sample = wb.sample(sample_id)
            by = {(a.record_id, a.review): a.auditor for a in wb.store.assignments(sample_id)}
            d = wb.decisions(sample_id)
            done = {k: set(d.loc[d.review == k, "record_id"]) for k in
                    ("first", "second", "adjudication")}
            for r in sample.records.itertuples():
                records.append({"record_id": r.record_id, "stratum": r.stratum,
                                "first": by.get((r.record_id, "first"), ""),
                                "second": by.get((r.record_id, "second"), ""),
                                **{f"{k}_done": r.record_id in v for k, v in done.items()}})
        return render(request, "sample.html", status, sample_id=sample_id, progress=progress,
                      kappa=kappa, records=records, reviewers=wb.reviewers(), message=message,
                      level=wb.project.config.confidence_level)

    @app.get("/samples/{sample_id}")
    async def sample_page(request: Request, sample_id: str, msg: str = ""):
        return await run_in_threadpool(_sample_page, request, sample_id, 200, msg[:300])

    @app.get("/samples/{sample_id}/progress")
    async def progress_panel(request: Request, sample_id: str):
        progress = await run_in_threadpool(wb.progress, sample_id)
        return render(request, "_progress.html", progress=progress, sample_id=sample_id)

    def _after(sample_id: str, message: str) -> RedirectResponse:
        return RedirectResponse(f"/samples/{quote(sample_id)}?msg={quote(message)}",
                                status_code=303)

    @app.post("/samples/{sample_id}/assign")
    async def assign(request: Request, sample_id: str):
        form = await request.form()
        auditors = [str(a) for a in form.getlist("auditor")]
        n = await run_in_threadpool(wb.assign_first, me(request), sample_id, auditors)
        return _after(sample_id, f"{n} records assigned for first review to "
                                 f"{', '.join(auditors)}.")

    @app.post("/samples/{sample_id}/second-review")
    async def second_review(request: Request, sample_id: str):
        form = await request.form()
        auditors = [str(a) for a in form.getlist("auditor")]
        try:
            share = float(str(form.get("share", "")).strip().rstrip("%")) / 100
            seed = int(str(form.get("seed", "1")).strip() or 1)
        except ValueError as exc:
            raise WorkbenchError("the share is a percentage (e.g. 10) and the seed a whole "
                                 "number") from exc
        n, skipped = await run_in_threadpool(wb.set_second_review, me(request), sample_id,
                                             share, auditors, seed)
        note = f" ({skipped} skipped: only their first reviewer was chosen)" if skipped else ""
        return _after(sample_id, f"{n} records assigned for blind second review{note}.")

    @app.post("/samples/{sample_id}/close")
    async def close(request: Request, sample_id: str):
        await run_in_threadpool(wb.close_sample, me(request), sample_id)
        return _after(sample_id, f"Sample {sample_id} is closed.")

    @app.get("/samples/{sample_id}/disagreements")
    async def disagreements(request: Request, sample_id: str):
        table = await run_in_threadpool(wb.disagreements, me(request), sample_id)
        return render(request, "disagreements.html", sample_id=sample_id,
                      rows=table.to_dict("records"))

    def _record_page(request: Request, sample_id: str, record_id: str, review: str,
                     status: int = 200, message: str = "", problems: list[str] | None = None,
                     answers: dict | None = None) -> HTMLResponse:
        user = me(request)
        view = wb.record(user, sample_id, record_id, review)
        form = dict(view["form"]) if answers is None else answers
        return render(request, "record.html", status, v=view, form=form, message=message,
                      problems=problems or [], classes=wb.offence_classes(limit=100_000))

    @app.get("/samples/{sample_id}/records/{record_id}")
    async def record(request: Request, sample_id: str, record_id: str, review: str = "",
                     done: str = ""):
        user = me(request)
        if not review:
            review = "current" if user.role == "viewer" else "first"
        message = f"Your decision on {done} was stored." if done else ""
        return await run_in_threadpool(_record_page, request, sample_id, record_id, review,
                                       200, message[:200])

    @app.post("/samples/{sample_id}/records/{record_id}/decide")
    async def decide(request: Request, sample_id: str, record_id: str):
        user = me(request)
        form = await request.form()
        review = str(form.get("review", "first"))
        answers = {c: (str(form[c]) if c in form else None)
                   for c in (*DECISION_COLUMNS, "notes")}
        try:
            seen = int(str(form.get("seen", "0")))
        except ValueError:
            seen = -1
        try:
            await run_in_threadpool(wb.decide, user, sample_id, record_id, review, seen,
                                    answers)
        except DecisionRefused as exc:
            return await run_in_threadpool(_record_page, request, sample_id, record_id, review,
                                           422, "", exc.problems, answers)
        except DecisionConflict as exc:
            return await run_in_threadpool(_record_page, request, sample_id, record_id, review,
                                           409, str(exc))
        if review == "adjudication":
            return RedirectResponse(f"/samples/{quote(sample_id)}/disagreements",
                                    status_code=303)
        nxt = await run_in_threadpool(wb.next_in_queue, user, sample_id, review)
        if nxt is None:
            return RedirectResponse(f"/?done={quote(record_id)}", status_code=303)
        return RedirectResponse(f"/samples/{quote(sample_id)}/records/{quote(nxt[0])}?review="
                                f"{nxt[1]}&done={quote(record_id)}", status_code=303)

    @app.get("/classes")
    async def classes(request: Request, q: str = "", correct_class: str = ""):
        # HTMX sends the class input under its own name, a plain link as ``q``.
        return render(request, "_classes.html",
                      classes=wb.offence_classes((q or correct_class)[:60]))

    @app.get("/log")
    async def log(request: Request):
        user = me(request)
        if user.role != "lead":
            raise Forbidden("the log is for leads")
        events = await run_in_threadpool(wb.store.events, 300)
        return render(request, "log.html", events=events)

    @app.exception_handler(WorkbenchStoreError)
    async def _store_error(request: Request, exc: WorkbenchStoreError):
        return render(request, "error.html", 400, title="Refused", message=str(exc))

    return app
