"""The workbench store's interface, in portable SQL: accounts, sessions, assignments, sample
states and an append-only log of who did what.

:class:`WorkbenchStore` is written once; a backend supplies only a connection, its placeholder
and its DDL (:class:`crimeaudit.web.store.SQLiteStore`,
:class:`crimeaudit.web.postgres.PostgresStore`). Backends import this module, never each
other, so choosing one (:func:`crimeaudit.web.store.open_store`) imports nothing circular.
"""

from __future__ import annotations

import abc
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from crimeaudit.errors import CrimeauditError

ROLES = ("auditor", "lead", "viewer")
#: The review kinds a record is assigned for (adjudication is a lead's, never assigned).
ASSIGNED_REVIEWS = ("first", "second")
LOG_APPEND_ONLY = "the workbench log is append-only"


class WorkbenchStoreError(CrimeauditError):
    """An account or assignment request that cannot be met (unknown user, duplicate name)."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str
    created_at: str
    active: bool = True


@dataclass(frozen=True)
class Session:
    token_hash: str
    user_name: str
    csrf: str
    created_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True)
class Assignment:
    sample_id: str
    record_id: str
    review: str
    auditor: str
    assigned_by: str
    assigned_at: str


class WorkbenchStore(abc.ABC):
    """Accounts, sessions, assignments, sample states and the log, in portable SQL.

    Every public method is one transaction on a fresh connection, so the store is safe to share
    between the server's threads and between processes (the CLI adding a user while the server
    runs).
    """

    #: The backend's DB-API placeholder; queries here are written with ``?``.
    placeholder = "?"
    #: Statements that create the tables (idempotent), run once when the store is opened.
    schema: Sequence[str] = ()

    def __init__(self) -> None:
        with self._transaction() as con:
            for statement in self.schema:
                con.execute(statement)

    @abc.abstractmethod
    @contextmanager
    def _connection(self, write: bool = True) -> Iterator[Any]:
        """A connection, committed when the block ends normally and rolled back otherwise;
        ``write=False`` promises only reads (a backend may then skip the write lock)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the store is, for messages (never a password)."""

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[_Cursor]:
        with self._connection(write) as con:
            yield _Cursor(con, self.placeholder)

    # -- accounts ---------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password_hash: str) -> None:
        if role not in ROLES:
            raise WorkbenchStoreError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not name or name != name.strip() or len(name) > 80:
            raise WorkbenchStoreError(f"user name {name!r}: 1-80 characters, no outer spaces")
        with self._transaction() as cur:
            if cur.one("SELECT name FROM workbench_users WHERE name = ?", (name,)):
                raise WorkbenchStoreError(f"user {name!r} already exists in {self.describe()}")
            cur.execute("INSERT INTO workbench_users (name, role, password_hash, created_at, "
                        "active) VALUES (?, ?, ?, ?, 1)",
                        (name, role, password_hash, _iso(utcnow())))

    def user(self, name: str) -> User | None:
        with self._transaction(write=False) as cur:
            row = cur.one("SELECT name, role, password_hash, created_at, active "
                          "FROM workbench_users WHERE name = ?", (name,))
        return User(*row[:4], bool(row[4])) if row else None

    def users(self) -> list[User]:
        with self._transaction(write=False) as cur:
            rows = cur.all("SELECT name, role, password_hash, created_at, active "
                           "FROM workbench_users ORDER BY name")
        return [User(*r[:4], bool(r[4])) for r in rows]

    def set_password(self, name: str, password_hash: str) -> None:
        """A new password ends every session of the account (a reset locks out a thief)."""
        with self._transaction() as cur:
            self._need_user(cur, name)
            cur.execute("UPDATE workbench_users SET password_hash = ? WHERE name = ?",
                        (password_hash, name))
            cur.execute("DELETE FROM workbench_sessions WHERE user_name = ?", (name,))

    def set_active(self, name: str, active: bool) -> None:
        with self._transaction() as cur:
            self._need_user(cur, name)
            cur.execute("UPDATE workbench_users SET active = ? WHERE name = ?",
                        (1 if active else 0, name))
            if not active:
                cur.execute("DELETE FROM workbench_sessions WHERE user_name = ?", (name,))

    def _need_user(self, cur: _Cursor, name: str) -> None:
        if not cur.one("SELECT name FROM workbench_users WHERE name = ?", (name,)):
            raise WorkbenchStoreError(f"no user {name!r} in {self.describe()}")

    # -- sessions ---------------------------------------------------------------------------
    def create_session(self, token_hash: str, user_name: str, csrf: str,
                       expires_at: dt.datetime) -> None:
        now = utcnow()
        with self._transaction() as cur:
            # Expired sessions are swept here, at the one moment a table grows.
            cur.execute("DELETE FROM workbench_sessions WHERE expires_at < ?", (_iso(now),))
            cur.execute("INSERT INTO workbench_sessions (token_hash, user_name, csrf, "
                        "created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                        (token_hash, user_name, csrf, _iso(now), _iso(expires_at)))

    def session(self, token_hash: str) -> Session | None:
        with self._transaction(write=False) as cur:
            row = cur.one("SELECT token_hash, user_name, csrf, created_at, expires_at "
                          "FROM workbench_sessions WHERE token_hash = ?", (token_hash,))
        if not row:
            return None
        return Session(row[0], row[1], row[2], _time(row[3]), _time(row[4]))

    def extend_session(self, token_hash: str, expires_at: dt.datetime) -> None:
        with self._transaction() as cur:
            cur.execute("UPDATE workbench_sessions SET expires_at = ? WHERE token_hash = ?",
                        (_iso(expires_at), token_hash))

    def end_session(self, token_hash: str) -> None:
        with self._transaction() as cur:
            cur.execute("DELETE FROM workbench_sessions WHERE token_hash = ?", (token_hash,))

    # -- assignments ------------------------------------------------------------------------
    def assign(self, sample_id: str, review: str, pairs: Sequence[tuple[str, str]],
               by: str) -> int:
        """Give each (record_id, auditor) pair the record's ``review``; a record already
        assigned for that review moves to the new auditor. Returns the pairs stored."""
        if review not in ASSIGNED_REVIEWS:
            raise WorkbenchStoreError(f"review must be one of {ASSIGNED_REVIEWS}")
        now = _iso(utcnow())
        with self._transaction() as cur:
            for record_id, auditor in pairs:
                cur.execute(
                    "INSERT INTO workbench_assignments (sample_id, record_id, review, auditor, "
                    "assigned_by, assigned_at) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (sample_id, record_id, review) DO UPDATE SET "
                    "auditor = excluded.auditor, assigned_by = excluded.assigned_by, "
                    "assigned_at = excluded.assigned_at",
                    (sample_id, record_id, review, auditor, by, now))
        return len(pairs)

    def assignments(self, sample_id: str | None = None,
                    auditor: str | None = None) -> list[Assignment]:
        where, params = [], []
        if sample_id is not None:
            where.append("sample_id = ?")
            params.append(sample_id)
        if auditor is not None:
            where.append("auditor = ?")
            params.append(auditor)
        sql = ("SELECT sample_id, record_id, review, auditor, assigned_by, assigned_at "
               "FROM workbench_assignments")
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._transaction(write=False) as cur:
            rows = cur.all(sql + " ORDER BY sample_id, review, record_id", tuple(params))
        return [Assignment(*r) for r in rows]

    # -- samples ----------------------------------------------------------------------------
    def close_sample(self, sample_id: str, by: str) -> None:
        with self._transaction() as cur:
            cur.execute("INSERT INTO workbench_closed_samples (sample_id, closed_by, closed_at) "
                        "VALUES (?, ?, ?) ON CONFLICT (sample_id) DO NOTHING",
                        (sample_id, by, _iso(utcnow())))

    def closed(self, sample_id: str) -> tuple[str, str] | None:
        """(who closed the sample, when), or None while it is open."""
        with self._transaction(write=False) as cur:
            row = cur.one("SELECT closed_by, closed_at FROM workbench_closed_samples "
                          "WHERE sample_id = ?", (sample_id,))
        return (row[0], row[1]) if row else None

    # -- the log ----------------------------------------------------------------------------
    def log(self, user_name: str | None, event: str, **detail: Any) -> int:
        """Append one entry; returns its id."""
        with self._transaction() as cur:
            return int(cur.one(
                "INSERT INTO workbench_log (at, user_name, event, detail) VALUES (?, ?, ?, ?) "
                "RETURNING event_id",
                (_iso(utcnow()), user_name, event,
                 json.dumps(detail, sort_keys=True, default=str)))[0])

    def events(self, limit: int = 200, event: str | None = None) -> list[dict[str, Any]]:
        """The latest entries, newest first."""
        sql = "SELECT event_id, at, user_name, event, detail FROM workbench_log"
        params: tuple = ()
        if event:
            sql += " WHERE event = ?"
            params = (event,)
        with self._transaction(write=False) as cur:
            rows = cur.all(sql + " ORDER BY event_id DESC LIMIT ?", (*params, int(limit)))
        return [{"event_id": r[0], "at": r[1], "user": r[2], "event": r[3],
                 "detail": json.loads(r[4] or "{}")} for r in rows]


class _Cursor:
    """The three calls the store needs, with ``?`` placeholders on any backend."""

    def __init__(self, con: Any, placeholder: str):
        self._con, self._ph = con, placeholder

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._ph != "?":
            sql = sql.replace("?", self._ph)
        return self._con.execute(sql, tuple(params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return list(self.execute(sql, params).fetchall())


COMMON_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS workbench_users (name TEXT PRIMARY KEY, role TEXT NOT NULL, "
    "password_hash TEXT NOT NULL, created_at TEXT NOT NULL, active INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS workbench_sessions (token_hash TEXT PRIMARY KEY, "
    "user_name TEXT NOT NULL, csrf TEXT NOT NULL, created_at TEXT NOT NULL, "
    "expires_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS workbench_assignments (sample_id TEXT NOT NULL, "
    "record_id TEXT NOT NULL, review TEXT NOT NULL, auditor TEXT NOT NULL, "
    "assigned_by TEXT NOT NULL, assigned_at TEXT NOT NULL, "
    "PRIMARY KEY (sample_id, record_id, review))",
    "CREATE TABLE IF NOT EXISTS workbench_closed_samples (sample_id TEXT PRIMARY KEY, "
    "closed_by TEXT NOT NULL, closed_at TEXT NOT NULL)",
)
