"""An audit project folder.

::

    DIR/
      project.yaml   settings (timeliness limit, confidence level, audit period, ...)
      store.duckdb   the embedded store: canonical tables and every stage's output
      runs.jsonl     one line per run: command, inputs with SHA-256, version, counts
      .lock          while a command works on the project: which one, since when

One command at a time opens a project (:mod:`crimeaudit.store.lock`); a second one waits a
few seconds and then says which command holds it. Files written into the folder never follow a
symbolic link (:mod:`crimeaudit.store.files`).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()) / "kent"
>>> p = Project.init(d, name="Kent 2013")
>>> p.config.timeliness_hours
24.0
>>> sorted(t for t in p.engine.list_tables() if t in ("crimes", "incidents"))
['crimes', 'incidents']
>>> p.close()
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crimeaudit import __version__
from crimeaudit.engine import Engine, connect
from crimeaudit.errors import CrimeauditError
from crimeaudit.model.codes import CodeLists, load_code_lists
from crimeaudit.model.schema import COUNTS, RECORD_TABLES
from crimeaudit.store import lock
from crimeaudit.store.files import append_text, describe, safe_folder, write_text

CONFIG_FILE = "project.yaml"
STORE_FILE = "store.duckdb"
SPARK_STORE = "store.spark"  # the PySpark engine's store: a folder (engine/pyspark.py)
RUN_LOG = "runs.jsonl"
#: Where an ingest of an earlier version copied a Windows-1252 file, in clear, as UTF-8; a
#: killed ingest left it behind. Removed whenever a command opens the project.
STALE_TMP = "ingest-tmp"


class ProjectError(CrimeauditError, RuntimeError):
    """The project folder is missing, damaged or misconfigured."""


class ProjectWarning(UserWarning):
    """Something in the project folder was damaged and skipped (a bad run-log line)."""


class ProjectConfig(BaseModel):
    """Settings of one audit project (``project.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "audit"
    created: str = ""
    crimeaudit_version: str = __version__
    engine: str = Field("duckdb", pattern="^(duckdb|pyspark)$")
    timeliness_hours: float = Field(24.0, gt=0, description="Record within this many hours.")
    confidence_level: float = Field(0.95, gt=0.5, lt=1.0)
    audit_period_start: dt.date | None = None
    audit_period_end: dt.date | None = None
    reference_date: dt.date | None = Field(
        None, description="The audit looks at records as they stood at the end of this day: "
        "each incident and crime in the version of the latest export as of then (none: the "
        "latest version of each).")
    code_lists: str | None = Field(None, description="Folder of replacement code lists.")
    targets: str | None = Field(None, description="YAML file declaring performance targets.")
    # Plausible ranges: an ingested value outside them is quarantined with the reason.
    # Dates: relative to the audit period when one is set (an export covers the period and
    # its context, never decades before it or the future); a date given here wins.
    earliest_date: dt.date | None = Field(
        None, description="Earliest plausible date (none: plausible_years_before years before "
        "the audit period's start, or 1990-01-01 without a period).")
    latest_date: dt.date | None = Field(
        None, description="Latest plausible date (none: plausible_days_after days after the "
        "audit period's end, never later than the day after the ingest runs).")
    plausible_years_before: int = Field(
        10, ge=0, le=200, description="Years before the audit period a date may be.")
    plausible_days_after: int = Field(
        366, ge=0, description="Days after the audit period a date may be.")
    latitude: tuple[float, float] = (-90.0, 90.0)
    longitude: tuple[float, float] = (-180.0, 180.0)
    decisions_db: str | None = Field(
        None, description="PostgreSQL URL (no password) holding the project's audit decisions "
        "(set by crimeaudit serve --db); none: the project store.",
        pattern=r"^postgres(ql)?://[^:@/]*@?[^@]*$")
    pseudonym_key_fingerprint: str | None = Field(
        None, description="Fingerprint of the key the store's pseudonyms were made with "
        "(recorded at the first ingest; another key is refused).")


    def plausible_dates(self, today: dt.date | None = None) -> tuple[dt.date, dt.date, str]:
        """(earliest, latest, where the range comes from) of the dates an ingest accepts.

        A date outside is quarantined with the reason. Set in ``project.yaml``
        (``earliest_date``, ``latest_date``) or else relative to the audit period
        (``plausible_years_before`` its start, ``plausible_days_after`` its end); without a
        period, 1990-01-01 to the day after the ingest. Never later than the day after today.

        >>> c = ProjectConfig(audit_period_start="2013-04-01", audit_period_end="2013-09-30")
        >>> lo, hi, why = c.plausible_dates(today=dt.date(2026, 1, 1))
        >>> lo.isoformat(), hi.isoformat()
        ('2003-04-01', '2014-10-01')
        >>> why.split(" (")[0]
        '10 years before to 366 days after the audit period 2013-04-01 to 2013-09-30'
        >>> why.split(" (")[1]
        'project settings plausible_years_before, plausible_days_after)'
        >>> ProjectConfig().plausible_dates(today=dt.date(2026, 1, 1))[:2]
        (datetime.date(1990, 1, 1), datetime.date(2026, 1, 2))
        """
        tomorrow = (today or dt.date.today()) + dt.timedelta(days=1)
        start, end = self.audit_period_start, self.audit_period_end
        period = f"the audit period {start or '...'} to {end or '...'}"
        reasons, settings = [], []
        if self.earliest_date is not None:
            lo = self.earliest_date
            settings.append("earliest_date")
        elif start is not None:
            years = self.plausible_years_before
            lo = _years_before(start, years)
            reasons.append(f"{years} years before")
            settings.append("plausible_years_before")
        else:
            lo = dt.date(1990, 1, 1)
        if self.latest_date is not None:
            hi = self.latest_date
            settings.append("latest_date")
        elif end is not None:
            hi = min(end + dt.timedelta(days=self.plausible_days_after), tomorrow)
            reasons.append(f"{self.plausible_days_after} days after")
            settings.append("plausible_days_after")
        else:
            hi = tomorrow
        if reasons:
            why = (f"{' to '.join(reasons)} {period} "
                   f"(project settings {', '.join(settings)})")
        elif settings:
            why = f"project settings {', '.join(settings)}"
        else:
            why = ("default range: no audit period or earliest_date/latest_date in "
                   "project.yaml")
        return lo, hi, why


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class Project:
    """An open audit project. Use :meth:`init` to create one and :meth:`open` to reopen it."""

    def __init__(self, path: Path, config: ProjectConfig, engine: Engine):
        self.path = path
        self.config = config
        self.engine = engine

    # -- lifecycle --------------------------------------------------------------------------
    @classmethod
    def init(cls, path: str | Path, name: str | None = None, *, wait: float | None = None,
             **settings: Any) -> Project:
        """Create a project in ``path`` (a new or empty folder) and open it.

        ``wait``: seconds to wait if another command holds the folder (default
        :data:`crimeaudit.store.lock.DEFAULT_WAIT`, or the CLI's ``--wait``).
        """
        path = Path(path)
        if (path / CONFIG_FILE).exists():
            raise ProjectError(f"{path} is already a crimeaudit project")
        if path.exists() and not path.is_dir():
            raise ProjectError(f"{path} exists and is not a folder; give a new folder's name")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"{path}: cannot create the project folder: "
                               f"{describe(exc)}") from exc
        config = ProjectConfig(
            name=name or path.name,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **settings,
        )
        key = lock.acquire(path, wait)
        try:
            # The engine first: one that cannot run stops here, before a project is written.
            engine = _connect_store(config.engine, path)
            try:
                write_text(path / CONFIG_FILE, yaml.safe_dump(config.model_dump(mode="json"),
                                                              sort_keys=False))
                project = cls(path, config, engine)
                project._lock = key
                for table in (*RECORD_TABLES, COUNTS):
                    project.engine.create_empty(table.name, table.arrow_schema())
            except BaseException:
                engine.close()
                raise
        except BaseException:
            lock.release(key)
            raise
        return project

    @classmethod
    def open(cls, path: str | Path, *, wait: float | None = None) -> Project:
        """Open the project in ``path``, waiting up to ``wait`` seconds if another command
        holds it (then :class:`~crimeaudit.store.lock.ProjectBusyError`, naming that command).
        """
        path = Path(path)
        cfg_file = path / CONFIG_FILE
        if not cfg_file.exists():
            raise ProjectError(
                f"{path} is not a crimeaudit project (no {CONFIG_FILE}); "
                f"create one with: crimeaudit init {path}"
            )
        key = lock.acquire(path, wait)
        try:
            remove_stale_temporaries(path)
            config = _read_config(cfg_file)
            project = cls(path, config, _connect_store(config.engine, path))
        except BaseException:
            lock.release(key)
            raise
        project._lock = key
        try:
            # A changed reference_date: the record tables are rebuilt for it before any stage
            # reads them.
            project.engine.record_versions().sync(config.reference_date)
        except BaseException:
            project.close()
            raise
        return project

    def close(self) -> None:
        """Close the store and let the next command in (idempotent)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        try:
            self.engine.close()
        finally:
            key = getattr(self, "_lock", None)  # None: made directly, not by open()/init()
            if key is not None:
                lock.release(key)

    def __del__(self) -> None:
        # A project dropped without close() (a script, a notebook) must not keep every other
        # command out for as long as its process lives.
        with contextlib.suppress(Exception):  # at collection time there is no one to tell
            self.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared things ----------------------------------------------------------------------
    @property
    def codes(self) -> CodeLists:
        folder = self.config.code_lists
        if folder and not Path(folder).is_absolute():
            folder = str(self.path / folder)
        return load_code_lists(folder)

    def record_key_fingerprint(self, fingerprint: str) -> None:
        """Record the pseudonym key's fingerprint in ``project.yaml`` (at the first ingest), so
        that an ingest under any other key is refused. Only that line of the file changes."""
        cfg = self.path / CONFIG_FILE
        field = "pseudonym_key_fingerprint:"
        lines = [x for x in cfg.read_text(encoding="utf-8").splitlines()
                 if not x.startswith(field)]
        write_text(cfg, "\n".join([*lines, f"{field} '{fingerprint}'"]) + "\n")
        self.config.pseudonym_key_fingerprint = fingerprint

    def record_decisions_db(self, url: str) -> None:
        """Record in ``project.yaml`` that the audit decisions are in PostgreSQL at ``url``
        (no password): every later command, on any machine, reads and writes them there."""
        cfg = self.path / CONFIG_FILE
        field = "decisions_db:"
        lines = [x for x in cfg.read_text(encoding="utf-8").splitlines()
                 if not x.startswith(field)]
        write_text(cfg, "\n".join([*lines, f"{field} {json.dumps(url)}"]) + "\n")
        self.config.decisions_db = url

    def folder(self, name: str) -> Path:
        """A sub-folder of the project for a stage's files (reports, exports, models)."""
        return safe_folder(self.path, name)

    def log_run(
        self,
        command: str,
        inputs: list[str | Path] | None = None,
        counts: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one line to the run log and return it."""
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": command,
            "version": __version__,
            "inputs": [
                {"path": str(p), "sha256": file_sha256(p)}
                for p in (inputs or [])
                if Path(p).is_file()
            ],
            "params": params or {},
            "counts": counts or {},
        }
        append_text(self.path / RUN_LOG, json.dumps(entry, default=str, sort_keys=True) + "\n")
        return entry

    def runs(self) -> list[dict[str, Any]]:
        """The run log's entries, oldest first.

        A damaged line (a disk filled mid-write, a hand edit) is skipped with a
        :class:`ProjectWarning` naming it: the log is a record for people, and one bad line
        must not stop every command that reads it (the report, comparisons).
        """
        log = self.path / RUN_LOG
        if not log.exists():
            return []
        out = []
        text = log.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                warnings.warn(f"{log}: line {number} is not a run record; skipped",
                              ProjectWarning, stacklevel=2)
                continue
            out.append(entry)
        return out


def remove_stale_temporaries(folder: str | Path) -> None:
    """Delete what a killed command may have left with clear personal values in it
    (``ingest-tmp/``). Safe only under the project's lock: no other command is running, so
    whatever is there is stale. Every :meth:`Project.open` calls it, so a kill's leftovers last
    until the next command of any kind, not until the next ingest."""
    stale = Path(folder) / STALE_TMP
    if stale.is_symlink() or stale.is_file():
        stale.unlink()
    elif stale.is_dir():
        shutil.rmtree(stale, ignore_errors=True)
        if stale.exists():
            raise ProjectError(f"{stale}: a killed ingest's temporary copy could not be "
                               f"removed; delete the folder (it may hold personal data in "
                               f"clear)")


def _read_config(cfg_file: Path) -> ProjectConfig:
    """``project.yaml``, validated; any problem is one line naming the file."""
    try:
        data = yaml.safe_load(cfg_file.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ProjectError(f"{cfg_file}: invalid settings: not a YAML mapping")
        return ProjectConfig(**data)
    except TypeError as exc:
        raise ProjectError(f"{cfg_file}: invalid settings: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'settings'}: {e['msg']}"
                             for e in exc.errors())
        raise ProjectError(f"{cfg_file}: invalid settings: {problems}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ProjectError(f"{cfg_file}: not valid YAML{where}") from exc
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{cfg_file}: byte {exc.start} is not UTF-8; "
                           f"save it as UTF-8") from exc
    except OSError as exc:
        raise ProjectError(f"{cfg_file}: cannot read: {describe(exc)}") from exc


def _connect_store(engine: str, path: Path) -> Engine:
    """The project's store, or one line saying why it cannot be opened.

    DuckDB reports a damaged or foreign file, a full or read-only disk, as a multi-line
    ``IOException``; a user needs to know which file and what to do.
    """
    store = path / (SPARK_STORE if engine == "pyspark" else STORE_FILE)
    try:
        return connect(engine, store)
    except CrimeauditError:
        raise
    except PermissionError as exc:
        raise lock.ProjectNotWritableError(f"{store}: cannot open: {describe(exc)}") from exc
    except Exception as exc:  # DuckDB raises its own types (IOException, ...), none shared
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "not a valid DuckDB database" in first or "Corrupt" in first or "checksum" in first:
            raise ProjectError(
                f"{store}: the store is damaged or not a crimeaudit store; restore it from a "
                f"backup (or re-create the project)") from exc
        raise ProjectError(f"{store}: the store cannot be opened: {first}") from exc


F = TypeVar("F", bound=Callable[..., Any])


def project_verb(fn: F) -> F:
    """Let a verb take an open :class:`Project` or the path of a project folder.

    Every public verb takes its project first; given a path it opens the project for the call
    and closes it after, so ``ca.estimate("kent")`` and ``ca.estimate(project)`` are the same.
    """

    @functools.wraps(fn)
    def verb(project: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(project, str | os.PathLike):
            with Project.open(project) as opened:
                return fn(opened, *args, **kwargs)
        if not isinstance(project, Project):
            raise ProjectError(
                f"{fn.__name__}() takes a Project or a project folder's path, "
                f"not {type(project).__name__}"
            )
        return fn(project, *args, **kwargs)

    return verb  # type: ignore[return-value]
