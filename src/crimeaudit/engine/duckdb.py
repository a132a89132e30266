"""The embedded default engine: one DuckDB database file per project.

>>> eng = DuckDBEngine.connect(":memory:")
>>> with eng.memory_cap(1 << 30):
...     eng._backend.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
'1.0 GiB'
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from crimeaudit.engine.base import Engine
from crimeaudit.engine.duckdb_loader import DuckDBFileLoader
from crimeaudit.engine.duckdb_versions import DuckDBRecordVersions

if TYPE_CHECKING:
    from splink import DuckDBAPI
    from splink.internals.splink_dataframe import SplinkDataFrame

    from crimeaudit.ingestion.profile import Profile

#: The in-memory database attached for Splink's tables while a linkage runs.
SPLINK_SCRATCH = "__ca_splink"

_UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
          "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


class DuckDBEngine(Engine):
    """DuckDB through Ibis; SQL that Ibis cannot express (the ingest's file loading, the
    transaction, settings) runs on the same connection, so it shares the transaction."""

    name = "duckdb"

    @classmethod
    def connect(cls, path: str | Path = ":memory:", threads: int | None = None) -> DuckDBEngine:
        """Open (or create) the database file ``path`` (``:memory:`` for none)."""
        kwargs: dict[str, Any] = {}
        if threads:
            kwargs["threads"] = threads
        backend = ibis.duckdb.connect(str(path), **kwargs)
        # DuckDB draws its own progress bar on standard output for queries over 2 s, even when
        # output is piped, which would corrupt `--json` output; crimeaudit shows its own.
        backend.con.execute("SET enable_progress_bar = false")
        return cls(backend, "" if str(path) == ":memory:" else str(path))

    @property
    def _con(self) -> Any:
        return self._backend.con

    @contextmanager
    def transaction(self) -> Iterator[DuckDBEngine]:
        """All writes inside happen together or not at all (one SQL transaction)."""
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            con.execute("ROLLBACK")
            raise
        else:
            con.execute("COMMIT")

    @contextmanager
    def memory_cap(self, limit: int) -> Iterator[None]:
        """Lower DuckDB's memory limit to ``limit`` bytes for the duration (never raise it)."""
        con = self._con
        before = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        m = re.fullmatch(r"([\d.]+) ?([KMGT]?i?B)", str(before).strip())
        if not m or m.group(2) not in _UNITS or float(m.group(1)) * _UNITS[m.group(2)] <= limit:
            yield
            return
        con.execute(f"SET memory_limit = '{limit // (1 << 20)}MiB'")
        try:
            yield
        finally:
            con.execute(f"SET memory_limit = '{before}'")

    @contextmanager
    def splink_api(self) -> Iterator[DuckDBAPI]:
        """Splink on the store's own DuckDB, in a cursor whose default database is a scratch
        database: Splink reads its inputs there without a copy through Python, and its working
        tables never land in (or grow) the store file. The scratch is a file beside the store
        (``store.duckdb.splink``), so its tables can leave memory under the memory cap (a
        national year's unlinked incidents do not fit in it), and it is removed on exit (and
        before use, if a killed command left one); for a store in memory, it is in memory."""
        from splink import DuckDBAPI  # (imported when linking: it takes a second to import)

        con = self._con
        scratch = Path(f"{self.location}.splink") if self.location else None
        if scratch is not None:
            _remove_files(scratch)
        where = str(scratch).replace("'", "''") if scratch is not None else ":memory:"
        con.execute(f"ATTACH '{where}' AS {SPLINK_SCRATCH}")
        cursor = con.cursor()
        try:
            cursor.execute(f"USE {SPLINK_SCRATCH}")
            yield DuckDBAPI(connection=cursor)
        finally:
            cursor.close()
            con.execute(f"DETACH {SPLINK_SCRATCH}")
            if scratch is not None:
                _remove_files(scratch)

    def splink_input(self, api: DuckDBAPI, name: str,
                     expr: ir.Table) -> tuple[SplinkDataFrame, int]:
        """Build ``expr`` as table ``name`` in the scratch database (the query runs on the
        store's connection, where its tables are) and register it with Splink by name."""
        table = self._backend.create_table(name, expr, database=f"{SPLINK_SCRATCH}.main")
        return api.register(name), int(self.execute(table.count()))

    def file_loader(self, profile: Profile, offences: list[str],
                    hash_sql: Callable[[str], str]) -> DuckDBFileLoader:
        return DuckDBFileLoader(self._con, profile, offences, hash_sql,
                                record_versions=self.record_versions())

    def record_versions(self) -> DuckDBRecordVersions:
        return DuckDBRecordVersions(self)

    def has_table(self, name: str) -> bool:
        """One catalogue lookup instead of listing every table through Ibis (ingest asks this
        a few times per file). Same answer: the store's tables and views, and temporary ones.

        >>> eng = DuckDBEngine.connect()
        >>> _ = eng.rows("CREATE TEMP TABLE t (x INT)")
        >>> eng.has_table("t"), eng.has_table("T"), eng.has_table("u")
        (True, False, False)
        """
        return bool(self._con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND "
            "table_catalog IN (current_database(), 'temp') AND table_schema = current_schema()",
            [name]).fetchone()[0])

    def columns(self, name: str) -> list[str]:
        """One catalogue query (a decision append asks it each time).

        >>> eng = DuckDBEngine.connect()
        >>> _ = eng.rows("CREATE TABLE t (x INT, y TEXT)")
        >>> eng.columns("t"), eng.columns("u")
        (['x', 'y'], [])
        """
        return [c for (c,) in self._con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND "
            "table_schema = current_schema() AND table_catalog IN (current_database(), 'temp') "
            "ORDER BY ordinal_position", [name]).fetchall()]

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """
        >>> DuckDBEngine.connect().rows("SELECT ? + 1", (41,))
        [(42,)]
        """
        return self._con.execute(sql, list(params)).fetchall()

    def insert_rows(self, name: str, data: Any) -> None:
        """
        >>> import pyarrow as pa
        >>> eng = DuckDBEngine.connect()
        >>> _ = eng.rows("CREATE TABLE t (a BIGINT, b TEXT)")
        >>> eng.insert_rows("t", pa.table({"b": ["x"], "a": [1]}))
        >>> eng.rows("SELECT a, b FROM t")
        [(1, 'x')]
        """
        view = f"__ca_insert_{uuid.uuid4().hex}"
        con = self._con
        con.register(view, data)
        try:
            con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM "{view}"')
        finally:
            con.unregister(view)


def _remove_files(db: Path) -> None:
    """A DuckDB database file and its write-ahead log."""
    for f in (db, Path(f"{db}.wal")):
        f.unlink(missing_ok=True)


__all__ = ["DuckDBEngine", "SPLINK_SCRATCH"]
