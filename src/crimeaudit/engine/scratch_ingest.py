"""Ingest on any engine: each file's work done in a private scratch DuckDB, merged into the store.

The DuckDB ingest (:mod:`~crimeaudit.engine.duckdb_loader`,
:mod:`~crimeaudit.engine.duckdb_versions`) is DuckDB SQL on the store's own connection, with
UPDATE and DELETE. An engine whose tables cannot be changed in place, or that speaks another SQL
(PySpark), runs that same code, unchanged, on a private in-memory DuckDB: the *scratch*, one per
:class:`ScratchRecordVersions` (the loader of an ingest shares its versions' scratch). For each
piece of work (one file's load, one table's versioning, one unload) the scratch holds only the
rows of the store that the DuckDB statements read:

1. *pull*: the rows of the store those statements read are copied in by key
   (``store.table(t).semi_join(store.memtable(keys), ...)``): for the key checks and updates of
   a target written straight to its table (a table that is not versioned, an update-mode target
   such as police-uk-outcomes), the rows with the keys the file brings, and for an update the
   versions of those records too; for versioning, the record rows, versions and sightings of the
   records the file brings; for an unload, those of the records the file had brought.
2. the DuckDB code runs on the scratch, so verdicts, quarantine reasons, line numbers,
   exclusions, pseudonyms and version hashes are the DuckDB ingest's by construction.
3. *push*: the difference goes back through the generic :class:`~crimeaudit.engine.Engine` API.
   Rows the work added are appended (``Engine.write(..., mode="append")``, never an empty
   table); only where a row the store holds was changed or removed is the table rewritten
   (``Engine.replace_rows`` of the keys concerned, ``Engine.delete_rows``). A first load, and any
   load that only brings new records, appends only.

Work that is set-wise over the whole store (the next load number, the rows a file brought, the
rebuild for another reference date, history, dangling references) is Ibis on the store.

Timestamps: DuckDB versions a record adopted from before versions were kept (and would version a
file whose staged rows carry no timestamp) as of ``TIMESTAMP '-infinity'``. Spark has no
infinite timestamps and Arrow turns DuckDB's into an out-of-range number, so the store's
``record_sightings.as_of`` holds :data:`NO_TIME` (0001-01-01 00:00:00) instead: a sighting's
-infinity is written to the store as :data:`NO_TIME` and read back into the scratch as
-infinity. Both order before any real export time (so every rebuild picks the same version), and
:mod:`crimeaudit.ingestion.record_history` already reads a year-1 as-of as "in the store before
versions". (An ``--as-of 0001-01-01`` would read back as -infinity: the same order.)

>>> from crimeaudit.engine.duckdb import DuckDBEngine
>>> store = DuckDBEngine.connect()
>>> rv = ScratchRecordVersions(store)
>>> rv.next_load_seq(), rv.dangling_references()
(1, (0, []))
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import pandas as pd
import pyarrow as pa

from crimeaudit.engine.base import (
    WORK_MEMORY,
    Engine,
    EngineError,
    FileLoader,
    LoadedFile,
    RecordVersions,
    naive_timestamps,
)
from crimeaudit.engine.duckdb import DuckDBEngine
from crimeaudit.engine.duckdb_ingest import literal, quote_ident
from crimeaudit.engine.duckdb_loader import DuckDBFileLoader
from crimeaudit.engine.duckdb_versions import LEDGERS, DuckDBRecordVersions, staging_table
from crimeaudit.model.schema import RECORD_SIGHTINGS, RECORD_STATE, TABLES, VERSIONED

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from crimeaudit.ingestion.profile import Profile, Target
    from crimeaudit.ingestion.source import SourceFile

SIGHTINGS = RECORD_SIGHTINGS.name
STATE = RECORD_STATE.name
#: The store's ``record_sightings.as_of`` for DuckDB's ``TIMESTAMP '-infinity'`` (see above).
NO_TIME = dt.datetime(1, 1, 1)
_NO_TIME_SQL = "TIMESTAMP '0001-01-01 00:00:00'"
#: The tables of the scratch: those the DuckDB ingest reads and writes (no ledger: the ingest
#: stage writes those to the store itself).
_SCRATCH_TABLES = (*TABLES.values(), *VERSIONED.values(), RECORD_SIGHTINGS)
_SCHEMAS = {t.name: t for t in (*_SCRATCH_TABLES, RECORD_STATE)}


class Scratch:
    """A private in-memory DuckDB with the ingest's tables, holding for one piece of work the
    rows of the store it reads (:meth:`pull`), and writing back what the work changed
    (:meth:`push`)."""

    def __init__(self, store: Engine):
        self.store = store
        self.engine = DuckDBEngine.connect(":memory:")
        self.con = self.engine._con  # (the scratch is DuckDB: its SQL is the DuckDB ingest's)
        where = getattr(store, "location", "")
        if where:  # spill beside the store, as DuckDB's own store.duckdb.tmp (not ./.tmp)
            self.con.execute(f"SET temp_directory = {literal(str(where) + '.scratch.tmp')}")
        self.versions = DuckDBRecordVersions(self.engine)
        for t in _SCRATCH_TABLES:
            self.engine.create_empty(t.name, t.arrow_schema())
        self.versions.ensure_tables()
        self._pulled: set[str] = set()  # tables with rows pulled for the current work

    def close(self) -> None:
        self.engine.close()

    def _columns(self, name: str) -> list[str]:
        return _SCHEMAS[name].column_names

    def reset(self) -> None:
        """Empty the scratch's tables for the next piece of work (the staged rows of a file,
        ``__ca_in_*``, stay for its versioning)."""
        for t in _SCRATCH_TABLES:
            self.con.execute(f"DELETE FROM {quote_ident(t.name)}")
        for name in self._pulled:
            for helper in ("__ca_orig_", "__ca_keys_"):
                self.con.execute(f"DROP TABLE IF EXISTS {quote_ident(helper + name)}")
        self._pulled.clear()

    def _store_has_rows(self, name: str) -> bool:
        store = self.store
        return store.has_table(name) and bool(store.execute(store.table(name).limit(1).count()))

    def _select(self, name: str, to_store: bool) -> str:
        """The columns of ``name`` for a move between scratch and store: a sighting's as-of of
        -infinity as :data:`NO_TIME` in the store, and back."""
        out = []
        for c in self._columns(name):
            if name == SIGHTINGS and c == "as_of":
                new = _NO_TIME_SQL if to_store else "TIMESTAMP '-infinity'"
                out.append(f"CASE WHEN as_of <= {_NO_TIME_SQL} THEN {new} ELSE as_of END "
                           f"AS as_of")
            else:
                out.append(quote_ident(c))
        return ", ".join(out)

    def _arrow(self, sql: str) -> pa.Table:
        return self.con.execute(sql).to_arrow_table()

    def pull(self, name: str, keys: list[str], ids_sql: str) -> None:
        """Copy into the scratch's ``name`` the store's rows whose ``keys`` are among those
        ``ids_sql`` (a query on the scratch) gives, unless an earlier pull of this work did."""
        con = self.con
        orig, seen = quote_ident(f"__ca_orig_{name}"), quote_ident(f"__ca_keys_{name}")
        k = ", ".join(map(quote_ident, keys))
        if name not in self._pulled:
            self._pulled.add(name)
            con.execute(f"CREATE TEMP TABLE {orig} AS SELECT * FROM {quote_ident(name)} LIMIT 0")
            con.execute(f"CREATE TEMP TABLE {seen} AS SELECT {k} FROM {quote_ident(name)} "
                        f"LIMIT 0")
        known = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in keys)
        fresh = self._arrow(f"SELECT DISTINCT {k} FROM ({ids_sql}) WHERE {known} "
                            f"EXCEPT SELECT {k} FROM {seen}")
        if not fresh.num_rows:
            return
        view = f"__ca_pull_{uuid.uuid4().hex}"
        con.register(view, fresh)
        try:
            con.execute(f"INSERT INTO {seen} SELECT * FROM {view}")
        finally:
            con.unregister(view)
        if not self._store_has_rows(name):
            return
        store = self.store
        rows = store.to_pyarrow(store.table(name).semi_join(store.memtable(fresh), keys))
        if not rows.num_rows:
            return
        rows = naive_timestamps(rows.select(self._columns(name)))
        con.register(view, rows)
        try:
            for into in (quote_ident(name), orig):
                con.execute(f"INSERT INTO {into} BY NAME SELECT {self._select(name, False)} "
                            f"FROM {view}")
        finally:
            con.unregister(view)

    def _for_store(self, name: str, data: pa.Table) -> pa.Table:
        """Rows of the scratch as the store's table ``name`` takes them (its column order)."""
        schema = _SCHEMAS[name].arrow_schema()
        order = [c for c in self.store.columns(name) if c in data.column_names]
        fields = [pa.field(c, schema.field(c).type) for c in order]
        return data.select(order).cast(pa.schema(fields))

    def append(self, name: str, data: pa.Table) -> None:
        """Append ``data`` to the store's ``name``; nothing at all if it has no rows (see
        :func:`crimeaudit.engine.duckdb_versions.insert`: DuckDB 1.5.6 loses a later large
        INSERT after an empty one in the same transaction)."""
        if data.num_rows:
            self.store.write(name, self._for_store(name, data), mode="append")

    def push(self, name: str, key: str | None) -> None:
        """Write back to the store what the work changed in ``name``: rows it added are
        appended; where it changed or removed a row pulled from the store, the store's rows of
        those ``key`` values are removed (one rewrite) and the scratch's appended."""
        con, table = self.con, quote_ident(name)
        cols = self._select(name, True)
        if name not in self._pulled:
            self.append(name, self._arrow(f"SELECT {cols} FROM {table}"))
            return
        orig = quote_ident(f"__ca_orig_{name}")
        added = f"(SELECT * FROM {table} EXCEPT ALL SELECT * FROM {orig})"
        gone = f"(SELECT * FROM {orig} EXCEPT ALL SELECT * FROM {table})"
        if not con.execute(f"SELECT EXISTS (SELECT 1 FROM {gone})").fetchone()[0]:
            self.append(name, self._arrow(f"SELECT {cols} FROM {added}"))
            return
        if key is None:
            raise EngineError(f"internal error: the ingest changed rows of {name} in place, "
                              f"which has no single key to replace them by")
        k = quote_ident(key)
        keys = self._arrow(f"SELECT DISTINCT {k} FROM {gone}")
        rows = self._arrow(
            f"SELECT {cols} FROM {table} WHERE {k} IN (SELECT {k} FROM {gone}) UNION ALL "
            f"SELECT {cols} FROM {added} WHERE {k} NOT IN (SELECT {k} FROM {gone})")
        # (remove, then append: Engine.replace_rows's own append fails on a table with
        # required columns, as the store's are, in Ibis 12: "!string != string")
        self.store.replace_rows(name, key, keys)
        self.append(name, rows)


