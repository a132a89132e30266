"""The quarantine and the per-file ledger: where every input row that was not loaded is kept,
with the file, line, column and a reason a person understands.

>>> QUARANTINE_SCHEMA.names[:4]
['file', 'sha256', 'profile', 'table']
"""

from __future__ import annotations

import re
from typing import Any

from crimeaudit.model.schema import INGEST_EXCLUSIONS, INGEST_FILES, QUARANTINE, TABLES

QUARANTINE_TABLE = QUARANTINE.name
FILES_TABLE = INGEST_FILES.name
EXCLUSIONS_TABLE = INGEST_EXCLUSIONS.name
QUARANTINE_SCHEMA = QUARANTINE.arrow_schema()
FILES_SCHEMA = INGEST_FILES.arrow_schema()
EXCLUSIONS_SCHEMA = INGEST_EXCLUSIONS.arrow_schema()

#: A quoted value inside a reason ('30-12-2017', 'it''s'): folded to '…' to group reasons.
_QUOTED = r"'(?:[^']|'')*'"


def ensure_tables(engine: Any) -> None:
    """The ingest's own tables, and the columns an earlier version's store lacks (added
    empty: the ledger's ``excluded``, the canonical tables' published-text columns)."""
    engine.create_empty(QUARANTINE_TABLE, QUARANTINE_SCHEMA)
    engine.create_empty(FILES_TABLE, FILES_SCHEMA)
    engine.create_empty(EXCLUSIONS_TABLE, EXCLUSIONS_SCHEMA)
    engine.add_missing_columns(FILES_TABLE, FILES_SCHEMA)
    for table in TABLES.values():
        engine.add_missing_columns(table.name, table.arrow_schema())


def reason_kind(reason: str) -> str:
    """A reason with its quoted values folded, so that reasons group by kind.

    >>> reason_kind("unparseable date '30-12-2017' in column Month (expected %Y-%m)")
    "unparseable date '…' in column Month (expected %Y-%m)"
    """
    return re.sub(_QUOTED, "'…'", reason)


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
    """The ledger: one row per ingested file with read = loaded + excluded + quarantined."""
    eng = project.engine
    if not eng.has_table(FILES_TABLE):
        return []
    t = eng.table(FILES_TABLE)
    return eng.to_pyarrow(t.order_by(t.time)).to_pylist()


def excluded_rows(project: Any, file: str | None = None) -> list[dict[str, Any]]:
    """Rows excluded as outside a profile's scope, counted by file, rule and value."""
    eng = project.engine
    if not eng.has_table(EXCLUSIONS_TABLE):
        return []
    t = eng.table(EXCLUSIONS_TABLE)
    if file:
        t = t.filter(t.file.contains(file))
    return eng.to_pyarrow(t.order_by([t.file, t.first_line])).to_pylist()


def ingest_summary(project: Any, file: str | None = None) -> dict[str, Any]:
    """What became of every ingested file's rows: per file, read = loaded + excluded +
    quarantined, the quarantined rows by reason (quoted values folded, with the first line
    and an example) and the excluded rows by reason (with the source values and their rows).

    ``totals`` adds the files up; ``quarantine_reasons`` and ``excluded_reasons`` are the
    same counts over all files.
    """
    eng = project.engine
    ledger = [r for r in ingested_files(project) if not file or file in (r["file"] or "")]
    quarantine: dict[tuple, list[dict[str, Any]]] = {}
    if eng.has_table(QUARANTINE_TABLE):
        t = eng.table(QUARANTINE_TABLE)
        if file:
            t = t.filter(t.file.contains(file))
        kind = t.reason.re_replace(_QUOTED, "'…'")
        g = t.group_by([t.sha256, t.profile, kind.name("reason")]).aggregate(
            rows=t.count(), first_line=t.line.min(), example=t.reason.min())
        for r in eng.to_pyarrow(g).to_pylist():
            quarantine.setdefault((r["sha256"], r["profile"]), []).append(
                {"reason": r["reason"], "rows": int(r["rows"]),
                 "first_line": r["first_line"], "example": r["example"]})
    excluded: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in excluded_rows(project, file):
        by = excluded.setdefault((r["sha256"], r["profile"]), {})
        e = by.setdefault(r["reason"], {"reason": r["reason"], "column": r["column"],
                                        "rows": 0, "first_line": r["first_line"],
                                        "values": {}})
        e["rows"] += int(r["rows"])
        e["first_line"] = min(e["first_line"], r["first_line"])
        e["values"][r["value"]] = e["values"].get(r["value"], 0) + int(r["rows"])
    files = []
    for r in ledger:
        key = (r["sha256"], r["profile"])
        counts = {k: int(r.get(k) or 0) for k in ("read", "loaded", "excluded", "quarantined")}
        files.append({
            "file": r["file"], "sha256": r["sha256"], "profile": r["profile"], **counts,
            "reconciles": counts["read"] == counts["loaded"] + counts["excluded"]
            + counts["quarantined"],
            "quarantine_reasons": sorted(quarantine.get(key, []), key=lambda x: -x["rows"]),
            "excluded_reasons": sorted(excluded.get(key, {}).values(),
                                       key=lambda x: -x["rows"]),
        })
    totals = {k: sum(f[k] for f in files) for k in ("read", "loaded", "excluded",
                                                    "quarantined")}
    return {"files": files, "totals": totals,
            "quarantine_reasons": _overall(f["quarantine_reasons"] for f in files),
            "excluded_reasons": _overall(f["excluded_reasons"] for f in files)}


def _overall(per_file) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for reasons in per_file:
        for r in reasons:
            o = out.setdefault(r["reason"], {"reason": r["reason"], "rows": 0, "files": 0})
            o["rows"] += r["rows"]
            o["files"] += 1
    return sorted(out.values(), key=lambda x: -x["rows"])
