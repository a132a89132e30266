"""Versioned incident and crime records in DuckDB: what a file's rows change, set-wise.

A file's incident and crime rows are staged (``__ca_in_<table>``) instead of inserted. Each
row is then a *sighting* of its record: new, a new version (its content differs from the
version in effect at the file's as-of time), or an identical re-send. Every sighting is kept in
``record_sightings`` (narrow: id, version hash, as-of, file); each distinct content once per
record in ``crime_versions`` / ``incident_versions``. ``crimes`` and ``incidents`` hold, for
each record, the version of its latest sighting at or before the reference date, so every
stage reads them as before. Undoing a load deletes its sightings and rebuilds the records it
touched from what remains.

>>> import datetime as dt
>>> end_of_day(dt.date(2013, 2, 28))
"TIMESTAMP '2013-03-01 00:00:00'"
>>> end_of_day(None)
"TIMESTAMP 'infinity'"
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from crimeaudit.engine import duckdb_ingest as q
from crimeaudit.engine.base import RecordVersions
from crimeaudit.model.schema import RECORD_SIGHTINGS, RECORD_STATE, TABLES, VERSIONED

SIGHTINGS = RECORD_SIGHTINGS.name
STATE = RECORD_STATE.name
TOUCHED = "__ca_touched"
NOT_HASHED = ("source",)  # the file's label: the same values from two files are one version
LEDGERS = ("ingest_files", "quarantine", "ingest_exclusions")


def insert(con: Any, into: str, select: str) -> int:
    """``INSERT INTO into select``, unless the select has no rows; the rows inserted.

    Never an INSERT of no rows: in DuckDB 1.5.6, inside a transaction, an INSERT ... SELECT
    that inserts nothing makes a later INSERT of a row group or more (122,880 rows) into the
    same table vanish without an error (reproduced on plain DuckDB; see docs/decisions.md).
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE __ca_rows AS {select}")
    n = con.execute("SELECT count(*) FROM __ca_rows").fetchone()[0]
    if n:
        con.execute(f"INSERT INTO {into} SELECT * FROM __ca_rows")
    con.execute("DROP TABLE __ca_rows")
    return int(n)


def staging_table(table: str) -> str:
    return f"__ca_in_{table}"


def stage(con: Any, table: str) -> str:
    """An empty temporary table shaped like ``table`` for one file's rows; its name."""
    name = staging_table(table)
    # (IF NOT EXISTS: two targets of one file may feed the same table)
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} AS SELECT * FROM "
                f"{q.quote_ident(table)} LIMIT 0")
    return name


def end_of_day(day: dt.date | None) -> str:
    """The SQL instant just after ``day`` (sightings before it count; none: all)."""
    if day is None:
        return "TIMESTAMP 'infinity'"
    return f"TIMESTAMP '{(day + dt.timedelta(days=1)).isoformat()} 00:00:00'"


def content_hash(table: str, alias: str = "") -> str:
    """MD5 of a row's values (all but :data:`NOT_HASHED`), NULL distinct from ''."""
    pre = f"{alias}." if alias else ""
    parts = ", ".join(f"coalesce(CAST({pre}{q.quote_ident(c)} AS VARCHAR), chr(0))"
                      for c in TABLES[table].column_names if c not in NOT_HASHED)
    return f"md5(concat_ws(chr(31), {parts}))"