class ScratchRecordVersions(RecordVersions):
    """Versioned incident and crime records on any engine: the versioning of a file's staged
    rows and the undoing of a load run in the scratch (the DuckDB code); the rest is Ibis on
    the store. ``store``: the engine of the project's store."""

    def __init__(self, store: Engine):
        self.store = store
        self._scratch: Scratch | None = None
        self._ensured = False

    @property
    def scratch(self) -> Scratch:
        """The scratch DuckDB (opened when first needed: opening a project syncs only)."""
        if self._scratch is None:
            self._scratch = Scratch(self.store)
        return self._scratch

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None

    def ensure_tables(self) -> None:
        if self._ensured:
            return
        for t in (*VERSIONED.values(), RECORD_SIGHTINGS, RECORD_STATE):
            self.store.create_empty(t.name, t.arrow_schema())
        self._ensured = True

    def _sightings(self) -> ir.Table | None:
        return self.store.table(SIGHTINGS) if self.store.has_table(SIGHTINGS) else None

    def next_load_seq(self) -> int:
        self.ensure_tables()
        top = self.store.execute(self.store.table(SIGHTINGS).load_seq.max())
        return 1 if top is None or pd.isna(top) else int(top) + 1  # (none: no sighting yet)

    def staged_as_of(self, tables: list[str]) -> dt.datetime | None:
        return self.scratch.versions.staged_as_of(tables)

    def _pull_records(self, table: str, ids_sql: str) -> None:
        """Pull the record rows, versions and sightings of the records of ``table`` whose key
        ``ids_sql`` (a query on the scratch with the key column) gives."""
        sc, key = self.scratch, TABLES[table].key[0]
        sc.pull(table, [key], ids_sql)
        sc.pull(VERSIONED[table].name, [key], ids_sql)
        sc.pull(SIGHTINGS, ["record_table", "record_id"],
                f"SELECT {literal(table)} AS record_table, {quote_ident(key)} AS record_id "
                f"FROM ({ids_sql})")

    def _push_records(self, table: str) -> None:
        sc, key = self.scratch, TABLES[table].key[0]
        sc.push(VERSIONED[table].name, key)
        sc.push(table, key)

    def apply(self, table: str, sha256: str, profile: str, as_of: dt.datetime | None,
              load_seq: int, reference_date: dt.date | None) -> dict[str, int]:
        """The DuckDB versioning of the staged rows of ``table``, on the records they name."""
        self.ensure_tables()
        sc = self.scratch
        sc.reset()
        self._pull_records(table, f"SELECT {quote_ident(TABLES[table].key[0])} FROM "
                                  f"{staging_table(table)}")
        counts = sc.versions.apply(table, sha256, profile, as_of, load_seq, reference_date)
        sc.push(SIGHTINGS, None)  # (versioning only adds sightings)
        self._push_records(table)
        sc.reset()
        return counts

    def loaded_from(self, sha256: str, profile: str) -> dict[str, int]:
        g = self._sightings()
        if g is None:
            return {}
        mine = g.filter((g.sha256 == sha256) & (g.profile == profile))
        expr = mine.group_by("record_table").aggregate(n=mine.count()).order_by("record_table")
        return {r["record_table"]: int(r["n"]) for r in self.store.to_pyarrow(expr).to_pylist()}

    def unload(self, sha256: str, profile: str, reference_date: dt.date | None) -> dict[str, int]:
        """Forget the file: its ledger rows, its sightings, the versions no sighting carries any
        more; the records it touched are rebuilt (in the scratch) from what remains."""
        store = self.store
        removed = self.loaded_from(sha256, profile)

        def mine(t: ir.Table) -> ir.BooleanValue:
            return (t.sha256 == sha256) & (t.profile == profile)

        for ledger in LEDGERS:
            if store.has_table(ledger):
                t = store.table(ledger)
                if store.execute(t.filter(mine(t)).limit(1).count()):
                    store.delete_rows(ledger, mine)
        if not removed:
            return {}
        sc = self.scratch
        sc.reset()
        g = store.table(SIGHTINGS)
        touched = store.to_pyarrow(g.filter(mine(g)).select("record_table", "record_id")
                                   .distinct())
        view = f"__ca_touched_{uuid.uuid4().hex}"
        sc.con.register(view, touched)
        try:
            for table in VERSIONED:
                if table in removed:
                    self._pull_records(table, f"SELECT record_id AS "
                                              f"{quote_ident(TABLES[table].key[0])} FROM {view} "
                                              f"WHERE record_table = {literal(table)}")
        finally:
            sc.con.unregister(view)
        done = sc.versions.unload(sha256, profile, reference_date)
        if done != removed:
            raise EngineError(f"internal error: unloading {sha256[:12]} removed {done} rows in "
                              f"the scratch, but the store has {removed}")
        store.delete_rows(SIGHTINGS, mine)
        for table in VERSIONED:
            if table in removed:
                self._push_records(table)
        sc.reset()
        return removed

    # -- the reference date: Ibis on the store ---------------------------------------------------
    def _rebuilt(self, table: str, reference_date: dt.date | None) -> ir.Table:
        """``table`` with each record that has sightings as its version in effect at the end of
        ``reference_date`` (records with none, written before versions, as they are)."""
        store, key = self.store, TABLES[table].key[0]
        t = store.table(table)
        g = store.table(SIGHTINGS)
        g = g.filter(g.record_table == table)
        sighted = g.select(g.record_id).distinct()
        keep = t.anti_join(sighted, t[key] == sighted.record_id)
        if reference_date is not None:
            end = dt.datetime.combine(reference_date + dt.timedelta(days=1), dt.time())
            g = g.filter(g.as_of < ibis.timestamp(end))
        w = ibis.window(group_by=g.record_id, order_by=[ibis.desc(g.as_of), ibis.desc(g.load_seq)])
        latest = (g.mutate(_ca_n=ibis.row_number().over(w)).filter(lambda s: s._ca_n == 0)
                  .select("record_id", _ca_h=g.version_hash))
        v = store.table(VERSIONED[table].name)
        now = (v.join(latest, [v[key] == latest.record_id, v.version_hash == latest._ca_h])
               .select(*TABLES[table].column_names))
        # (both sides nullable: Ibis refuses a union of required and nullable columns)
        schema = ibis.schema({c: ty.copy(nullable=True) for c, ty in t.schema().items()})
        return keep.cast(schema).union(now.cast(schema), distinct=False)

    def sync(self, reference_date: dt.date | None) -> bool:
        """Rebuild ``incidents`` and ``crimes`` (a rewrite of each) if they were built for
        another reference date; True if it did."""
        store = self.store
        if not store.has_table(STATE):
            return False
        rows = store.to_pyarrow(store.table(STATE)).to_pylist()
        if rows and rows[0]["reference_date"] == reference_date:
            return False
        if not rows and reference_date is None:
            return False
        with store.transaction():
            for table in VERSIONED:
                if store.has_table(table) and store.has_table(SIGHTINGS):
                    store.write(table, self._rebuilt(table, reference_date))
            self.record_reference_date(reference_date)
        return True

    def record_reference_date(self, reference_date: dt.date | None) -> None:
        """One row: the reference date and when (appended to an empty table, else the table of
        one row is written again, as DuckDB's DELETE and INSERT do)."""
        self.ensure_tables()
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        row = pa.table({"reference_date": [reference_date], "built_at": [now]},
                       schema=RECORD_STATE.arrow_schema())
        store = self.store
        empty = not store.execute(store.table(STATE).limit(1).count())
        store.write(STATE, row, mode="append" if empty else "replace")

    # -- reading: Ibis on the store --------------------------------------------------------------
    def history(self, table: str, record_ids: list[str]) -> pa.Table:
        """Every sighting of the records, oldest first, with the version's values and the file
        it came in (as :meth:`DuckDBRecordVersions.history`; an as-of of :data:`NO_TIME` is a
        version from before versions were kept)."""
        store, g = self.store, self._sightings()
        if g is None or not record_ids:
            return pa.table({})
        key = TABLES[table].key[0]
        ids = store.memtable(pa.table({"record_id": pa.array(record_ids, pa.string())}))
        g = g.filter(g.record_table == table).semi_join(ids, "record_id")
        v = store.table(VERSIONED[table].name)
        j = g.join(v, [v[key] == g.record_id, v.version_hash == g.version_hash])
        cols = [j.record_id, j.as_of, j.load_seq, j.sha256, j.profile]
        if store.has_table("ingest_files"):
            f = store.table("ingest_files")
            f = (f.group_by(_f_sha=f.sha256, _f_profile=f.profile)
                 .aggregate(file=f.file.arbitrary()))
            j = j.left_join(f, [j.sha256 == f._f_sha, j.profile == f._f_profile])
            cols = [j.record_id, j.as_of, j.load_seq, j.sha256, j.profile, j.file]
        else:
            cols.append(ibis.null("string").name("file"))
        expr = (j.select(*cols, j.version_hash, *(j[c] for c in TABLES[table].column_names))
                .order_by(["record_id", "as_of", "load_seq"]))
        return store.to_pyarrow(expr)

    def find_ids(self, table: str, reference: str) -> list[str]:
        """Ids of ``table`` equal to ``reference``, or (when none is) ending with it after a
        profile's prefix."""
        g = self._sightings()
        if g is None:
            return []
        g = g.filter(g.record_table == table)
        got = self.store.to_pyarrow(g.filter(g.record_id == reference).select("record_id")
                                    .distinct())
        if not got.num_rows:
            got = self.store.to_pyarrow(
                g.filter(g.record_id.endswith(reference)
                         & (g.record_id.length() > len(reference)))
                .select("record_id").distinct().order_by("record_id").limit(20))
        return got.column("record_id").to_pylist()

    def dangling_references(self, limit: int = 5) -> tuple[int, list[str]]:
        store = self.store
        if not (store.has_table("crimes") and store.has_table("incidents")):
            return 0, []
        c, i = store.table("crimes"), store.table("incidents")
        d = c.filter(c.incident_id.notnull()).anti_join(i, c.incident_id == i.incident_id)
        n = int(store.execute(d.count()))
        some = store.to_pyarrow(d.select("incident_id").distinct().order_by("incident_id")
                                .limit(int(limit)))
        return n, some.column("incident_id").to_pylist()


