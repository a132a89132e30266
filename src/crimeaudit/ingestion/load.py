"""Loading files into the project store through a profile: the ``ingest`` verb.

All writes of one ingest happen in one store transaction, so an interrupted ingest leaves the
store as it was; a file already ingested (same SHA-256 and profile) is skipped, not doubled.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from crimeaudit.engine import WORK_MEMORY, FileLoader, LoadedFile
from crimeaudit.ingestion.errors import IngestError
from crimeaudit.ingestion.profile import ColumnSpec, Plausible, Profile, Target, load_profile
from crimeaudit.ingestion.pseudonym import PseudonymKey, project_key, sql_expression
from crimeaudit.ingestion.quarantine import (
    EXCLUSIONS_SCHEMA,
    EXCLUSIONS_TABLE,
    FILES_SCHEMA,
    FILES_TABLE,
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    ensure_tables,
)
from crimeaudit.ingestion.source import SourceFile, inspect_file
from crimeaudit.ingestion.undo import remove_load, same_file, unloadable
from crimeaudit.model.schema import TABLES, VERSIONED
from crimeaudit.progress import Progress, resolve
from crimeaudit.store.project import project_verb, remove_stale_temporaries

# Where earlier versions kept a UTF-8 copy of each Windows-1252 input (with every personal
# value in clear): removed at the start of every ingest, whatever killed the one that made it.

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
    #: Per versioned table (incidents, crimes): loaded rows that were new records, new
    #: versions of records already loaded, and identical re-sends (which change nothing).
    versions: dict[str, dict[str, int]] = field(default_factory=dict)
    as_of: str | None = None  # the export's as-of time its rows are versioned at
    replaced: str | None = None  # the earlier load of this path it replaced (its SHA-256)
    #: Rows outside the profile's scope (not errors: see ``exclusions`` for why).
    excluded: int = 0
    #: The excluded rows by reason: {"table", "column", "value", "reason", "rows", "first_line"}.
    exclusions: list[dict[str, Any]] = field(default_factory=list)
    #: Per "table.column (crosswalk)", source values the crosswalk does not list, with rows
    #: (an offence crosswalk loads them as "unclassified").
    unmapped: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Loaded rows a profile rule read otherwise than written: {what was done: {value: rows}}.
    adjusted: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.read == self.loaded + self.excluded + self.quarantined


@dataclass
class IngestReport:
    profile: str
    files: list[FileReport]
    key_origin: str = ""
    key_created: bool = False
    #: Crimes (as of the reference date) pointing at incidents not in the store after this
    #: ingest, and some of those incident ids: they link once the incidents are ingested.
    dangling: int = 0
    dangling_examples: list[str] = field(default_factory=list)

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files if not f.skipped)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files if not f.skipped)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files if not f.skipped)

    @property
    def excluded(self) -> int:
        return sum(f.excluded for f in self.files if not f.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "files": [asdict(f) for f in self.files],
                "read": self.read, "loaded": self.loaded, "excluded": self.excluded,
                "quarantined": self.quarantined, "key_origin": self.key_origin,
                "key_created": self.key_created,
                "versions": self.versions, "dangling": self.dangling,
                "dangling_examples": self.dangling_examples}

    @property
    def versions(self) -> dict[str, dict[str, int]]:
        """New records, new versions and identical re-sends per table, over the files."""
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            if f.skipped:
                continue
            for table, counts in f.versions.items():
                acc = out.setdefault(table, {"new": 0, "changed": 0, "identical": 0})
                for k, v in counts.items():
                    acc[k] = acc.get(k, 0) + v
        return out


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


class _FileIngest:
    """Ingests one file: what to load (targets, personal columns) goes to the engine's file
    loader, which reads, checks and writes it; the report and the quarantine are kept here."""

    def __init__(self, project: Any, profile: Profile, key: bytes, now: str,
                 as_of: dt.datetime | None = None):
        self.project = project
        self.profile = profile
        self.now = now
        self.as_of = as_of
        self.versions = project.engine.record_versions()
        self._created: set[str] = set()  # tables known to exist (the ingest's one transaction)
        self.loader: FileLoader = project.engine.file_loader(
            profile, list(project.codes.offences), functools.partial(sql_expression, key))

    def _personal(self, targets: list[Target]) -> set[str]:
        """The profile's personal source columns, and those feeding a personal canonical
        column: all are pseudonymised wherever they go, quarantined text included."""
        personal = set(self.profile.personal)
        for target in targets:
            for name, spec in target.columns.items():
                if TABLES[target.table].column(name).personal:
                    personal.update(spec.source_columns)
        return personal

    def _hidden(self, src: SourceFile, targets: list[Target]) -> set[str]:
        """Columns never shown in clear in the quarantine: the personal ones, and those the
        profile does not map (an address or a phone number nobody declared is still one)."""
        used = self.profile.columns_read(list(src.columns or []), targets)
        return self._personal(targets) | (set(src.columns or []) - used)

    def load(self, src: SourceFile, targets: list[Target]) -> FileReport:
        u = self.profile.unpivot
        if u and not any(re.fullmatch(u.pattern, c) for c in src.columns):
            raise IngestError(f"{src.path}: no column names match {u.pattern!r} "
                              f"(the wide period columns); nothing was loaded from it")
        for target in targets:
            table = TABLES[target.table]
            if table.name not in self._created:
                self.project.engine.create_empty(table.name, table.arrow_schema())
                self._created.add(table.name)
        personal = self._hidden(src, targets)
        done: LoadedFile = self.loader.load(src, src.path, targets, personal)
        for name, written in done.written.items():
            if written != done.tables[name]:
                raise IngestError(f"{src.path}: internal error: {done.tables[name]} rows passed "
                                  f"the checks but {written} were written to {name}")
        rep = FileReport(file=str(src.path), sha256=src.sha256, tables=dict(done.tables),
                         read=done.read, loaded=done.loaded, excluded=done.excluded_rows,
                         unmapped=done.unmapped, adjusted=done.adjusted)
        rep.exclusions = [dict(zip(("table", "column", "value", "reason", "rows", "first_line"),
                                   e, strict=True)) for e in done.excluded]
        self._write_quarantine(src, done.quarantine, done.rejects, rep, personal)
        self._write_exclusions(src, rep)
        self._version(src, targets, rep)
        if not rep.reconciles:
            raise IngestError(f"{src.path}: internal error: read {rep.read} rows but loaded "
                              f"{rep.loaded}, excluded {rep.excluded} and quarantined "
                              f"{rep.quarantined}")
        return rep

    def _version(self, src: SourceFile, targets: list[Target], rep: FileReport) -> None:
        """Store the file's incident and crime rows (staged by the loader) as versions of
        their records, as of the export's time: the user's --as-of, else the latest timestamp
        in the file's rows (a later month's export is later)."""
        staged = sorted({t.table for t in targets if t.mode == "insert" and t.table in VERSIONED},
                        key=TABLE_ORDER.index)
        if not staged:
            return
        as_of = self.as_of or self.versions.staged_as_of(staged)
        seq = self.versions.next_load_seq()
        ref = self.project.config.reference_date
        for table in staged:
            rep.versions[table] = self.versions.apply(table, src.sha256, self.profile.name,
                                                      as_of, seq, ref)
        rep.as_of = as_of.isoformat(sep=" ") if as_of else None

    def _write_exclusions(self, src: SourceFile, rep: FileReport) -> None:
        if not rep.exclusions:
            return
        cols = ("table", "column", "value", "reason", "rows", "first_line")
        data = {c: [e[c] for e in rep.exclusions] for c in cols}
        n = len(rep.exclusions)
        data.update(file=[str(src.path)] * n, sha256=[src.sha256] * n,
                    profile=[self.profile.name] * n, time=[self.now] * n)
        self.project.engine.write(EXCLUSIONS_TABLE, pa.table(data, schema=EXCLUSIONS_SCHEMA),
                                  mode="append")

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
        # The loader numbers rows by the physical line their record starts on (Parquet: the
        # row number), and the lines that are not records come with theirs.
        lines = rows.column("rn").to_numpy() if n else np.array([], dtype=np.int64)
        # A line that could not be split into columns cannot have its personal or unmapped
        # fields replaced: its text is withheld (the file and line say where it is).
        hide_raw = bool(personal)
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
            + [("[withheld: the line could not be split into columns, and some of them are "
                "personal or not mapped by the profile]"
                if hide_raw else r[3]) for r in rejects],
            "time": [self.now] * rep.quarantined,
        }
        self.project.engine.write(QUARANTINE_TABLE, pa.table(data, schema=QUARANTINE_SCHEMA),
                                  mode="append")


@project_verb
def ingest(project: Any, profile: str | Path | Profile, files: list[str | Path],
           progress: Progress | None = None, table: str | None = None,
           as_of: dt.date | dt.datetime | None = None) -> IngestReport:
    """Load ``files`` into the project's store through ``profile``; every row is loaded,
    excluded (outside the profile's scope, counted by reason) or quarantined (wrong, with its
    line and reason), and the per-file counts reconcile (read = loaded + excluded +
    quarantined).

    Incidents and crimes are versioned: a record sent again is an identical re-send (nothing
    changes) or a new version, ordered by the export's ``as_of`` time (default: the latest
    timestamp in each file); the store holds each record's version in effect at the project's
    ``reference_date``. A crime may point at an incident a later file brings: the report
    counts those still dangling after the ingest. A file ingested again from the same path
    with other content replaces its earlier load.

    >>> import tempfile, pathlib
    >>> from crimeaudit.store.project import Project
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> f = d / "rec.csv"
    >>> _ = f.write_text("12 months ending,PFA,Region,Offence,Rolling year total number of "
    ...                  "offences\\n31-03-2017,Kent,South East,Robbery,900\\n"
    ...                  "30-12-2017,Kent,South East,Robbery,950\\n")
    >>> with Project.init(d / "p") as p:
    ...     r = ingest(p, "ons-pfa", [f])
    >>> r.files[0].read, r.files[0].loaded, r.files[0].excluded, r.files[0].quarantined
    (2, 2, 0, 0)
    >>> [list(v) for v in r.files[0].adjusted.values()]  # loaded as 12 months to 31-12-2017
    [['30-12-2017']]
    """
    _remove_stale_copies(project.path)
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
        _check_personal(prof, profile, src)
        plans.append((src, targets))
    plans.sort(key=lambda p: min(TABLE_ORDER.index(t.table) for t in p[1]))
    key = _project_key(project, progress)
    prof = prof.model_copy(update={"plausible": _plausible(project.config)})
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report = IngestReport(prof.name, [], key.origin, key.created)
    engine = project.engine
    with engine.memory_cap(WORK_MEMORY), engine.transaction():
        ensure_tables(engine)
        loader = _FileIngest(project, prof, key.key, now, _as_of(as_of))
        done = engine.table(FILES_TABLE)
        ledger = engine.to_pyarrow(done).to_pylist()
        seen = {(r["sha256"], r["profile"]): r for r in ledger}
        with progress.task(f"Ingesting with profile {prof.name}", total=len(plans)) as advance:
            for src, targets in plans:
                prior = seen.get((src.sha256, prof.name))
                if prior:
                    report.files.append(FileReport(
                        str(src.path), src.sha256, {}, prior["read"], prior["loaded"],
                        prior["quarantined"], skipped=True, excluded=prior.get("excluded") or 0))
                    advance(1)
                    continue
                earlier = _replaces(project, ledger, src, prof.name)
                if earlier:
                    remove_load(project, earlier)
                    seen.pop((earlier["sha256"], prof.name), None)
                rep = loader.load(src, targets)
                rep.replaced = earlier["sha256"] if earlier else None
                engine.write(FILES_TABLE, pa.table({
                    "file": [rep.file], "sha256": [rep.sha256], "profile": [prof.name],
                    "table": [",".join(rep.tables)], "read": [rep.read],
                    "loaded": [rep.loaded], "excluded": [rep.excluded],
                    "quarantined": [rep.quarantined],
                    "time": [now]}, schema=FILES_SCHEMA), mode="append")
                seen[(src.sha256, prof.name)] = {"read": rep.read, "loaded": rep.loaded,
                                                 "excluded": rep.excluded,
                                                 "quarantined": rep.quarantined}
                report.files.append(rep)
                advance(1)
        versions = engine.record_versions()
        versions.record_reference_date(project.config.reference_date)
        report.dangling, report.dangling_examples = versions.dangling_references()
    project.log_run(
        "ingest", inputs=[s.path for s in sources],
        counts={f.file: {"read": f.read, "loaded": f.loaded, "excluded": f.excluded,
                         "quarantined": f.quarantined, "adjusted": f.adjusted,
                         "skipped": f.skipped, "tables": f.tables, "versions": f.versions,
                         "replaced": f.replaced} for f in report.files},
        params={"profile": prof.name, "table": table, "pseudonym_key": key.origin,
                "as_of": str(as_of) if as_of else None},
    )
    return report



def _as_of(value: dt.date | dt.datetime | None) -> dt.datetime | None:
    """A date as-of means the end of that day."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time(23, 59, 59))


