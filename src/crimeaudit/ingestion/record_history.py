"""A record's history across refreshed exports: the ``history`` verb.

Each version is what one or more files said about the record, oldest first, with what changed
from the version before (status, class, outcome, cancellation...) and which one is in effect at
the project's reference date. Personal fields stay the pseudonyms the store holds; a change of
one shows only as the field's name.

>>> import tempfile, pathlib
>>> from crimeaudit.ingestion import ingest
>>> from crimeaudit.store.project import Project
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> head = "crime_id,recorded_at,offence_code,status,cancelled_at,cancellation_reason\\n"
>>> _ = (d / "crimes-jan.csv").write_text(head + "C1,2013-01-05 10:00,8N,recorded,,\\n")
>>> _ = (d / "crimes-feb.csv").write_text(head + "C1,2013-01-05 10:00,8N,cancelled,"
...                                       "2013-02-02 09:00,avi\\n")
>>> with Project.init(d / "p") as p:
...     _ = ingest(p, "canonical", [d / "crimes-feb.csv", d / "crimes-jan.csv"])
...     [h] = history(p, "C1")
>>> [(v.values["status"], v.changed, v.current) for v in h.versions]
[('recorded', [], False), ('cancelled', ['status', 'cancellation_reason', 'cancelled_at'], True)]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from crimeaudit.ingestion.errors import IngestError
from crimeaudit.model.schema import TABLES, VERSIONED
from crimeaudit.store.project import project_verb

HIDDEN = ("source", "version_hash")


@dataclass
class Version:
    """One version of a record: its values, the exports that carried it, what changed."""

    as_of: str | None  # the first export that carried it (None: in the store before versions)
    files: list[str]  # every file that carried it, the first one first
    values: dict[str, Any]
    changed: list[str] = field(default_factory=list)  # fields that differ from the version before
    current: bool = False  # in effect at the reference date


@dataclass
class RecordHistory:
    table: str
    record_id: str
    reference_date: str | None
    versions: list[Version]

    @property
    def in_store(self) -> bool:
        """Whether any version is in effect at the reference date (a record first exported
        after it is not in the store's record tables)."""
        return any(v.current for v in self.versions)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "in_store": self.in_store}


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return value


def _versions(rows: list[dict[str, Any]], table: str, cutoff: dt.datetime | None) -> list[Version]:
    personal = {c.name for c in TABLES[table].columns if c.personal}
    out: list[Version] = []
    last_hash = None
    in_effect = -1
    for r in rows:
        as_of = r["as_of"]
        known = isinstance(as_of, dt.datetime) and as_of.year > 1
        label = r["file"] or ("(in the store before versions were kept)" if r["sha256"] is None
                              else str(r["sha256"])[:12])
        if r["version_hash"] == last_hash:
            out[-1].files.append(label)
        else:
            values = {c: _text(r[c]) for c in TABLES[table].column_names if c not in HIDDEN}
            changed = [] if not out else [c for c in values if c not in HIDDEN
                                          and values[c] != out[-1].values[c]]
            out.append(Version(_text(as_of) if known else None, [label], values, changed))
            last_hash = r["version_hash"]
        if cutoff is None or as_of is None or not known or as_of < cutoff:
            in_effect = len(out) - 1
    if in_effect >= 0:
        out[in_effect].current = True
    for v in out:  # a personal field's pseudonym is not shown as a change's value either
        v.changed = [c if c not in personal else f"{c} (personal)" for c in v.changed]
    return out


@project_verb
def history(project: Any, reference: str) -> list[RecordHistory]:
    """The versions of the crime and/or incident whose reference is ``reference`` (as the
    source gives it; a profile's prefix may be left off), oldest first."""
    versions = project.engine.record_versions()
    ref_date = project.config.reference_date
    cutoff = (dt.datetime.combine(ref_date + dt.timedelta(days=1), dt.time())
              if ref_date else None)
    found: list[RecordHistory] = []
    for table in ("crimes", "incidents"):
        if table not in VERSIONED:
            continue
        ids = versions.find_ids(table, str(reference).strip())
        if not ids:
            continue
        rows = versions.history(table, ids).to_pylist()
        for record_id in ids:
            mine = [r for r in rows if r["record_id"] == record_id]
            found.append(RecordHistory(table, record_id,
                                       ref_date.isoformat() if ref_date else None,
                                       _versions(mine, table, cutoff)))
    if not found:
        raise IngestError(f"no crime or incident with reference {reference!r} has been "
                          f"ingested into {project.path}")
    return found
