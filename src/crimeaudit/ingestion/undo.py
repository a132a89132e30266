"""Undoing a load: the ``unload`` verb, and the replacement of a file ingested again.

A file's incident and crime rows are sightings of their records (see
:mod:`crimeaudit.engine.duckdb_versions`): undoing the load forgets them, and each record it
touched goes back to the version the remaining files give it (a record only that file brought
leaves the store). Its lines in the ledger, the quarantine and the exclusions go too, so the
counts still reconcile. Rows of other tables (classification changes, ground truth, counts)
carry no file of origin, so a file that loaded any is refused rather than half undone.

>>> same_file("exports/crimes-2013-02.csv", "crimes-2013-02.csv")
False
>>> same_file("/tmp/x/../x/a.csv", "/tmp/x/a.csv")
True
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crimeaudit.ingestion.errors import IngestError
from crimeaudit.ingestion.quarantine import ingested_files
from crimeaudit.model.schema import VERSIONED
from crimeaudit.store.project import project_verb


@dataclass
class UnloadReport:
    """What ``unload`` undid: the file, and the rows of each table it had brought."""

    file: str
    sha256: str
    profile: str
    rows: dict[str, int] = field(default_factory=dict)
    crimes: int = 0  # in the store after
    incidents: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths as given name the same file (resolved against the current folder)."""
    return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def find_load(project: Any, file: str | Path) -> dict[str, Any]:
    """The ledger row of the one load ``file`` names: by path, file name or SHA-256 prefix
    (at least 8 characters). An ambiguous or unknown name is an error listing the loads."""
    ledger = ingested_files(project)
    text = str(file)
    found = [r for r in ledger if same_file(r["file"], text)]
    if not found:
        found = [r for r in ledger if Path(r["file"]).name == Path(text).name]
    if not found and len(text) >= 8:
        found = [r for r in ledger if str(r["sha256"]).startswith(text.lower())]
    if not found:
        known = ", ".join(Path(r["file"]).name for r in ledger) or "none"
        raise IngestError(f"{text}: no load of this file in the project (files loaded: "
                          f"{known})")
    if len(found) > 1:
        which = "; ".join(f"{r['file']} ({r['profile']}, {str(r['sha256'])[:12]}, {r['time']})"
                          for r in found)
        raise IngestError(f"{text}: names {len(found)} loads ({which}); give the path or the "
                          f"first 12 characters of the SHA-256")
    return found[0]


def unloadable(project: Any, load: dict[str, Any]) -> str | None:
    """Why ``load`` cannot be undone, or None if it can."""
    loaded = int(load.get("loaded") or 0)
    by_table = project.engine.record_versions().loaded_from(load["sha256"], load["profile"])
    others = [t for t in str(load.get("table") or "").split(",") if t and t not in VERSIONED]
    if others and loaded > sum(by_table.values()):
        return (f"it loaded rows into {', '.join(others)}, which keep no file of origin; "
                f"only incident and crime files can be undone (start a new project to drop it)")
    if loaded and not by_table:
        return ("its rows carry no file of origin (it updated loaded crimes in place, or was "
                "loaded before crimeaudit kept versions of records)")
    return None


def remove_load(project: Any, load: dict[str, Any]) -> dict[str, int]:
    """Undo ``load`` inside the caller's transaction; the rows per table it had brought."""
    why = unloadable(project, load)
    if why:
        raise IngestError(f"{load['file']}: cannot be unloaded: {why}")
    versions = project.engine.record_versions()
    return versions.unload(load["sha256"], load["profile"], project.config.reference_date)


@project_verb
def unload(project: Any, file: str | Path) -> UnloadReport:
    """Undo the load of ``file`` (a path, file name or SHA-256 prefix as ``ingest`` showed it):
    its incident and crime rows, quarantined and excluded rows and ledger line are removed, and
    every record it touched is back to the version the other files give it.

    >>> import tempfile, pathlib
    >>> from crimeaudit.ingestion import ingest
    >>> from crimeaudit.store.project import Project
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> f = d / "incidents.csv"
    >>> _ = f.write_text("incident_id,reported_at\\nI1,2013-01-01 10:00\\n")
    >>> with Project.init(d / "p") as p:
    ...     _ = ingest(p, "canonical", [f])
    ...     r = unload(p, "incidents.csv")
    >>> r.rows, r.incidents
    ({'incidents': 1}, 0)
    """
    load = find_load(project, file)
    engine = project.engine
    with engine.transaction():
        rows = remove_load(project, load)
    report = UnloadReport(file=load["file"], sha256=load["sha256"], profile=load["profile"],
                          rows=rows, crimes=engine.count("crimes") if engine.has_table("crimes")
                          else 0,
                          incidents=engine.count("incidents") if engine.has_table("incidents")
                          else 0)
    project.log_run("unload", counts={"rows": rows},
                    params={"file": load["file"], "sha256": load["sha256"],
                            "profile": load["profile"]})
    return report