class _ScratchDuckDBLoader(DuckDBFileLoader):
    """The DuckDB loader on the scratch, pulling in the store's rows its key checks and
    updates read (see :meth:`DuckDBFileLoader._before_key_checks`)."""

    def __init__(self, scratch: Scratch, profile: Profile, offences: list[str],
                 hash_sql: Callable[[str], str]):
        super().__init__(scratch.con, profile, offences, hash_sql,
                         record_versions=scratch.versions)
        self.scratch = scratch
        self.direct: dict[str, bool] = {}  # tables written straight to: update mode?

    def _before_key_checks(self, table: str, update: bool, refs: bool) -> None:
        sc = self.scratch
        keys = list(TABLES[table].key)
        sc.pull(table, keys, "SELECT * FROM __ca_stage")
        if update and table in VERSIONED:  # (an update changes every version too)
            sc.pull(VERSIONED[table].name, keys, "SELECT * FROM __ca_stage")
        staged = [c for (c,) in self.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = '__ca_stage'"
        ).fetchall()]
        if refs and "incident_id" in staged:
            sc.pull("incidents", ["incident_id"], "SELECT incident_id FROM __ca_stage")
        self.direct[table] = self.direct.get(table, False) or update


class ScratchFileLoader(FileLoader):
    """Loads files through one profile into any engine's store: the DuckDB loader runs on the
    scratch of ``record_versions`` (a :class:`ScratchRecordVersions` of the same store, whose
    :meth:`~ScratchRecordVersions.apply` versions the rows this stages); the rows it writes
    straight to a table are merged into the store after each file."""

    def __init__(self, store: Engine, profile: Profile, offences: list[str],
                 hash_sql: Callable[[str], str],
                 record_versions: ScratchRecordVersions | None = None):
        self.store = store
        self.versions = record_versions or ScratchRecordVersions(store)
        self.scratch = self.versions.scratch
        self.inner = _ScratchDuckDBLoader(self.scratch, profile, offences, hash_sql)

    def load(self, src: SourceFile, path: Path, targets: list[Target],
             personal: set[str]) -> LoadedFile:
        sc = self.scratch
        sc.reset()
        self.inner.direct = {}
        with sc.engine.memory_cap(WORK_MEMORY):
            out = self.inner.load(src, path, targets, personal)
        if any(n != out.tables.get(t) for t, n in out.written.items()):
            return out  # (the ingest stage reports it, and nothing is merged)
        for table, update in self.inner.direct.items():
            key = TABLES[table].key[0] if len(TABLES[table].key) == 1 else None
            if update and table in VERSIONED:
                sc.push(VERSIONED[table].name, key)
            sc.push(table, key)
        sc.reset()
        return out


__all__ = ["NO_TIME", "Scratch", "ScratchFileLoader", "ScratchRecordVersions"]
