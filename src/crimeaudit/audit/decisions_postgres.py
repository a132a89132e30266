"""The decisions of a team's project in PostgreSQL: the same rows and hash chain as the project
store's ``audit_decisions``, in a database every workbench server and CLI of the team reaches.

:mod:`crimeaudit.audit.decisions` is the one module that reads and writes decisions; when a
project's ``project.yaml`` names ``decisions_db`` it asks this module for the rows and hands it
the chained rows to append, and it keeps every rule (supersedes, the chain, "latest") itself.
This module only moves rows in and out of PostgreSQL (psycopg 3, one short connection per call):

* the table has the columns of :data:`crimeaudit.model.schema.AUDIT_DECISIONS`; triggers
  refuse UPDATE, DELETE and TRUNCATE, so a row, once written, stays;
* an append locks the table against other writers (``SHARE ROW EXCLUSIVE``: readers go on)
  for the whole read-last-row, chain, insert, so two servers never fork the chain;
* ``audit_decisions_project`` holds the one project the database serves (name and creation
  time): another project pointed at the same database is refused instead of mixing decisions.

The URL in ``project.yaml`` never holds a password: libpq takes it from ``PGPASSWORD`` or
``~/.pgpass``, or from the URL given to ``crimeaudit serve --db`` in the same process
(:func:`remember`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from crimeaudit.errors import CrimeauditError
from crimeaudit.model.schema import AUDIT_DECISIONS

TABLE = AUDIT_DECISIONS.name
APPEND_ONLY = "audit decisions are append-only"
_SQL_TYPES = {pa.string(): "TEXT", pa.int64(): "BIGINT", pa.timestamp("us"): "TIMESTAMP",
              pa.float64(): "DOUBLE PRECISION", pa.bool_(): "BOOLEAN"}
#: Full URLs (with a password) given in this process, by their password-free form.
_known: dict[str, str] = {}


class DecisionsDatabaseError(CrimeauditError):
    """The project's PostgreSQL decisions cannot be reached or belong to another project."""


def without_password(url: str) -> str:
    """The URL as ``project.yaml`` records it: no password.

    >>> without_password("postgresql://ann:s3cret@db.local:5432/audit")
    'postgresql://ann@db.local:5432/audit'
    >>> without_password("postgresql://ann@db.local/audit?sslmode=require")
    'postgresql://ann@db.local/audit?sslmode=require'
    """
    parts = urlsplit(url)
    netloc = re.sub(r"^([^:@/]*):[^@]*@", r"\1@", parts.netloc)
    return urlunsplit(parts._replace(netloc=netloc))


def remember(url: str) -> None:
    """Let this process connect to ``url``'s database with its password (``serve --db``)."""
    _known[without_password(url)] = url


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _ddl(schema: pa.Schema) -> list[str]:
    cols = ", ".join(f"{f.name} {_SQL_TYPES[f.type]}"
                     + (" PRIMARY KEY" if f.name == "decision_id" else "")
                     + ("" if f.nullable or f.name == "decision_id" else " NOT NULL")
                     for f in schema)
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols})",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_sample ON {TABLE} (sample_id, record_id)",
        "CREATE TABLE IF NOT EXISTS audit_decisions_project (only_row BOOLEAN PRIMARY KEY "
        "DEFAULT TRUE CHECK (only_row), name TEXT NOT NULL, created TEXT NOT NULL)",
        "CREATE OR REPLACE FUNCTION audit_decisions_append_only() RETURNS trigger AS $$ "
        f"BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$ LANGUAGE plpgsql",
        f"CREATE OR REPLACE TRIGGER audit_decisions_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION audit_decisions_append_only()",
        f"CREATE OR REPLACE TRIGGER audit_decisions_no_truncate BEFORE TRUNCATE ON {TABLE} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_decisions_append_only()",
    ]


class PostgresDecisions:
    """The decision rows of one project in one PostgreSQL database."""

    def __init__(self, url: str, schema: pa.Schema, project_name: str, project_created: str):
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise DecisionsDatabaseError("PostgreSQL needs the psycopg package: "
                                         "pip install 'psycopg[binary]'") from exc
        self._psycopg = psycopg
        self.url = without_password(url)
        self.schema = schema
        self._columns = [f.name for f in schema]
        with self._connection() as con:
            # Two servers creating the table at once: one waits for the other's lock.
            con.execute("SELECT pg_advisory_xact_lock(7306135)")
            for statement in _ddl(schema):
                con.execute(statement)
            row = con.execute("SELECT name, created FROM audit_decisions_project").fetchone()
            if row is None:
                con.execute("INSERT INTO audit_decisions_project (name, created) VALUES (%s, %s)",
                            (project_name, project_created))
            elif tuple(row) != (project_name, project_created):
                raise DecisionsDatabaseError(
                    f"{self.url} holds the decisions of project {row[0]!r} (created {row[1]}), "
                    f"not of {project_name!r} (created {project_created}); give each project "
                    "its own database or schema")

    def describe(self) -> str:
        return self.url

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            con = self._psycopg.connect(_known.get(self.url, self.url), connect_timeout=10)
        except self._psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DecisionsDatabaseError(f"{self.url}: cannot reach the project's decisions in "
                                         f"PostgreSQL: {first}") from exc
        with con:  # commits when the block ends normally, rolls back on an exception
            yield con

    def _rows(self, cur: Any) -> pa.Table:
        rows = [dict(zip(self._columns, r, strict=True)) for r in cur.fetchall()]
        return pa.Table.from_pylist(rows, schema=self.schema)

    def read(self, sample_id: str | None = None) -> pa.Table:
        """The rows (of one sample), oldest first."""
        sql = f"SELECT {', '.join(self._columns)} FROM {TABLE}"
        params: tuple = ()
        if sample_id:
            sql += " WHERE sample_id = %s"
            params = (sample_id,)
        with self._connection() as con:
            return self._rows(con.execute(sql + " ORDER BY decision_id", params))

    def count(self) -> int:
        with self._connection() as con:
            return int(con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])

    def append(self, sample_ids: list[str],
               chain: Callable[[list[tuple], int, str | None], pa.Table]) -> pa.Table:
        """Append the rows ``chain(latest, last decision_id, last row_hash)`` returns, in one
        transaction that no other writer interleaves; returns them. ``latest`` holds
        (sample_id, record_id, review, highest decision_id) of these samples' stored rows."""
        with self._connection() as con:
            con.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
            prior = con.execute(
                f"SELECT sample_id, record_id, review, max(decision_id) FROM {TABLE} "
                "WHERE sample_id = ANY(%s) GROUP BY sample_id, record_id, review",
                (list(sample_ids),)).fetchall()
            last = con.execute(f"SELECT decision_id, row_hash FROM {TABLE} "
                               "ORDER BY decision_id DESC LIMIT 1").fetchone()
            table = chain(prior, int(last[0]) if last else 0, last[1] if last else None)
            self._insert(con, table)
            return table

    def copy_in(self, table: pa.Table) -> None:
        """Insert rows that already carry their ids and hashes (moving a project's decisions
        here), under the same lock."""
        with self._connection() as con:
            con.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
            self._insert(con, table)

    def _insert(self, con: Any, table: pa.Table) -> None:
        if not table.num_rows:
            return
        names = [f.name for f in self.schema]
        with con.cursor() as cur, cur.copy(
                f"COPY {TABLE} ({', '.join(names)}) FROM STDIN") as copy:
            for row in table.select(names).to_pylist():
                copy.write_row([row[n] for n in names])
