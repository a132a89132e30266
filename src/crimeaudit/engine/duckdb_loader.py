"""Loading one input file into the DuckDB store: read as text, convert and check per target,
split, write; every statement is set-wise SQL built by :mod:`crimeaudit.engine.duckdb_ingest`.

The ingest stage says what to load; this module is how DuckDB does it fast (temp tables of the
file as read and of the verdicts of each target).

The columns the stage names as hidden (personal ones, and those the profile does not map) are
pseudonymised, or dropped where no target reads them, *as the file is read*, before any table
holds them: no temp table, and so no spill file DuckDB may write under the project folder when
memory runs short (which a killed process leaves behind), ever holds a clear personal value.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crimeaudit.engine import duckdb_ingest as q
from crimeaudit.engine import duckdb_versions as versions
from crimeaudit.engine.base import FileLoader, LoadedFile
from crimeaudit.model.codes import UNCLASSIFIED
from crimeaudit.model.schema import OFFENCE_COLUMNS, TABLES

if TYPE_CHECKING:
    from crimeaudit.ingestion.profile import Profile, Target
    from crimeaudit.ingestion.source import SourceFile

LOOKUP_SAMPLE = 100_000  # rows whose distinct personal values decide hashing once per value


def _fate(target: Target, column: str, cw: Any) -> str:
    """What becomes of a value a crosswalk does not list, in words."""
    if cw.default is not None:
        return f"default {cw.default!r}"
    if cw.keep:
        return "kept as published"
    if cw.strict:
        return "quarantined"
    if (target.table, column) in OFFENCE_COLUMNS:
        return UNCLASSIFIED
    return "left empty"


class DuckDBFileLoader(FileLoader):
    """Loads files through one profile on one DuckDB connection (inside the ingest's
    transaction, so the temp tables and the writes go together)."""

    def __init__(self, con: Any, profile: Profile, offences: list[str],
                 hash_sql: Callable[[str], str], record_versions: Any = None):
        self.con = con
        self.versions = record_versions  # DuckDBRecordVersions: update targets reach versions
        self.profile = profile
        self.codes = offences
        self.hash_sql = hash_sql
        self._salt = secrets.token_hex(16)

    def _hidden_sql(self, columns: list[str], hidden: set[str], used: set[str],
                    repeated: set[str] = frozenset()) -> str:
        """The file's columns as they enter the engine: a ``hidden`` one a target reads as the
        pseudonym of its trimmed value (``repeated`` ones first as a surrogate, see
        :meth:`_pseudonymise_repeated`), one no target reads as nothing at all (a column
        nobody mapped is neither read nor hashed)."""
        out = []
        for c in columns:
            name = q.quote_ident(c)
            if c not in hidden:
                out.append(name)
            elif c in repeated:
                out.append(f"{self._surrogate(q.trimmed(name))} AS {name}")
            elif c in used:
                out.append(f"{self.hash_sql(q.trimmed(name))} AS {name}")
            else:
                out.append(f"CAST(NULL AS VARCHAR) AS {name}")
        return ", ".join(out)

    def _surrogate(self, value: str) -> str:
        return (f"CASE WHEN {value} IS NULL THEN NULL ELSE "
                f"CAST(hash({value} || {q.literal(self._salt)}) AS VARCHAR) END")

    def _repeated(self, sample: str, columns: list[str]) -> set[str]:
        """Those of ``columns`` whose values repeat (officers, not victims), judged on the first
        rows: for them hashing each distinct value once pays (a keyed hash costs microseconds
        a value, and officers repeat thousands of times); the choice changes the cost only."""
        if not columns:
            return set()
        trimmed = [q.trimmed(q.quote_ident(c)) for c in columns]
        row = self.con.execute(
            "SELECT count(*), " + ", ".join(f"approx_count_distinct({t})" for t in trimmed)
            + f" FROM (SELECT * FROM {sample} LIMIT {LOOKUP_SAMPLE})").fetchone()
        return {c for c, distinct in zip(columns, row[1:], strict=True) if distinct * 2 <= row[0]}

    def _pseudonymise_repeated(self, source: str, repeated: set[str]) -> bool:
        """Replace the surrogates of ``repeated`` columns in ``__ca_raw`` by pseudonyms, each
        distinct value hashed once; False (nothing changed) if two values share a surrogate.

        The surrogate (a 64-bit hash of the value and a random salt that lives only in this
        process) keeps clear values out of the table as it is read, yet lets the pseudonyms be
        joined in afterwards without disturbing the table's order (which numbers the lines).
        Only the distinct values pass through memory in clear, never into a table.
        """
        con = self.con
        for c in sorted(repeated):
            t = q.trimmed(q.quote_ident(c))
            con.execute("DROP TABLE IF EXISTS __ca_pl")
            con.execute(f"CREATE TEMP TABLE __ca_pl AS SELECT {self._surrogate('__v')} AS __s, "
                        f"{self.hash_sql('__v')} AS __p FROM (SELECT DISTINCT {t} AS __v "
                        f"FROM {source}) WHERE __v IS NOT NULL")
            if not con.execute("SELECT count(*) = count(DISTINCT __s) FROM __ca_pl").fetchone()[0]:
                con.execute("DROP TABLE __ca_pl")
                return False
            name = q.quote_ident(c)
            con.execute(f"UPDATE __ca_raw SET {name} = l.__p FROM __ca_pl l "
                        f"WHERE __ca_raw.{name} = l.__s")
        con.execute("DROP TABLE IF EXISTS __ca_pl")
        return True

    def _read(self, src: SourceFile, path: Path, hidden: set[str],
              used: set[str]) -> list[tuple[int, str, str, str]]:
        """Create temp view __ca_src (all text, ``__rn`` = the record's physical line, header
        = line 1; Parquet: the row number) and return the lines that are not records.

        A file the ingest stage found clean is read by DuckDB's own CSV reader (fast, in
        parallel), and must give exactly the records the stage counted; any other file, or a
        clean one where the count differs, is split into records by the stage's
        ``src.split()`` and streamed in as Arrow batches, so a damaged line costs that line
        only. Neither writes a copy of the file anywhere.
        """
        con = self.con
        con.execute("DROP VIEW IF EXISTS __ca_src")
        con.execute("DROP TABLE IF EXISTS __ca_raw")
        columns = list(src.columns)
        cols = self._hidden_sql(columns, hidden, used)
        if src.format == "parquet" or src.clean:
            # Files that can be read again: repeated personal values hashed once each.
            sql = (q.read_parquet_sql(str(path), src.columns) if src.format == "parquet"
                   else q.read_csv_sql(str(path), src.columns, src.delimiter))
            repeated = self._repeated(f"({sql})", sorted(hidden & used))
            if repeated:
                cols = self._hidden_sql(columns, hidden, used, repeated)
        if src.format == "parquet":
            con.execute(f"CREATE TEMP TABLE __ca_raw AS SELECT __rn, {cols} FROM ({sql})")
            if repeated and not self._pseudonymise_repeated(f"({sql})", repeated):
                con.execute("DROP TABLE __ca_raw")
                cols = self._hidden_sql(columns, hidden, used)
                con.execute(f"CREATE TEMP TABLE __ca_raw AS SELECT __rn, {cols} FROM ({sql})")
            con.execute("CREATE TEMP VIEW __ca_src AS SELECT * FROM __ca_raw")
            return []
        if src.clean:
            # rowid keeps the file's record order (insertion order is preserved), so it
            # numbers the records without a window over the whole file.
            con.execute(f"CREATE TEMP TABLE __ca_raw AS SELECT {cols} FROM ({sql})")
            # (rows written inside a transaction have rowids from a high offset: subtract it)
            first, n = con.execute("SELECT coalesce(min(rowid), 0), count(*) FROM __ca_raw"
                                   ).fetchone()
            if n == src.records and (
                    not repeated or self._pseudonymise_repeated(f"({sql})", repeated)):
                con.execute(f"CREATE TEMP VIEW __ca_src AS SELECT rowid - {int(first)} + 2 "
                            f"AS __rn, * FROM __ca_raw")
                return []
            con.execute("DROP TABLE __ca_raw")
            cols = self._hidden_sql(columns, hidden, used)
        split = src.split(self.profile.multiline_fields)
        con.register("__ca_arrow", split.reader())
        try:
            con.execute(f"CREATE TEMP TABLE __ca_raw AS SELECT __rn, {cols} FROM __ca_arrow")
        finally:
            con.unregister("__ca_arrow")
        con.execute("CREATE TEMP VIEW __ca_src AS SELECT * FROM __ca_raw")
        return list(split.rejects)

    def _resolve(self, target: Target, source: str, out: LoadedFile
                 ) -> tuple[dict[str, Any], list[tuple[str, list[str], str]]]:
        """The profile's crosswalks as exact maps of the values this file holds, and its
        exclusion rules as the values they exclude: normalisation and patterns are the
        profile's business (Python), applied once per distinct value; the SQL only compares.
        Records in ``out.unmapped`` the values each crosswalk does not list, with their rows."""
        probe = q.TargetSQL(target, self.profile.crosswalks, self.codes, set(), self.hash_sql,
                            "", "")
        clean, cond = q.TargetSQL._clean(source), probe.condition()
        exclusions = []
        for rule in target.exclude:
            col = q.quote_ident(rule.column)
            values = [str(v) for (v,) in self.con.execute(
                f"SELECT DISTINCT {col} FROM ({clean}) WHERE {cond} AND {col} IS NOT NULL"
            ).fetchall()]
            exclusions.append((rule.column, sorted(v for v in values if rule.matches(v)),
                               rule.reason))
        # Values of excluded rows are not gaps in a crosswalk: they are out of scope.
        kept = " AND ".join([cond] + [
            f"coalesce({q.quote_ident(c)} NOT IN ({', '.join(q.literal(v) for v in vs)}), true)"
            for c, vs, _ in exclusions if vs])
        seen: dict[str, dict[str, dict[str, int]]] = {}
        for name, spec in target.columns.items():
            if not spec.crosswalk or spec.row_id:
                continue
            raw = probe._raw(spec)
            rows = self.con.execute(f"SELECT {raw} AS v, count(*) FROM ({clean}) WHERE {kept} "
                                    f"AND {raw} IS NOT NULL GROUP BY 1").fetchall()
            seen.setdefault(spec.crosswalk, {})[name] = {str(v): int(n) for v, n in rows}
        crosswalks = dict(self.profile.crosswalks)
        for cw_name, by_column in seen.items():
            values = sorted({v for counts in by_column.values() for v in counts})
            cw = crosswalks[cw_name]
            crosswalks[cw_name], unlisted = cw.resolved(values)
            missing = set(unlisted)
            for name, counts in by_column.items():
                gaps = {v: n for v, n in counts.items() if v in missing}
                if gaps:
                    key = f"{target.table}.{name} ({cw_name}) -> {_fate(target, name, cw)}"
                    into = out.unmapped.setdefault(key, {})
                    for v, n in gaps.items():
                        into[v] = into.get(v, 0) + n
        return crosswalks, exclusions

    def _excluded(self, table: str) -> list[tuple[str, str, str, str, int, int]]:
        """The staged rows a rule excluded, counted by column, reason and value."""
        e, sep = q.literal(q.EXCLUDED), q.literal(q.SEP)
        rows = self.con.execute(
            f"SELECT split_part(substr(__reason, 2), {sep}, 1), split_part(__reason, {sep}, 2), "
            f"split_part(__reason, {sep}, 3), count(*), min(__rn) FROM __ca_stage "
            f"WHERE prefix(__reason, {e}) GROUP BY 1, 2, 3 ORDER BY 5").fetchall()
        return [(table, c, v, r, int(n), int(first)) for c, r, v, n, first in rows]

    def _row_ids(self, source: str, columns: list[str]) -> str:
        """A view of ``source`` with ``__ca_rowid``: the id of a row that has none of its own.

        The keyed hash of the row's whole content (so it never depends on the file's name and
        reveals nothing), then its occurrence among identical rows of the file (two identical
        anti-social behaviour reports in one month and place are two incidents). The same rows
        ingested again under any name get the same ids, so they are caught as duplicates.
        """
        con = self.con
        content = "concat_ws(chr(31), " + ", ".join(
            f"coalesce({q.trimmed(q.quote_ident(c))}, '')" for c in columns) + ")"
        con.execute("DROP TABLE IF EXISTS __ca_ids")
        con.execute("DROP VIEW IF EXISTS __ca_srcid")
        con.execute(
            "CREATE TEMP TABLE __ca_ids AS SELECT __rn AS __ca_idrn, substr(__h, 3) || '-' || "
            "CAST(row_number() OVER (PARTITION BY __h ORDER BY __rn) AS VARCHAR) AS __ca_rowid "
            f"FROM (SELECT __rn, {self.hash_sql(content)} AS __h FROM {source})")
        con.execute(f"CREATE TEMP VIEW __ca_srcid AS SELECT s.*, i.__ca_rowid FROM {source} s "
                    f"JOIN __ca_ids i ON i.__ca_idrn = s.__rn")
        return "__ca_srcid"

    def _numbered_copies(self, source: str, columns: list[str]) -> str:
        """A view of ``source`` where a value of ``columns`` repeated within the file is marked
        on its second and later rows (file order): ``abc``, ``abc~copy2``, ``abc~copy3``.

        For sources that publish one row per record but repeat some ids (data.police.uk's
        Crime IDs): every row is loaded, as its own record, and the marker says which are
        copies. Values are compared trimmed; empty values stay empty.
        """
        from crimeaudit.ingestion.profile import COPY_MARK

        con = self.con
        parts = []
        for k, c in enumerate(columns):
            v = q.trimmed(q.quote_ident(c))
            n = f"row_number() OVER (PARTITION BY {v} ORDER BY __rn)"
            parts.append(f"CASE WHEN {v} IS NULL OR {n} = 1 THEN {q.quote_ident(c)} ELSE {v} "
                         f"|| {q.literal(COPY_MARK)} || CAST({n} AS VARCHAR) END AS __ca_c{k}")
        con.execute("DROP VIEW IF EXISTS __ca_srccp")
        con.execute("DROP TABLE IF EXISTS __ca_copies")
        con.execute(f"CREATE TEMP TABLE __ca_copies AS SELECT __rn AS __ca_cprn, "
                    f"{', '.join(parts)} FROM {source}")
        replace = ", ".join(f"c.__ca_c{k} AS {q.quote_ident(c)}" for k, c in enumerate(columns))
        con.execute(f"CREATE TEMP VIEW __ca_srccp AS SELECT s.* REPLACE ({replace}) "
                    f"FROM {source} s JOIN __ca_copies c ON c.__ca_cprn = s.__rn")
        return "__ca_srccp"

    def _before_key_checks(self, table: str, update: bool, refs: bool) -> None:
        """Called once ``__ca_stage`` holds the keys of the rows a target writes straight into
        ``table`` (an update, or a table that is not versioned), before the key checks read
        ``table`` (and ``incidents`` if ``refs``). Nothing to do here, where they are the
        store's own tables; a loader that works on a copy of part of the store
        (:mod:`crimeaudit.engine.scratch_ingest`) copies in the rows those keys name."""

    def load(self, src: SourceFile, path: Path, targets: list[Target],
             personal: set[str]) -> LoadedFile:
        """Load one file; ``personal``: the columns pseudonymised as the file is read (the
        targets then see pseudonyms, and quarantined text shows them as they are)."""
        con = self.con
        out = LoadedFile()
        for name in versions.VERSIONED:  # whatever an earlier file that failed left staged
            con.execute(f"DROP TABLE IF EXISTS {versions.staging_table(name)}")
        file_cols = list(src.columns)
        used = self.profile.columns_read(file_cols, targets)
        out.rejects = self._read(src, path, personal, used)
        source = "__ca_src"
        if self.profile.unpivot:
            u = self.profile.unpivot
            sql = q.unpivot_sql("__ca_src", file_cols, u.pattern, u.name, u.value)
            if not sql:
                raise ValueError(f"{src.path}: no column matches {u.pattern!r}: the ingest "
                                 f"stage checks this before loading")
            con.execute("DROP TABLE IF EXISTS __ca_long")
            con.execute(f"CREATE TEMP TABLE __ca_long AS {sql}")
            source = "__ca_long"
        n_rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        out.read = int(n_rows) + len(out.rejects)
        label = src.path.name
        if source == "__ca_src" and any(s.row_id for t in targets for s in t.columns.values()):
            source = self._row_ids(source, file_cols)
        copied = sorted({s.source for t in targets for s in t.columns.values()
                         if s.copies and isinstance(s.source, str) and s.source in file_cols})
        if copied and source in ("__ca_src", "__ca_srcid"):
            source = self._numbered_copies(source, copied)
        raw_text = q.raw_text_sql(file_cols, src.delimiter, personal - used)
        for target in targets:
            table = TABLES[target.table]
            crosswalks, exclusions = self._resolve(target, source, out)
            builder = q.TargetSQL(target, crosswalks, self.codes, personal,
                                  self.hash_sql, label,
                                  self.profile.name if table.name == "counts"
                                  else f"{self.profile.name}:{label}",
                                  decimal=self.profile.decimal,
                                  plausible=self.profile.plausible, exclusions=exclusions)
            update = target.mode == "update"
            # Incidents and crimes are versioned: their rows are staged for the ingest stage
            # to store as versions, so an id already in the store is a re-send (not an
            # error), and a crime may point at an incident a later file brings.
            dest = (table.name if update or table.name not in versions.VERSIONED
                    else versions.stage(con, table.name))
            refs = (self.profile.check_incident_refs and table.name == "crimes"
                    and dest == table.name)
            names = [c for c in table.column_names if not update or c in target.columns]
            con.execute("DROP TABLE IF EXISTS __ca_stage")
            # Updates (outcomes joined onto loaded crimes), unpivoted rows (several per line,
            # so the line number does not name one) and rows given ids are small: stage every
            # value.
            staged_values = update or source != "__ca_src"
            if staged_values:
                con.execute("CREATE TEMP TABLE __ca_stage AS " + builder.select(source, file_cols))
            else:
                # Only the verdicts are staged (row number, key, reason): the values are
                # converted again on the way into the table, which is cheaper than
                # materialising every converted column of the file first.
                keep = list(dict.fromkeys([*table.key, *(["incident_id"] if refs else [])]))
                con.execute("CREATE TEMP TABLE __ca_stage AS "
                            + builder.check_select(source, keep))
            if dest == table.name:
                self._before_key_checks(table.name, update, refs)
            has_rows = dest == table.name and con.execute(
                f"SELECT count(*) > 0 FROM {q.quote_ident(table.name)}").fetchone()[0]
            for sql in q.key_checks(table.name, table.key, bool(has_rows), refs, update):
                con.execute(sql)
            staged, loaded, excluded = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE __reason IS NULL), count(*) FILTER "
                f"(WHERE prefix(__reason, {q.literal(q.EXCLUDED)})) FROM __ca_stage").fetchone()
            if excluded:
                out.excluded += self._excluded(table.name)
            for cond, value, what in builder.adjustments():
                rows = con.execute(
                    f"SELECT {value}, count(*) FROM ({q.TargetSQL._clean(source)}) s WHERE "
                    f"{builder.condition()} AND {cond} AND s.__rn IN (SELECT __rn FROM "
                    f"__ca_stage WHERE __reason IS NULL) GROUP BY 1").fetchall()
                if rows:
                    into = out.adjusted.setdefault(f"{table.name}.{what}", {})
                    for v, n in rows:
                        into[str(v)] = into.get(str(v), 0) + int(n)
            out.tables[table.name] = int(loaded)
            out.loaded += int(loaded)
            cols = ", ".join(q.quote_ident(c) for c in names)
            if update:
                sets = ", ".join(f"{q.quote_ident(c)} = s.{q.quote_ident(c)}" for c in names
                                 if c not in table.key)
                on = " AND ".join(f"t.{q.quote_ident(c)} = s.{q.quote_ident(c)}"
                                  for c in table.key)
                con.execute(f"UPDATE {q.quote_ident(table.name)} t SET {sets} FROM __ca_stage s "
                            f"WHERE {on} AND s.__reason IS NULL")
                if self.versions is not None:
                    self.versions.update_versions(table.name, sets, on, "__ca_stage")
            elif not loaded:
                # No INSERT of no rows: in DuckDB 1.5.6 it makes a later INSERT of a row group
                # or more into the same table, in the same transaction, vanish without an error
                # (see versions.insert).
                out.written[table.name] = 0
            elif staged_values:
                con.execute(f"INSERT INTO {q.quote_ident(dest)} ({cols}) "
                            f"SELECT {cols} FROM __ca_stage WHERE __reason IS NULL")
            else:
                # With nothing quarantined there is no need to match rows to verdicts.
                verdicts = "__ca_stage" if staged != loaded else None
                inserted = con.execute(
                    f"INSERT INTO {q.quote_ident(dest)} ({cols}) "
                    + builder.insert_select(source, names, verdicts)).fetchone()[0]
                out.written[table.name] = int(inserted)
                if inserted != loaded:
                    return out  # the ingest stage reports it and the transaction rolls back
            if staged == loaded + excluded:
                continue  # nothing quarantined: skip the join back to the rows as read
            out.quarantine.append(con.execute(
                f"SELECT s.__rn AS rn, {q.literal(table.name)} AS tbl, split_part(s.__reason, "
                f"chr(31), 1) AS col, split_part(s.__reason, chr(31), 2) AS reason, "
                f" {raw_text} AS raw FROM __ca_stage s "
                f"JOIN __ca_src src ON src.__rn = s.__rn "
                f"WHERE s.__reason IS NOT NULL AND NOT prefix(s.__reason, "
                f"{q.literal(q.EXCLUDED)})").fetch_arrow_table())
        conds = [q.TargetSQL(t, {}, [], set(), None, "", "").condition(untrimmed=True)
                 for t in targets]
        if all(t.when is not None for t in targets):
            unrouted = f"NOT ({' OR '.join(f'({c})' for c in conds)})"
            out.quarantine.append(con.execute(
                f"SELECT __rn AS rn, NULL AS tbl, NULL AS col, 'row matches none of the "
                f"profile''s tables' AS reason, {raw_text} AS raw FROM {source} src "
                f"WHERE {unrouted}").fetch_arrow_table())
        for v in ("__ca_srccp", "__ca_srcid", "__ca_src"):
            con.execute(f"DROP VIEW IF EXISTS {v}")
        for t in ("__ca_raw", "__ca_long", "__ca_stage", "__ca_ids", "__ca_copies"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        return out


__all__ = ["DuckDBFileLoader", "LOOKUP_SAMPLE"]
