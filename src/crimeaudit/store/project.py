"""An audit project folder.

::

    DIR/
      project.yaml   settings (timeliness limit, confidence level, audit period, ...)
      store.duckdb   the embedded store: canonical tables and every stage's output
      runs.jsonl     one line per run: command, inputs with SHA-256, version, counts

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

import datetime as dt
import functools
import hashlib
import json
import os
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

CONFIG_FILE = "project.yaml"
STORE_FILE = "store.duckdb"
RUN_LOG = "runs.jsonl"


class ProjectError(CrimeauditError, RuntimeError):
    """The project folder is missing, damaged or misconfigured."""


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
    code_lists: str | None = Field(None, description="Folder of replacement code lists.")
    targets: str | None = Field(None, description="YAML file declaring performance targets.")


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
    def init(cls, path: str | Path, name: str | None = None, **settings: Any) -> Project:
        path = Path(path)
        if (path / CONFIG_FILE).exists():
            raise ProjectError(f"{path} is already a crimeaudit project")
        path.mkdir(parents=True, exist_ok=True)
        config = ProjectConfig(
            name=name or path.name,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **settings,
        )
        # The engine first: one that cannot run stops here, before a project is written.
        engine = connect(config.engine, path / STORE_FILE)
        (path / CONFIG_FILE).write_text(
            yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
        )
        project = cls(path, config, engine)
        for table in (*RECORD_TABLES, COUNTS):
            project.engine.create_empty(table.name, table.arrow_schema())
        return project

    @classmethod
    def open(cls, path: str | Path) -> Project:
        path = Path(path)
        cfg_file = path / CONFIG_FILE
        if not cfg_file.exists():
            raise ProjectError(
                f"{path} is not a crimeaudit project (no {CONFIG_FILE}); "
                f"create one with: crimeaudit init {path}"
            )
        try:
            config = ProjectConfig(**(yaml.safe_load(cfg_file.read_text(encoding="utf-8")) or {}))
        except (ValidationError, yaml.YAMLError, TypeError) as exc:
            raise ProjectError(f"{cfg_file}: invalid settings:\n{exc}") from exc
        return cls(path, config, connect(config.engine, path / STORE_FILE))

    def close(self) -> None:
        self.engine.close()

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

    def folder(self, name: str) -> Path:
        """A sub-folder of the project for a stage's files (reports, exports, models)."""
        p = self.path / name
        p.mkdir(parents=True, exist_ok=True)
        return p

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
        with open(self.path / RUN_LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, default=str, sort_keys=True) + "\n")
        return entry

    def runs(self) -> list[dict[str, Any]]:
        log = self.path / RUN_LOG
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


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
