"""The engine interface every stage talks to, whatever runs the tables underneath.

An :class:`Engine` is an Ibis backend plus the few things Ibis does not say the same way on
every backend: transactions, a memory cap, a scratch space for Splink, and the set-wise loading
of one input file. The Ibis operations are written once here (they are the same on every
backend); each backend module (``engine/duckdb.py``) implements the abstract rest, so stages
never see a backend, a connection or a dialect.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from crimeaudit.errors import CrimeauditError

if TYPE_CHECKING:
    from splink.internals.database_api import DatabaseAPI
    from splink.internals.splink_dataframe import SplinkDataFrame

    from crimeaudit.ingestion.profile import Profile, Target
    from crimeaudit.ingestion.source import SourceFile


_MEMTABLE = re.compile(r"ibis_\w+_memtable_")  # the names Ibis gives ibis.memtable data


def _work_memory() -> int:
    """The engine's memory for a stage's heavy work (ingest, linkage): a quarter of the
    machine's, between 2 and 6 GiB; beyond it the engine spills to disk. (A national year of
    20M incidents ran out at 2 GiB in one ingest, and linkage took 17.5 GB with DuckDB's
    default of 80% of the machine: benchmarks/results/national.md.)"""
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return max(2 << 30, min(6 << 30, total // 4))


WORK_MEMORY = _work_memory()


def naive_timestamps(table: pa.Table) -> pa.Table:
    """``table`` with timestamps that carry a time zone as the store's naive (UTC) ones: what
    an engine hands back (Spark's Arrow, for one) in the store's own types.

    >>> t = pa.table({"t": pa.array([0], pa.timestamp("us", tz="UTC")), "x": [1]})
    >>> naive_timestamps(t).schema.field("t").type
    TimestampType(timestamp[us])
    """
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp(f.type.unit)))
    return table


class EngineError(CrimeauditError, RuntimeError):
    """An engine could not be reached or does not support what was asked."""


@dataclass
class LoadedFile:
    """What an engine did with one input file, for the ingest stage to report and reconcile.

    ``quarantine`` holds Arrow tables of the rows that failed a check (``rn``: row number among
    the parsed records, ``tbl``, ``col``, ``reason``, ``raw``: the row as text with personal
    fields pseudonymised); ``rejects`` the lines the reader could not split into columns
    (line, column, reason, text as read).
    """

    read: int = 0
    loaded: int = 0  # rows that passed every check, over all targets
    tables: dict[str, int] = field(default_factory=dict)  # the same, per table
    # Rows the final insert reported writing, per table, where the engine counts them: the
    # ingest stage checks they are exactly the rows that passed.
    written: dict[str, int] = field(default_factory=dict)
    quarantine: list[pa.Table] = field(default_factory=list)
    rejects: list[tuple[int, str, str, str]] = field(default_factory=list)
    #: Rows outside the profile's scope, counted: (table, source column, value, reason,
    #: rows, first line).
    excluded: list[tuple[str, str, str, str, int, int]] = field(default_factory=list)
    #: Per "table.column (crosswalk)": the source values the crosswalk does not list, with
    #: their rows (loaded as unclassified, default, passed through, or quarantined if strict).
    unmapped: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Loaded rows whose value a profile rule read otherwise than written ("what was done":
    #: {source value: rows}), e.g. a 12-month period ending on 30-12-2017.
    adjusted: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def excluded_rows(self) -> int:
        return sum(e[4] for e in self.excluded)


class FileLoader(abc.ABC):
    """Loads input files into the store as one profile says, set-wise inside the engine.

    The ingest stage decides what to load (the profile, the targets of each file, which columns
    are personal) and writes the quarantine; the engine decides how to read, convert, check and
    insert, because that is where the speed is and it is written in the engine's own SQL.
    """

    @abc.abstractmethod
    def load(self, src: SourceFile, path: Path, targets: list[Target],
             personal: set[str]) -> LoadedFile:
        """Load one file (``path``: the file as UTF-8, which may be a transcoded copy of
        ``src.path``) into ``targets``; hide the ``personal`` source columns in quarantined
        text."""


class RecordVersions(abc.ABC):
    """Versioned incident and crime records: a file's rows become sightings of their records
    (new, a new version, identical), and the record tables hold each record's version in effect
    at the reference date. The ingest stage says when; the engine does it set-wise.

    The loader stages a file's incident and crime rows; :meth:`apply` turns them into versions.
    """

    @abc.abstractmethod
    def next_load_seq(self) -> int:
        """The number of the next load (orders loads with equal as-of times)."""

    @abc.abstractmethod
    def staged_as_of(self, tables: list[str]) -> Any:
        """The latest timestamp among the staged rows of ``tables`` (None: none)."""

    @abc.abstractmethod
    def apply(self, table: str, sha256: str, profile: str, as_of: Any, load_seq: int,
              reference_date: Any) -> dict[str, int]:
        """Store the staged rows of ``table`` as sightings; counts new / changed / identical."""

    @abc.abstractmethod
    def loaded_from(self, sha256: str, profile: str) -> dict[str, int]:
        """Rows per record table that one file's load brought."""

    @abc.abstractmethod
    def unload(self, sha256: str, profile: str, reference_date: Any) -> dict[str, int]:
        """Undo one file's load; the rows per table it had brought."""

    @abc.abstractmethod
    def sync(self, reference_date: Any) -> bool:
        """Rebuild the record tables for another reference date; True if anything was done."""

    @abc.abstractmethod
    def record_reference_date(self, reference_date: Any) -> None:
        """Note the reference date the record tables are built for."""

    @abc.abstractmethod
    def history(self, table: str, record_ids: list[str]) -> pa.Table:
        """Every sighting of the records with the version's values, oldest first."""

    @abc.abstractmethod
    def find_ids(self, table: str, reference: str) -> list[str]:
        """The ids of ``table`` that a reference as a user knows it names."""

    @abc.abstractmethod
    def dangling_references(self, limit: int = 5) -> tuple[int, list[str]]:
        """Crimes pointing at incidents not in the store: how many, and some incident ids."""


#: Arrow types of the store's schemas as standard SQL column types.
_SQL_TYPES = {"string": "VARCHAR", "int64": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN",
              "timestamp[us]": "TIMESTAMP", "date32[day]": "DATE"}


class Engine(abc.ABC):
    """The operations crimeaudit needs from a table engine.

    Build one with :func:`crimeaudit.engine.connect` (from the project's ``engine`` setting) or
    :meth:`Engine.duckdb`. The backend is private: a stage that needs something the interface
    lacks adds a method here and to each backend, rather than reaching for the backend.
    """

    name: ClassVar[str] = ""
    # Each backend's engine class by name, filled as the backend modules define them (the
    # engine package imports them all), so this module needs none of them.
    _by_name: ClassVar[dict[str, type[Engine]]] = {}

    def __init__(self, backend: Any, location: str = ""):
        self._backend = backend
        #: Where the store is, as a user would find it (a file or folder; empty in memory).
        self.location = location

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            Engine._by_name[cls.name] = cls

    # -- construction -----------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def connect(cls, path: str | Path, threads: int | None = None) -> Engine:
        """Open (or create) the store at ``path``."""

    @classmethod
    def duckdb(cls, path: str | Path = ":memory:", threads: int | None = None) -> Engine:
        """The embedded default: a DuckDB database file (or ``:memory:``)."""
        return Engine._by_name["duckdb"].connect(path, threads=threads)

    # -- tables (the same Ibis calls on every backend) -----------------------------------------
    def list_tables(self) -> list[str]:
        """The store's tables (not the views Ibis registers for in-memory data while in use)."""
        return sorted(t for t in self._backend.list_tables() if not _MEMTABLE.match(t))

    def has_table(self, name: str) -> bool:
        return name in self._backend.list_tables()

    def table(self, name: str) -> ir.Table:
        if not self.has_table(name):
            raise EngineError(f"the store has no table {name!r}")
        return self._backend.table(name)

    def write(
        self,
        name: str,
        data: ir.Table | pa.Table | pd.DataFrame,
        mode: str = "replace",
        schema: pa.Schema | None = None,
    ) -> None:
        """Write ``data`` as table ``name``; ``mode`` is ``replace`` or ``append``."""
        if mode not in ("replace", "append"):
            raise ValueError(f"mode must be 'replace' or 'append', not {mode!r}")
        if schema is not None and isinstance(data, pd.DataFrame):
            data = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
        if mode == "append" and self.has_table(name):
            self._backend.insert(name, data)
        else:
            self._backend.create_table(name, data, overwrite=True)

    def create_empty(self, name: str, schema: pa.Schema) -> None:
        """Create ``name`` with ``schema`` and no rows, unless it exists."""
        if not self.has_table(name):
            self._backend.create_table(name, schema=ibis.schema(schema))

    def add_missing_columns(self, name: str, schema: pa.Schema) -> list[str]:
        """Add to table ``name`` the columns of ``schema`` it lacks, empty (a store written by
        an earlier version of crimeaudit); the names added. Nothing if the table is absent."""
        if not self.has_table(name):
            return []
        have = set(self._backend.table(name).columns)
        added = []
        for f in schema:
            if f.name in have:
                continue
            sql_type = _SQL_TYPES.get(str(f.type))
            if sql_type is None:
                raise EngineError(f"cannot add column {f.name!r} of type {f.type} to {name!r}")
            self._backend.raw_sql(f'ALTER TABLE "{name}" ADD COLUMN "{f.name}" {sql_type}')
            added.append(f.name)
        return added

    def drop(self, name: str) -> None:
        self._backend.drop_table(name, force=True)

    def columns(self, name: str) -> list[str]:
        """The column names of table ``name`` (none if it is absent).

        >>> eng = Engine.duckdb()
        >>> eng.write("t", pa.table({"a": [1], "b": ["x"]}))
        >>> eng.columns("t"), eng.columns("u")
        (['a', 'b'], [])
        """
        return list(self._backend.table(name).columns) if self.has_table(name) else []

    def replace_rows(self, name: str, key: str, remove: pa.Table | ir.Table | None = None,
                     add: pa.Table | None = None) -> None:
        """Remove the rows of ``name`` whose ``key`` is among ``remove``'s ``key`` column, then
        append ``add`` (columns matched by name, cast to the table's types): the set-wise
        DELETE-then-INSERT of engines that cannot update a table in place.

        >>> eng = Engine.duckdb()
        >>> eng.write("t", pa.table({"k": ["a", "b", "c"], "v": [1, 2, 3]}))
        >>> eng.replace_rows("t", "k", pa.table({"k": ["b"]}), pa.table({"v": [9], "k": ["b"]}))
        >>> sorted(eng.to_pyarrow(eng.table("t")).to_pylist(), key=lambda r: r["k"])[1]
        {'k': 'b', 'v': 9}
        >>> eng.create_empty("r", pa.schema([pa.field("k", pa.string(), nullable=False)]))
        >>> eng.replace_rows("r", "k", pa.table({"k": ["x"]}), pa.table({"k": ["x"]}))
        >>> eng.count("r")
        1
        """
        t = self.table(name)
        # (both sides nullable: a table made from a schema with required columns would not
        # union with in-memory rows otherwise)
        nullable = ibis.schema({c: d.copy(nullable=True) for c, d in t.schema().items()})
        keep = t.cast(nullable)
        if remove is not None:
            ids = remove if isinstance(remove, ir.Table) else self.memtable(remove)
            keep = keep.anti_join(ids.select(key).distinct(), key)
        if add is not None and add.num_rows:
            extra = self.memtable(add).select(*t.columns).cast(nullable)
            keep = keep.union(extra, distinct=False)
        elif remove is None:
            return
        self.write(name, keep)

    def delete_rows(self, name: str, where: Callable[[ir.Table], ir.BooleanValue]) -> None:
        """Remove the rows of ``name`` for which ``where(table)`` is true (NULL keeps a row).

        >>> eng = Engine.duckdb()
        >>> eng.write("t", pa.table({"k": ["a", "b", None]}))
        >>> eng.delete_rows("t", lambda t: t.k == "a")
        >>> eng.count("t")
        2
        """
        t = self.table(name)
        self.write(name, t.filter(~where(t).fill_null(False)))

    def read_parquet(self, path: str | Path, **kwargs: Any) -> ir.Table:
        return self._backend.read_parquet(str(path), **kwargs)

    def read_csv(self, path: str | Path, **kwargs: Any) -> ir.Table:
        return self._backend.read_csv(str(path), **kwargs)

    def memtable(self, data: pa.Table | pd.DataFrame | dict[str, list[Any]]) -> ir.Table:
        """Small in-memory data (a code list, a few thousand pairs) as a table expression that
        joins with the store's tables; the engine registers it when a query uses it."""
        return ibis.memtable(data)

    def to_pyarrow(self, expr: ir.Table) -> pa.Table:
        return self._backend.to_pyarrow(expr)

    def to_pyarrow_batches(self, expr: ir.Table, chunk_size: int = 100_000) -> pa.RecordBatchReader:
        """Stream a table expression as Arrow record batches, for work that must not hold the
        whole table in memory (scoring a million incidents)."""
        return self._backend.to_pyarrow_batches(expr, chunk_size=chunk_size)

    def to_pandas(self, expr: ir.Table) -> pd.DataFrame:
        return self._backend.execute(expr)

    def execute(self, expr: ir.Expr) -> Any:
        """The result of any expression: a Python scalar for a scalar (``t.count()``), a
        pandas object for a column or a table."""
        return self._backend.execute(expr)

    def count(self, name: str) -> int:
        return int(self.execute(self.table(name).count()))

    def close(self) -> None:
        disconnect = getattr(self._backend, "disconnect", None)
        if disconnect:
            disconnect()

    # -- what differs between backends ----------------------------------------------------------
    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Engine]:
        """All writes inside happen together or not at all."""

    @abc.abstractmethod
    def memory_cap(self, limit: int) -> AbstractContextManager[None]:
        """Keep the engine's memory use under ``limit`` bytes for the duration (never raise a
        lower limit); work beyond it spills to disk."""

    @abc.abstractmethod
    def splink_api(self) -> AbstractContextManager[DatabaseAPI]:
        """Splink's database API running on this engine, with a scratch space for Splink's own
        tables that is cleared on exit (nothing Splink makes lands among the store's tables)."""

    @abc.abstractmethod
    def splink_input(self, api: DatabaseAPI, name: str,
                     expr: ir.Table) -> tuple[SplinkDataFrame, int]:
        """Materialise ``expr`` where ``api`` reads it, without a trip through Python; returns
        the Splink table and its number of rows."""

    @abc.abstractmethod
    def file_loader(self, profile: Profile, offences: list[str],
                    hash_sql: Callable[[str], str]) -> FileLoader:
        """The loader of input files through ``profile``; ``offences`` are the known offence
        codes and ``hash_sql`` renders, in this engine's SQL, the pseudonym of a text
        expression (the pseudonym module guarantees it agrees with the Python form)."""

    @abc.abstractmethod
    def record_versions(self) -> RecordVersions:
        """Versioned incident and crime records on this engine."""

    @abc.abstractmethod
    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """The rows of a small parameterised SQL query, run as written (no Ibis compile): for
        work done once per request, such as appending one decision, where compiling an Ibis
        expression costs more than the query."""

    @abc.abstractmethod
    def insert_rows(self, name: str, data: pa.Table) -> None:
        """Append ``data`` to the existing table ``name``, columns matched by name, inside any
        open transaction (no catalogue look-up)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["WORK_MEMORY", "Engine", "EngineError", "FileLoader", "LoadedFile", "RecordVersions"]
