"""Loading one input file into the DuckDB store: read as text, convert and check per target,
split, write; every statement is set-wise SQL built by :mod:`crimeaudit.engine.duckdb_ingest`.

The ingest stage says what to load; this module is how DuckDB does it fast (temp tables of the
file as read, of the verdicts of each target and of pseudonyms hashed once per distinct value).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crimeaudit.engine import duckdb_ingest as q
from crimeaudit.engine.base import FileLoader, LoadedFile
from crimeaudit.model.schema import TABLES

if TYPE_CHECKING:
    from crimeaudit.ingestion.profile import Profile, Target
    from crimeaudit.ingestion.source import SourceFile

LOOKUP_SAMPLE = 100_000  # rows whose distinct personal values decide hashing by lookup


class DuckDBFileLoader(FileLoader):
    """Loads files through one profile on one DuckDB connection (inside the ingest's
    transaction, so the temp tables and the writes go together)."""

    def __init__(self, con: Any, profile: Profile, offences: list[str],
                 hash_sql: Callable[[str], str]):
        self.con = con
        self.profile = profile
        self.codes = offences
        self.hash_sql = hash_sql
        self._lookups: list[str] = []

    def _pseudonym_lookups(self, source: str, columns: list[str]) -> dict[str, str]:
        """Hash the distinct values of those personal ``columns`` that repeat, once each.

        Officers and addresses repeat heavily: hashing each distinct value once and joining it
        back saves most of the HMAC work. Mostly-unique columns (victims) gain nothing from a
        lookup, so they are hashed in place. An approximate distinct count over the first rows
        decides, cheaply (the choice changes the cost, never the pseudonyms).
        """
        self._drop_lookups()
        if not columns:
            return {}
        trimmed = [q.trimmed(q.quote_ident(c)) for c in columns]
        row = self.con.execute(
            "SELECT count(*), " + ", ".join(f"approx_count_distinct({t})" for t in trimmed)
            + f" FROM (SELECT * FROM {source} LIMIT {LOOKUP_SAMPLE})").fetchone()
        out: dict[str, str] = {}
        for c, t, distinct in zip(columns, trimmed, row[1:], strict=True):
            if distinct * 2 > row[0]:
                continue
            name = f"__ca_pn{len(out)}"
            self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT __ca_pv, "
                             f"{self.hash_sql('__ca_pv')} AS __ca_pp "
                             f"FROM (SELECT DISTINCT {t} AS __ca_pv FROM {source}) "
                             f"WHERE __ca_pv IS NOT NULL")
            out[c] = name
            self._lookups.append(name)
        return out

    def _drop_lookups(self) -> None:
        for name in self._lookups:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self._lookups = []

    def _read(self, src: SourceFile, path: Path) -> list[tuple[int, str, str, str]]:
        """Create temp view __ca_src (all text, __rn) and return the rejected lines."""
        con = self.con
        con.execute("DROP VIEW IF EXISTS __ca_src")
        con.execute("DROP TABLE IF EXISTS __ca_raw")
        if src.format == "parquet":
            sql = q.read_parquet_sql(str(path), src.columns)
            con.execute(f"CREATE TEMP TABLE __ca_raw AS {sql}")
            con.execute("CREATE TEMP VIEW __ca_src AS SELECT * FROM __ca_raw")
            return []
        for t in ("__ca_rej", "__ca_scan"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        # rowid keeps the file's record order (insertion order is preserved), so it numbers
        # the records without a window over the whole file.
        con.execute("CREATE TEMP TABLE __ca_raw AS "
                    + q.read_csv_sql(str(path), src.columns, src.delimiter))
        # (rows written inside a transaction have rowids from a high offset: subtract it)
        first = con.execute("SELECT coalesce(min(rowid), 0) FROM __ca_raw").fetchone()[0]
        con.execute(f"CREATE TEMP VIEW __ca_src AS SELECT rowid - {int(first)} + 1 AS __rn, * "
                    f"FROM __ca_raw")
        rows = con.execute(
            "SELECT line, any_value(column_name), any_value(error_type), any_value(csv_line), "
            "any_value(error_message) FROM __ca_rej GROUP BY line ORDER BY line"
        ).fetchall()
        return [(int(r[0]), r[1] or "", q.reject_reason(str(r[2]), str(r[4] or "")), r[3] or "")
                for r in rows]

    def load(self, src: SourceFile, path: Path, targets: list[Target],
             personal: set[str]) -> LoadedFile:
        con = self.con
        out = LoadedFile()
        out.rejects = self._read(src, path)
        source = "__ca_src"
        file_cols = list(src.columns)
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
        plain = {spec.source for t in targets for spec in t.columns.values()
                 if isinstance(spec.source, str) and spec.source in personal}
        lookups = self._pseudonym_lookups(source, [c for c in file_cols if c in plain])
        raw_text = q.raw_text_sql(file_cols, src.delimiter, personal, self.hash_sql)
        for target in targets:
            table = TABLES[target.table]
            builder = q.TargetSQL(target, self.profile.crosswalks, self.codes, personal,
                                  self.hash_sql, label,
                                  self.profile.name if table.name == "counts"
                                  else f"{self.profile.name}:{label}", lookups)
            has_rows = con.execute(f"SELECT count(*) > 0 FROM {q.quote_ident(table.name)}"
                                   ).fetchone()[0]
            update = target.mode == "update"
            refs = self.profile.check_incident_refs and table.name == "crimes"
            names = [c for c in table.column_names if not update or c in target.columns]
            con.execute("DROP TABLE IF EXISTS __ca_stage")
            # Updates (outcomes joined onto loaded crimes) and unpivoted rows (several per
            # line, so the line number does not name one) are small: stage every value.
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
            for sql in q.key_checks(table.name, table.key, bool(has_rows), refs, update):
                con.execute(sql)
            staged, loaded = con.execute("SELECT count(*), count(*) FILTER (WHERE __reason IS "
                                         "NULL) FROM __ca_stage").fetchone()
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
            elif staged_values:
                con.execute(f"INSERT INTO {q.quote_ident(table.name)} ({cols}) "
                            f"SELECT {cols} FROM __ca_stage WHERE __reason IS NULL")
            else:
                # With nothing quarantined there is no need to match rows to verdicts.
                verdicts = "__ca_stage" if staged != loaded else None
                inserted = con.execute(
                    f"INSERT INTO {q.quote_ident(table.name)} ({cols}) "
                    + builder.insert_select(source, names, verdicts)).fetchone()[0]
                out.written[table.name] = int(inserted)
                if inserted != loaded:
                    return out  # the ingest stage reports it and the transaction rolls back
            if staged == loaded:
                continue  # nothing quarantined: skip the join back to the rows as read
            out.quarantine.append(con.execute(
                f"SELECT s.__rn AS rn, {q.literal(table.name)} AS tbl, split_part(s.__reason, "
                f"chr(31), 1) AS col, split_part(s.__reason, chr(31), 2) AS reason, "
                f" {raw_text} AS raw FROM __ca_stage s "
                f"JOIN __ca_src src ON src.__rn = s.__rn "
                f"WHERE s.__reason IS NOT NULL").fetch_arrow_table())
        conds = [q.TargetSQL(t, {}, [], set(), None, "", "").condition(untrimmed=True)
                 for t in targets]
        if all(t.when is not None for t in targets):
            unrouted = f"NOT ({' OR '.join(f'({c})' for c in conds)})"
            out.quarantine.append(con.execute(
                f"SELECT __rn AS rn, NULL AS tbl, NULL AS col, 'row matches none of the "
                f"profile''s tables' AS reason, {raw_text} AS raw FROM {source} src "
                f"WHERE {unrouted}").fetch_arrow_table())
        con.execute("DROP VIEW IF EXISTS __ca_src")
        for t in ("__ca_raw", "__ca_long", "__ca_stage"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        self._drop_lookups()
        return out


__all__ = ["DuckDBFileLoader", "LOOKUP_SAMPLE"]
