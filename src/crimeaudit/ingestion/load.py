"""Loading files into the project store through a profile: the ``ingest`` verb.

All writes of one ingest happen in one store transaction, so an interrupted ingest leaves the
store as it was; a file already ingested (same SHA-256 and profile) is skipped, not doubled.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from crimeaudit.ingestion import duckdb_sql as q
from crimeaudit.ingestion.errors import IngestError
from crimeaudit.ingestion.profile import ColumnSpec, Profile, Target, load_profile
from crimeaudit.ingestion.pseudonym import project_key, sql_expression
from crimeaudit.ingestion.quarantine import (
    FILES_SCHEMA,
    FILES_TABLE,
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    ensure_tables,
)
from crimeaudit.ingestion.source import SourceFile, inspect_file, transcode_to_utf8
from crimeaudit.model.schema import TABLES
from crimeaudit.progress import Progress, resolve
from crimeaudit.store.project import project_verb

LOOKUP_SAMPLE = 100_000  # rows whose distinct personal values decide hashing by lookup
# DuckDB's share of the 3 GiB an ingest may use: beyond it, temp tables spill to disk.
MEMORY_LIMIT_BYTES = 2 << 30

# Incidents first so that crimes in the same ingest can point at them.
TABLE_ORDER = ("incidents", "crimes", "classification_changes", "truth_incidents",
               "truth_crimes", "counts")


@dataclass
class FileReport:
    file: str
    sha256: str
    tables: dict[str, int] = field(default_factory=dict)
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    skipped: bool = False

    @property
    def reconciles(self) -> bool:
        return self.read == self.loaded + self.quarantined


@dataclass
class IngestReport:
    profile: str
    files: list[FileReport]
    key_origin: str = ""
    key_created: bool = False

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files if not f.skipped)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files if not f.skipped)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files if not f.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "files": [asdict(f) for f in self.files],
                "read": self.read, "loaded": self.loaded, "quarantined": self.quarantined,
                "key_origin": self.key_origin, "key_created": self.key_created}


def canonical_table_for(path: Path) -> str:
    """The canonical table a file feeds, from its name (longest table name it starts with).

    >>> canonical_table_for(Path("out/truth_crimes.parquet"))
    'truth_crimes'
    >>> canonical_table_for(Path("crimes-2013.csv"))
    'crimes'
    """
    stem = path.name.split(".")[0].lower().replace("-", "_")
    for name in sorted(TABLES, key=len, reverse=True):
        if stem.startswith(name):
            return name
    raise IngestError(
        f"{path}: cannot tell which table this file feeds from its name; name it after one of "
        f"{', '.join(TABLE_ORDER)} or pass --table"
    )


@contextmanager
def memory_cap(con: Any, limit: int = MEMORY_LIMIT_BYTES) -> Iterator[None]:
    """Lower DuckDB's memory limit to ``limit`` bytes for the duration (never raise it).

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> with memory_cap(con, 1 << 30):
    ...     con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    '1.0 GiB'
    """
    before = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    m = re.fullmatch(r"([\d.]+) ?([KMGT]?i?B)", str(before).strip())
    units = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
             "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
    if not m or m.group(2) not in units or float(m.group(1)) * units[m.group(2)] <= limit:
        yield
        return
    con.execute(f"SET memory_limit = '{limit // (1 << 20)}MiB'")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{before}'")


def _canonical_target(path: Path, src: SourceFile, table: str | None) -> Target:
    name = table or canonical_table_for(path)
    if name not in TABLES:
        raise IngestError(f"unknown table {name!r}; choose from {', '.join(TABLE_ORDER)}")
    cols = set(src.columns or [])
    missing = [c.name for c in TABLES[name].columns if c.required and c.name not in cols]
    if missing:
        raise IngestError(f"{path}: missing required column(s) {', '.join(missing)} "
                          f"for table {name}; nothing was loaded from it")
    specs = {c.name: ColumnSpec(**{"from": c.name}) for c in TABLES[name].columns if c.name in cols}
    return Target(table=name, columns=specs)


class _FileLoader:
    """Loads one file: read as text, convert and check per target, split, write."""

    def __init__(self, project: Any, profile: Profile, key: bytes, now: str):
        self.project = project
        self.con = project.engine.backend.con
        self.profile = profile
        self.key = key
        self.now = now
        self.codes = list(project.codes.offences)
        self._lookups: list[str] = []

    def hash_sql(self, expr: str) -> str:
        return sql_expression(self.key, expr)

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
                             f"{sql_expression(self.key, '__ca_pv')} AS __ca_pp "
                             f"FROM (SELECT DISTINCT {t} AS __ca_pv FROM {source}) "
                             f"WHERE __ca_pv IS NOT NULL")
            out[c] = name
            self._lookups.append(name)
        return out

    def _drop_lookups(self) -> None:
        for name in self._lookups:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self._lookups = []

    def _read(self, src: SourceFile, tmp: Path) -> tuple[list[tuple[int, str, str, str]], int]:
        """Create temp table __ca_src (all text, __rn) and return the rejected lines."""
        con = self.con
        con.execute("DROP VIEW IF EXISTS __ca_src")
        con.execute("DROP TABLE IF EXISTS __ca_raw")
        if src.format == "parquet":
            sql = q.read_parquet_sql(str(src.path), src.columns)
            con.execute(f"CREATE TEMP TABLE __ca_raw AS {sql}")
            con.execute("CREATE TEMP VIEW __ca_src AS SELECT * FROM __ca_raw")
            return [], 0
        path = src.path
        if src.encoding == "windows-1252":
            path = transcode_to_utf8(src, tmp)
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
        rejects = [(int(r[0]), r[1] or "", q.reject_reason(str(r[2]), str(r[4] or "")), r[3] or "")
                   for r in rows]
        return rejects, len(rejects)

    def load(self, src: SourceFile, targets: list[Target], tmp: Path) -> FileReport:
        con = self.con
        rep = FileReport(file=str(src.path), sha256=src.sha256)
        rejects, n_rej = self._read(src, tmp)
        source = "__ca_src"
        file_cols = list(src.columns)
        if self.profile.unpivot:
            u = self.profile.unpivot
            sql = q.unpivot_sql("__ca_src", file_cols, u.pattern, u.name, u.value)
            if not sql:
                raise IngestError(f"{src.path}: no column names match {u.pattern!r} "
                                  f"(the wide period columns); nothing was loaded from it")
            con.execute("DROP TABLE IF EXISTS __ca_long")
            con.execute(f"CREATE TEMP TABLE __ca_long AS {sql}")
            source = "__ca_long"
        n_rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        rep.read = int(n_rows) + n_rej
        label = src.path.name
        personal = set(self.profile.personal)
        # Source columns feeding a personal canonical column are hidden in quarantined text too.
        for target in targets:
            for name, spec in target.columns.items():
                if TABLES[target.table].column(name).personal:
                    personal.update(spec.source_columns)
        quarantine: list[pa.Table] = []
        plain = {spec.source for t in targets for spec in t.columns.values()
                 if isinstance(spec.source, str) and spec.source in personal}
        lookups = self._pseudonym_lookups(source, [c for c in file_cols if c in plain])
        raw_text = q.raw_text_sql(file_cols, src.delimiter, personal, self.hash_sql)
        for target in targets:
            table = TABLES[target.table]
            self.project.engine.create_empty(table.name, table.arrow_schema())
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
                if inserted != loaded:
                    raise IngestError(f"{src.path}: internal error: {loaded} rows passed the "
                                      f"checks but {inserted} were written to {table.name}")
            rep.tables[table.name] = int(loaded)
            rep.loaded += int(loaded)
            if staged == loaded:
                continue  # nothing quarantined: skip the join back to the rows as read
            quarantine.append(con.execute(
                f"SELECT s.__rn AS rn, {q.literal(table.name)} AS tbl, split_part(s.__reason, "
                f"chr(31), 1) AS col, split_part(s.__reason, chr(31), 2) AS reason, "
                f" {raw_text} AS raw FROM __ca_stage s "
                f"JOIN __ca_src src ON src.__rn = s.__rn "
                f"WHERE s.__reason IS NOT NULL").fetch_arrow_table())
        conds = [q.TargetSQL(t, {}, [], set(), None, "", "").condition(untrimmed=True)
                 for t in targets]
        if all(t.when is not None for t in targets):
            unrouted = f"NOT ({' OR '.join(f'({c})' for c in conds)})"
            quarantine.append(con.execute(
                f"SELECT __rn AS rn, NULL AS tbl, NULL AS col, 'row matches none of the "
                f"profile''s tables' AS reason, {raw_text} AS raw FROM {source} src "
                f"WHERE {unrouted}").fetch_arrow_table())
        self._write_quarantine(src, quarantine, rejects, rep, personal)
        if not rep.reconciles:
            raise IngestError(f"{src.path}: internal error: read {rep.read} rows but loaded "
                              f"{rep.loaded} and quarantined {rep.quarantined}")
        con.execute("DROP VIEW IF EXISTS __ca_src")
        for t in ("__ca_raw", "__ca_long", "__ca_stage"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        self._drop_lookups()
        return rep

    def _write_quarantine(self, src: SourceFile, parts: list[pa.Table],
                          rejects: list[tuple[int, str, str, str]], rep: FileReport,
                          personal: set[str]) -> None:
        rows = pa.concat_tables([p.cast(pa.schema([("rn", pa.int64()), ("tbl", pa.string()),
                                                   ("col", pa.string()), ("reason", pa.string()),
                                                   ("raw", pa.string())])) for p in parts]) \
            if parts else None
        n = rows.num_rows if rows is not None else 0
        rep.quarantined = n + len(rejects)
        if not rep.quarantined:
            return
        if src.format == "parquet":
            lines = rows.column("rn").to_numpy() if n else np.array([], dtype=np.int64)
        else:
            # Parsed rows are numbered among good records; map record k to its physical line by
            # skipping the header and the rejected lines.
            bad = np.array([r[0] for r in rejects], dtype=np.int64)
            rn = rows.column("rn").to_numpy() if n else np.array([], dtype=np.int64)
            top = int(rn.max()) + len(bad) + 2 if n else 2
            good = np.setdiff1d(np.arange(2, top + 1, dtype=np.int64), bad)
            lines = good[rn - 1] if n else rn
        # A row that could not be split into columns cannot have its personal fields replaced.
        hide_raw = bool(personal) or self.profile.canonical
        file = str(src.path)
        tables = ",".join(rep.tables) or None
        data = {
            "file": [file] * rep.quarantined,
            "sha256": [src.sha256] * rep.quarantined,
            "profile": [self.profile.name] * rep.quarantined,
            "table": (rows.column("tbl").to_pylist() if n else []) + [tables] * len(rejects),
            "line": [int(x) for x in lines] + [r[0] for r in rejects],
            "column": (rows.column("col").to_pylist() if n else []) + [r[1] or None
                                                                       for r in rejects],
            "reason": (rows.column("reason").to_pylist() if n else []) + [r[2] for r in rejects],
            "raw": (rows.column("raw").to_pylist() if n else [])
            + [("[withheld: the row could not be split, and the profile has personal fields]"
                if hide_raw else r[3]) for r in rejects],
            "time": [self.now] * rep.quarantined,
        }
        self.project.engine.write(QUARANTINE_TABLE, pa.table(data, schema=QUARANTINE_SCHEMA),
                                  mode="append")


@project_verb
def ingest(project: Any, profile: str | Path | Profile, files: list[str | Path],
           progress: Progress | None = None, table: str | None = None) -> IngestReport:
    """Load ``files`` into the project's store through ``profile``; every row is loaded or
    quarantined, and the per-file counts reconcile (read = loaded + quarantined).

    >>> import tempfile, pathlib
    >>> from crimeaudit.store.project import Project
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> f = d / "rec.csv"
    >>> _ = f.write_text("12 months ending,PFA,Region,Offence,Rolling year total number of "
    ...                  "offences\\n31-03-2017,Kent,South East,Robbery,900\\n"
    ...                  "30-12-2017,Kent,South East,Robbery,950\\n")
    >>> with Project.init(d / "p") as p:
    ...     r = ingest(p, "ons-pfa", [f])
    >>> r.files[0].read, r.files[0].loaded, r.files[0].quarantined
    (2, 1, 1)
    """
    prof = load_profile(profile)
    progress = resolve(progress)
    if not files:
        raise IngestError("no files to ingest")
    # Inspect every file before writing anything: an unreadable file stops the whole ingest.
    sources = [inspect_file(f, prof.format, prof.encoding, prof.delimiter) for f in files]
    plans: list[tuple[SourceFile, list[Target]]] = []
    for src in sources:
        if prof.canonical:
            targets = [_canonical_target(src.path, src, table)]
        else:
            if table:
                raise IngestError("--table applies to the canonical profile only")
            missing = sorted(prof.source_columns - set(src.columns) - {"__rn"})
            if missing:
                raise IngestError(
                    f"{src.path}: line 1: missing column(s) {', '.join(missing)} that profile "
                    f"{prof.name!r} needs; nothing was loaded from it")
            try:
                targets = [t.resolve(src.columns) for t in prof.targets]
            except KeyError as exc:
                raise IngestError(
                    f"{src.path}: line 1: missing column {exc.args[0]} that profile "
                    f"{prof.name!r} needs; nothing was loaded from it") from None
        plans.append((src, targets))
    plans.sort(key=lambda p: min(TABLE_ORDER.index(t.table) for t in p[1]))
    key = project_key(project.path)
    if key.created:
        progress.note(f"created a new pseudonym key in {key.origin} (owner-only); keep it safe: "
                      f"the same key gives the same pseudonyms in later ingests")
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report = IngestReport(prof.name, [], key.origin, key.created)
    engine = project.engine
    tmp = project.folder("ingest-tmp")
    try:
        with memory_cap(engine.backend.con), engine.transaction():
            ensure_tables(engine)
            loader = _FileLoader(project, prof, key.key, now)
            done = engine.table(FILES_TABLE)
            seen = {(r["sha256"], r["profile"]): r for r in engine.to_pyarrow(done).to_pylist()}
            with progress.task(f"Ingesting with profile {prof.name}", total=len(plans)) as advance:
                for src, targets in plans:
                    prior = seen.get((src.sha256, prof.name))
                    if prior:
                        report.files.append(FileReport(
                            str(src.path), src.sha256, {}, prior["read"], prior["loaded"],
                            prior["quarantined"], skipped=True))
                        advance(1)
                        continue
                    rep = loader.load(src, targets, tmp)
                    engine.write(FILES_TABLE, pa.table({
                        "file": [rep.file], "sha256": [rep.sha256], "profile": [prof.name],
                        "table": [",".join(rep.tables)], "read": [rep.read],
                        "loaded": [rep.loaded], "quarantined": [rep.quarantined],
                        "time": [now]}, schema=FILES_SCHEMA), mode="append")
                    seen[(src.sha256, prof.name)] = {"read": rep.read, "loaded": rep.loaded,
                                                     "quarantined": rep.quarantined}
                    report.files.append(rep)
                    advance(1)
    finally:
        for f in tmp.glob("*.utf8.csv"):
            f.unlink()
    project.log_run(
        "ingest", inputs=[s.path for s in sources],
        counts={f.file: {"read": f.read, "loaded": f.loaded, "quarantined": f.quarantined,
                         "skipped": f.skipped, "tables": f.tables} for f in report.files},
        params={"profile": prof.name, "table": table, "pseudonym_key": key.origin},
    )
    return report

