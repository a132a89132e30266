"""What the workbench keeps beside the decisions: accounts, sessions, assignments, sample states
and an append-only log of who did what.

One small interface, :class:`~crimeaudit.web.tables.WorkbenchStore`, written once in portable
SQL (:mod:`crimeaudit.web.tables`); a backend supplies only a connection, its placeholder and
its DDL. :class:`SQLiteStore` (``DIR/workbench.sqlite``) is the default;
:class:`crimeaudit.web.postgres.PostgresStore` serves a team from one PostgreSQL database
(``--db postgresql://...``).

Why not the project's DuckDB store: one process at a time may open it, and the server holds it
for as long as it runs. An administrator must still be able to add an account or reset a
password while the workbench is up, so accounts live in a file any number of processes may
open (SQLite, in WAL mode) or in PostgreSQL.

The log table refuses UPDATE and DELETE (a trigger), so an entry, once written, stays.

>>> import tempfile, pathlib
>>> s = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "workbench.sqlite")
>>> s.add_user("ann", "lead", "scrypt$...")
>>> s.user("ann").role
'lead'
>>> s.log("ann", "login")
1
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from crimeaudit.web.tables import (
    ASSIGNED_REVIEWS,
    COMMON_SCHEMA,
    LOG_APPEND_ONLY,
    ROLES,
    Assignment,
    Session,
    User,
    WorkbenchStore,
    WorkbenchStoreError,
    utcnow,
)

__all__ = ["ASSIGNED_REVIEWS", "ROLES", "Assignment", "SQLiteStore", "Session", "User",
           "WorkbenchStore", "WorkbenchStoreError", "open_store", "utcnow"]


class SQLiteStore(WorkbenchStore):
    """The store in one SQLite file (``DIR/workbench.sqlite``), in WAL mode so that readers
    never wait for the one writer."""

    schema = (
        *COMMON_SCHEMA,
        "CREATE TABLE IF NOT EXISTS workbench_log (event_id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "at TEXT NOT NULL, user_name TEXT, event TEXT NOT NULL, detail TEXT NOT NULL)",
        "CREATE TRIGGER IF NOT EXISTS workbench_log_no_update BEFORE UPDATE ON workbench_log "
        f"BEGIN SELECT RAISE(ABORT, '{LOG_APPEND_ONLY}'); END",
        "CREATE TRIGGER IF NOT EXISTS workbench_log_no_delete BEFORE DELETE ON workbench_log "
        f"BEGIN SELECT RAISE(ABORT, '{LOG_APPEND_ONLY}'); END",
    )

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_symlink():
            raise WorkbenchStoreError(f"{self.path} is a symbolic link; the workbench store "
                                      "must be a plain file in the project folder")
        try:
            con = sqlite3.connect(self.path, timeout=30)
            con.execute("PRAGMA journal_mode=WAL")
            con.close()
        except sqlite3.Error as exc:
            raise WorkbenchStoreError(f"{self.path}: cannot open the workbench store: "
                                      f"{exc}") from exc
        super().__init__()

    def describe(self) -> str:
        return str(self.path)

    @contextmanager
    def _connection(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            # A writer takes the lock at the start, not mid-transaction (no deadlock between
            # two read-then-write transactions); a reader never waits for it (WAL).
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield con
            con.commit()
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()


def open_store(project_dir: str | Path, db: str | None = None) -> WorkbenchStore:
    """The workbench store of a project: ``DIR/workbench.sqlite``, or PostgreSQL at ``db``."""
    if db:
        if not db.startswith(("postgresql://", "postgres://")):
            raise WorkbenchStoreError(f"--db must be a postgresql:// URL, not {db.split(':')[0]!r}")
        from crimeaudit.web.postgres import PostgresStore

        return PostgresStore(db)
    folder = Path(project_dir)
    if not (folder / "project.yaml").exists():
        raise WorkbenchStoreError(f"{folder} is not a crimeaudit project (no project.yaml); "
                                  f"create one with: crimeaudit init {folder}")
    return SQLiteStore(folder / "workbench.sqlite")
