"""The workbench store in PostgreSQL, for a team whose auditors work from several machines.

The same tables and SQL as :class:`crimeaudit.web.store.SQLiteStore` (psycopg 3, one short
connection per transaction, so the server's threads never share one); the log's append-only
rule is a PL/pgSQL trigger. Give each project its own database (or schema, through the URL's
``options=-csearch_path=...``): the tables are not keyed by project.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from crimeaudit.web.tables import (
    COMMON_SCHEMA,
    LOG_APPEND_ONLY,
    WorkbenchStore,
    WorkbenchStoreError,
)


def _redact(url: str) -> str:
    """The URL without its password, for messages.

    >>> _redact("postgresql://ann:s3cret@db.local:5432/audit")
    'postgresql://ann:***@db.local:5432/audit'
    """
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class PostgresStore(WorkbenchStore):
    """Accounts, sessions, assignments and the log in one PostgreSQL database."""

    placeholder = "%s"
    schema = (
        *COMMON_SCHEMA,
        "CREATE TABLE IF NOT EXISTS workbench_log (event_id BIGINT GENERATED ALWAYS AS "
        "IDENTITY PRIMARY KEY, at TEXT NOT NULL, user_name TEXT, event TEXT NOT NULL, "
        "detail TEXT NOT NULL)",
        "CREATE OR REPLACE FUNCTION workbench_log_append_only() RETURNS trigger AS $$ "
        f"BEGIN RAISE EXCEPTION '{LOG_APPEND_ONLY}'; END $$ LANGUAGE plpgsql",
        "CREATE OR REPLACE TRIGGER workbench_log_append_only BEFORE UPDATE OR DELETE "
        "ON workbench_log FOR EACH ROW EXECUTE FUNCTION workbench_log_append_only()",
    )

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise WorkbenchStoreError("PostgreSQL needs the psycopg package: "
                                      "pip install 'psycopg[binary]'") from exc
        self._psycopg = psycopg
        self.url = url
        try:
            super().__init__()
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WorkbenchStoreError(f"{_redact(url)}: cannot reach PostgreSQL: "
                                      f"{first}") from exc
        except psycopg.errors.UniqueViolation:
            # Two processes creating the schema at once: the other one won; the tables exist.
            pass

    def describe(self) -> str:
        return _redact(self.url)

    @contextmanager
    def _connection(self, write: bool = True) -> Iterator[Any]:
        with self._psycopg.connect(self.url, connect_timeout=10) as con:
            # psycopg commits when the block ends normally and rolls back on an exception.
            yield con
