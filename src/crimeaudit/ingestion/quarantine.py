"""The quarantine and the per-file ledger: where every input row that was not loaded is kept,
with the file, line, column and a reason a person understands.

>>> QUARANTINE_SCHEMA.names[:4]
['file', 'sha256', 'profile', 'table']
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

QUARANTINE_TABLE = "quarantine"
FILES_TABLE = "ingest_files"

QUARANTINE_SCHEMA = pa.schema([
    ("file", pa.string()), ("sha256", pa.string()), ("profile", pa.string()),
    ("table", pa.string()), ("line", pa.int64()), ("column", pa.string()),
    ("reason", pa.string()), ("raw", pa.string()), ("time", pa.string()),
])

FILES_SCHEMA = pa.schema([
    ("file", pa.string()), ("sha256", pa.string()), ("profile", pa.string()),
    ("table", pa.string()), ("read", pa.int64()), ("loaded", pa.int64()),
    ("quarantined", pa.int64()), ("time", pa.string()),
])


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
