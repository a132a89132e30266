"""The quarantine and the per-file ledger: where every input row that was not loaded is kept,
with the file, line, column and a reason a person understands.

>>> QUARANTINE_SCHEMA.names[:4]
['file', 'sha256', 'profile', 'table']
"""

from __future__ import annotations

from typing import Any

from crimeaudit.model.schema import INGEST_FILES, QUARANTINE

QUARANTINE_TABLE = QUARANTINE.name
FILES_TABLE = INGEST_FILES.name
QUARANTINE_SCHEMA = QUARANTINE.arrow_schema()
FILES_SCHEMA = INGEST_FILES.arrow_schema()


def ensure_tables(engine: Any) -> None:
    engine.create_empty(QUARANTINE_TABLE, QUARANTINE_SCHEMA)
    engine.create_empty(FILES_TABLE, FILES_SCHEMA)


def quarantined_rows(project: Any, file: str | None = None, reason: str | None = None,
                     limit: int | None = None) -> list[dict[str, Any]]:
    """Quarantined rows, optionally only those of files or reasons containing the given text."""
    eng = project.engine
    if not eng.has_table(QUARANTINE_TABLE):
        return []
    t = eng.table(QUARANTINE_TABLE)
    if file:
        t = t.filter(t.file.contains(file))
    if reason:
        t = t.filter(t.reason.lower().contains(reason.lower()))
    t = t.order_by([t.file, t.line])
    if limit:
        t = t.limit(limit)
    return eng.to_pyarrow(t).to_pylist()


def ingested_files(project: Any) -> list[dict[str, Any]]:
    """The ledger: one row per ingested file with read = loaded + quarantined."""
    eng = project.engine
    if not eng.has_table(FILES_TABLE):
        return []
    t = eng.table(FILES_TABLE)
    return eng.to_pyarrow(t.order_by(t.time)).to_pylist()
