"""The review workbench: auditors review a sample in the browser, together.

``crimeaudit serve DIR`` runs it (:func:`serve`); ``crimeaudit users add`` makes accounts.
The pieces, each with one job:

* :mod:`~crimeaudit.web.workbench`: the work (queues, records, decisions, double review),
  with no HTTP in it;
* :mod:`~crimeaudit.web.app`: pages, sessions, CSRF and roles over it (FastAPI + Jinja2, HTMX
  vendored in ``static/``: no network, no script from elsewhere);
* :mod:`~crimeaudit.web.store`: accounts, sessions, assignments and the append-only log
  (SQLite ``DIR/workbench.sqlite``, or :mod:`~crimeaudit.web.postgres`);
* :mod:`~crimeaudit.web.passwords`: scrypt password hashes.

Decisions themselves are the audit's (:mod:`crimeaudit.audit.decisions`): append-only and
hash-chained, whatever wrote them (a sheet, the oracle, the workbench), and so is agreement
between first and second reviews (:mod:`crimeaudit.audit.agreement`: one Cohen's kappa for the
workbench and the estimators).
"""

from __future__ import annotations

from pathlib import Path

from crimeaudit.web.workbench import Workbench


def serve(directory: str | Path, host: str = "127.0.0.1", port: int = 8765,
          db: str | None = None, session_minutes: float = 60.0,
          secure_cookies: bool = False) -> None:
    """Run the workbench on ``host:port`` until interrupted; the project stays open (and
    busy for other commands) while it runs."""
    import uvicorn

    from crimeaudit.web.app import create_app

    wb = Workbench.open(directory, db=db, session_minutes=session_minutes)
    try:
        uvicorn.run(create_app(wb, secure_cookies=secure_cookies), host=host, port=port,
                    log_level="warning", proxy_headers=True, server_header=False)
    finally:
        wb.close()


__all__ = ["Workbench", "serve"]