def _replaces(project: Any, ledger: list[dict[str, Any]], src: SourceFile,
              profile: str) -> dict[str, Any] | None:
    """The earlier load this file replaces: the same path and profile, other content, and
    one that can be undone (a file of other tables is loaded beside it, as before)."""
    for row in ledger:
        if (row["profile"] == profile and row["sha256"] != src.sha256
                and same_file(row["file"], src.path) and unloadable(project, row) is None):
            return row
    return None


def _remove_stale_copies(folder: Path) -> None:
    """Delete what an older, killed ingest may have left in ``ingest-tmp`` (clear copies):
    the store's one rule, which every command opening the project already applies."""
    remove_stale_temporaries(folder)


def _check_personal(prof: Profile, given: str | Path | Profile, src: SourceFile) -> None:
    """A ``personal:`` name that is not a column of the file is refused: a misspelt name would
    otherwise leave the real column in clear without a word."""
    cols = list(src.columns or [])
    unknown = [c for c in prof.personal if c not in cols]
    if unknown:
        where = f"profile {prof.name!r}" + (f" ({given})" if isinstance(given, str | Path)
                                            and Path(given).suffix in (".yaml", ".yml") else "")
        raise IngestError(
            f"{where}: personal column(s) {', '.join(map(repr, unknown))} not in {src.path} "
            f"(its columns: {', '.join(cols)}); a misspelt name would leave the column in "
            f"clear, so nothing was loaded")


def _project_key(project: Any, progress: Progress) -> PseudonymKey:
    """The project's pseudonym key, checked against the fingerprint it recorded; at the first
    ingest the fingerprint is recorded (before anything is pseudonymised with the key)."""
    expected = project.config.pseudonym_key_fingerprint
    key = project_key(project.path, expected)
    if key.created:
        progress.note(f"created a new pseudonym key in {key.origin} (owner-only); keep it safe "
                      f"and back it up: this project's later ingests need the same key")
    if not expected:
        project.record_key_fingerprint(key.fingerprint)
    return key


def _plausible(config: Any) -> Plausible:
    earliest, latest, why = config.plausible_dates()
    return Plausible(earliest_date=earliest, latest_date=latest, why=why,
                     latitude=tuple(config.latitude), longitude=tuple(config.longitude))