class DuckDBRecordVersions(RecordVersions):
    """Record versions on the store's DuckDB connection (inside the caller's transaction)."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.con = engine._con

    # -- tables -------------------------------------------------------------------------------
    def ensure_tables(self) -> None:
        if getattr(self, "_ensured", False):  # (each check lists the store's tables)
            return
        for t in (*VERSIONED.values(), RECORD_SIGHTINGS, RECORD_STATE):
            self.engine.create_empty(t.name, t.arrow_schema())
        self._ensured = True

    def _has_sightings(self) -> bool:
        return self.engine.has_table(SIGHTINGS)

    def next_load_seq(self) -> int:
        self.ensure_tables()
        return int(self.con.execute(f"SELECT coalesce(max(load_seq), 0) + 1 FROM {SIGHTINGS}"
                                    ).fetchone()[0])

    def staged_as_of(self, tables: list[str]) -> dt.datetime | None:
        """The latest timestamp in the staged rows of ``tables`` (the export's as-of time when
        the user gave none)."""
        parts = []
        for table in tables:
            cols = [c.name for c in TABLES[table].columns if c.type == "timestamp"]
            if cols:
                parts.append(f"SELECT max(greatest({', '.join(map(q.quote_ident, cols))})) AS m "
                             f"FROM {staging_table(table)}")
        if not parts:
            return None
        return self.con.execute(f"SELECT max(m) FROM ({' UNION ALL '.join(parts)})"
                                ).fetchone()[0]

    # -- loading ------------------------------------------------------------------------------
    def apply(self, table: str, sha256: str, profile: str, as_of: dt.datetime | None,
              load_seq: int, reference_date: dt.date | None) -> dict[str, int]:
        """Turn the staged rows of ``table`` into sightings and versions, rebuild the records
        they touch; the counts of rows that were new, a new version, identical."""
        self.ensure_tables()
        con, versions = self.con, VERSIONED[table].name
        key = q.quote_ident(TABLES[table].key[0])
        cols = ", ".join(q.quote_ident(c) for c in TABLES[table].column_names)
        staged = staging_table(table)
        lit = q.literal
        when = "TIMESTAMP '-infinity'" if as_of is None else f"TIMESTAMP '{as_of.isoformat()}'"
        con.execute(f"CREATE OR REPLACE TEMP TABLE __ca_vin AS SELECT *, "
                    f"{content_hash(table)} AS version_hash FROM {staged}")
        self._adopt_unversioned(table, "__ca_vin")
        # The version in effect just before this file (prev), and just after (next).
        mine = (f"FROM {SIGHTINGS} g WHERE g.record_table = {lit(table)} AND g.record_id IN "
                f"(SELECT {key} FROM __ca_vin)")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __ca_vnear AS SELECT record_id, "
            f"arg_max(version_hash, struct_pack(a := as_of, s := load_seq)) FILTER (WHERE as_of "
            f"< {when} OR (as_of = {when} AND load_seq < {int(load_seq)})) AS prev, "
            f"arg_min(version_hash, struct_pack(a := as_of, s := load_seq)) FILTER (WHERE as_of "
            f"> {when} OR (as_of = {when} AND load_seq > {int(load_seq)})) AS next "
            f"{mine} GROUP BY record_id")
        new, identical, total = con.execute(
            "SELECT count(*) FILTER (WHERE n.record_id IS NULL), count(*) FILTER (WHERE "
            "n.prev = v.version_hash OR (n.prev IS NULL AND n.next = v.version_hash)), count(*) "
            f"FROM __ca_vin v LEFT JOIN __ca_vnear n ON n.record_id = v.{key}").fetchone()
        if total:  # (see insert(): never an INSERT of no rows)
            con.execute(f"INSERT INTO {SIGHTINGS} SELECT {lit(table)}, {key}, version_hash, "
                        f"{when}, {int(load_seq)}, {lit(sha256)}, {lit(profile)} FROM __ca_vin")
        if total and new == total:  # all new (a first load): no need to look for versions
            con.execute(f"INSERT INTO {versions} ({cols}, version_hash) SELECT {cols}, "
                        f"version_hash FROM __ca_vin")
        else:
            insert(con, f"{versions} ({cols}, version_hash)",
                   f"SELECT {cols}, version_hash FROM __ca_vin v WHERE NOT EXISTS (SELECT 1 "
                   f"FROM {versions} e WHERE e.{key} = v.{key} AND "
                   f"e.version_hash = v.version_hash)")
        # Records seen before are rebuilt from their sightings; new ones go straight in (when
        # the export is not after the reference date).
        cutoff = (None if reference_date is None else
                  dt.datetime.combine(reference_date + dt.timedelta(days=1), dt.time()))
        if new and (as_of is None or cutoff is None or as_of < cutoff):
            con.execute(f"INSERT INTO {q.quote_ident(table)} ({cols}) SELECT {cols} FROM "
                        f"__ca_vin v" + ("" if new == total else
                                         f" WHERE NOT EXISTS (SELECT 1 FROM __ca_vnear n "
                                         f"WHERE n.record_id = v.{key})"))
        if total - new:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {TOUCHED} AS SELECT {lit(table)} AS "
                        f"record_table, record_id FROM __ca_vnear")
            self._rebuild(table, reference_date, touched=True)
        for t in ("__ca_vin", "__ca_vnear", TOUCHED, staged):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        return {"new": int(new), "changed": int(total - new - identical),
                "identical": int(identical)}

    def _adopt_unversioned(self, table: str, incoming: str) -> None:
        """Records in ``table`` with no sighting (a store from before versions, or rows written
        directly) that ``incoming`` sends again: their row becomes their first version, as of
        -infinity and from no file, so that a re-send compares with it and no unload drops it."""
        con, versions = self.con, VERSIONED[table].name
        key = q.quote_ident(TABLES[table].key[0])
        cols = ", ".join(q.quote_ident(c) for c in TABLES[table].column_names)
        unversioned = (f"FROM {q.quote_ident(table)} t WHERE t.{key} IN (SELECT {key} FROM "
                       f"{incoming}) AND NOT EXISTS (SELECT 1 FROM {SIGHTINGS} g WHERE "
                       f"g.record_table = {q.literal(table)} AND g.record_id = t.{key})")
        # One look first: after the first load there are none, and no temp table is needed.
        if not con.execute(f"SELECT EXISTS (SELECT 1 {unversioned})").fetchone()[0]:
            return
        con.execute(f"CREATE OR REPLACE TEMP TABLE __ca_vold AS SELECT *, "
                    f"{content_hash(table, 't')} AS version_hash {unversioned}")
        con.execute(f"INSERT INTO {versions} ({cols}, version_hash) SELECT {cols}, "
                    f"version_hash FROM __ca_vold")
        con.execute(f"INSERT INTO {SIGHTINGS} SELECT {q.literal(table)}, {key}, "
                    f"version_hash, TIMESTAMP '-infinity', 0, NULL, NULL FROM __ca_vold")
        con.execute("DROP TABLE __ca_vold")

    def _rebuild(self, table: str, reference_date: dt.date | None, touched: bool) -> None:
        """Put in ``table`` the version in effect at the reference date of each record that has
        sightings (``touched``: only those in the touched list). A record first seen after the
        reference date is not in it at all."""
        con, versions = self.con, VERSIONED[table].name
        key = q.quote_ident(TABLES[table].key[0])
        cols = ", ".join(q.quote_ident(c) for c in TABLES[table].column_names)
        vcols = ", ".join(f"v.{q.quote_ident(c)}" for c in TABLES[table].column_names)
        lit = q.literal(table)
        ids = (f"(SELECT record_id FROM {TOUCHED} WHERE record_table = {lit})" if touched
               else f"(SELECT record_id FROM {SIGHTINGS} WHERE record_table = {lit})")
        con.execute(f"DELETE FROM {q.quote_ident(table)} WHERE {key} IN {ids}")
        insert(con, f"{q.quote_ident(table)} ({cols})",
               f"SELECT {vcols} FROM (SELECT record_id, arg_max(version_hash, struct_pack(a := "
               f"as_of, s := load_seq)) AS h FROM {SIGHTINGS} WHERE record_table = {lit} AND "
               f"record_id IN {ids} AND as_of < {end_of_day(reference_date)} GROUP BY "
               f"record_id) s JOIN {versions} v ON v.{key} = s.record_id AND "
               f"v.version_hash = s.h")

    def update_versions(self, table: str, sets: str, on: str, stage: str) -> None:
        """Apply an update-mode target (outcomes joined onto loaded crimes) to every version
        of the records it updates too, so that a rebuild keeps it."""
        if table in VERSIONED and self.engine.has_table(VERSIONED[table].name):
            self.con.execute(f"UPDATE {VERSIONED[table].name} t SET {sets} FROM {stage} s "
                             f"WHERE {on} AND s.__reason IS NULL")

    # -- undoing ------------------------------------------------------------------------------
    def loaded_from(self, sha256: str, profile: str) -> dict[str, int]:
        """Rows of each record table that the file's load brought (its sightings)."""
        if not self._has_sightings():
            return {}
        rows = self.con.execute(f"SELECT record_table, count(*) FROM {SIGHTINGS} WHERE "
                                f"sha256 = ? AND profile = ? GROUP BY 1 ORDER BY 1",
                                [sha256, profile]).fetchall()
        return {t: int(n) for t, n in rows}

    def unload(self, sha256: str, profile: str, reference_date: dt.date | None) -> dict[str, int]:
        """Forget the file: its ledger rows (ingest_files, quarantine, exclusions), its
        sightings, the versions no sighting carries any more; rebuild the records it touched (a
        record only it brought leaves the store)."""
        removed = self.loaded_from(sha256, profile)
        con = self.con
        for ledger in LEDGERS:  # the file's line in the ledger, its quarantined and excluded rows
            if self.engine.has_table(ledger):
                con.execute(f"DELETE FROM {ledger} WHERE sha256 = ? AND profile = ?",
                            [sha256, profile])
        if not removed:
            return {}
        con.execute(f"CREATE OR REPLACE TEMP TABLE {TOUCHED} AS SELECT DISTINCT record_table, "
                    f"record_id FROM {SIGHTINGS} WHERE sha256 = ? AND profile = ?",
                    [sha256, profile])
        con.execute(f"DELETE FROM {SIGHTINGS} WHERE sha256 = ? AND profile = ?",
                    [sha256, profile])
        for table, versions in VERSIONED.items():
            if table not in removed:
                continue
            key = q.quote_ident(TABLES[table].key[0])
            con.execute(
                f"DELETE FROM {versions.name} v WHERE v.{key} IN (SELECT record_id FROM "
                f"{TOUCHED} WHERE record_table = {q.literal(table)}) AND NOT EXISTS (SELECT 1 "
                f"FROM {SIGHTINGS} g WHERE g.record_table = {q.literal(table)} AND "
                f"g.record_id = v.{key} AND g.version_hash = v.version_hash)")
            self._rebuild(table, reference_date, touched=True)
        con.execute(f"DROP TABLE IF EXISTS {TOUCHED}")
        return removed

    # -- the reference date -------------------------------------------------------------------
    def sync(self, reference_date: dt.date | None) -> bool:
        """Rebuild ``incidents`` and ``crimes`` if they were built for another reference date
        (the project's setting changed); True if it did."""
        if not self.engine.has_table(STATE):
            return False
        row = self.con.execute(f"SELECT reference_date FROM {STATE}").fetchall()
        if row and row[0][0] == reference_date:
            return False
        if not row and reference_date is None:
            return False
        with self.engine.transaction():
            for table in VERSIONED:
                if self.engine.has_table(table):
                    self._rebuild(table, reference_date, touched=False)
            self.record_reference_date(reference_date)
        return True

    def record_reference_date(self, reference_date: dt.date | None) -> None:
        self.ensure_tables()
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.con.execute(f"DELETE FROM {STATE}")
        self.con.execute(f"INSERT INTO {STATE} VALUES (?, ?)", [reference_date, now])

    # -- reading ------------------------------------------------------------------------------
    def history(self, table: str, record_ids: list[str]) -> pa.Table:
        """Every sighting of the records, oldest first, with the version's values and the
        file (``ingest_files``) it came in."""
        if not self._has_sightings() or not record_ids:
            return pa.table({})
        versions = VERSIONED[table].name
        key = q.quote_ident(TABLES[table].key[0])
        vcols = ", ".join(f"v.{q.quote_ident(c)}" for c in TABLES[table].column_names)
        files = ("(SELECT sha256, profile, any_value(file) AS file FROM ingest_files GROUP BY "
                 "ALL)" if self.engine.has_table("ingest_files")
                 else "(SELECT NULL AS sha256, NULL AS profile, NULL AS file)")
        return self.con.execute(
            f"SELECT g.record_id, g.as_of, g.load_seq, g.sha256, g.profile, f.file, "
            f"g.version_hash, {vcols} FROM {SIGHTINGS} g JOIN {versions} v ON v.{key} = "
            f"g.record_id AND v.version_hash = g.version_hash LEFT JOIN {files} f ON "
            f"f.sha256 = g.sha256 AND f.profile = g.profile WHERE g.record_table = ? AND "
            f"g.record_id IN (SELECT unnest(?)) ORDER BY g.record_id, g.as_of, g.load_seq",
            [table, record_ids]).fetch_arrow_table()

    def find_ids(self, table: str, reference: str) -> list[str]:
        """Ids of ``table`` equal to ``reference``, or (when none is) ending with it after a
        profile's prefix (``PUK-`` + the source's own reference)."""
        if not self._has_sightings():
            return []
        rows = self.con.execute(
            f"SELECT DISTINCT record_id FROM {SIGHTINGS} WHERE record_table = ? AND "
            f"record_id = ?", [table, reference]).fetchall()
        if not rows:
            rows = self.con.execute(
                f"SELECT DISTINCT record_id FROM {SIGHTINGS} WHERE record_table = ? AND "
                f"suffix(record_id, ?) AND length(record_id) > length(?) ORDER BY 1 LIMIT 20",
                [table, reference, reference]).fetchall()
        return [r[0] for r in rows]

    def dangling_references(self, limit: int = 5) -> tuple[int, list[str]]:
        """Crimes (as of the reference date) pointing at an incident not in the store: how
        many, and the first few incident ids they name."""
        if not (self.engine.has_table("crimes") and self.engine.has_table("incidents")):
            return 0, []
        where = ("FROM crimes c WHERE c.incident_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                 "incidents i WHERE i.incident_id = c.incident_id)")
        n = self.con.execute(f"SELECT count(*) {where}").fetchone()[0]
        some = [r[0] for r in self.con.execute(
            f"SELECT DISTINCT c.incident_id {where} ORDER BY 1 LIMIT {int(limit)}").fetchall()]
        return int(n), some


__all__ = ["VERSIONED", "DuckDBRecordVersions", "insert", "stage", "staging_table"]
