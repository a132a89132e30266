"""The data-quality annex: what every input file gave, and how crimes were linked.

Per file: rows read, loaded, excluded (outside the tool's scope by the profile's rules) and
quarantined (wrong), from the store's ``ingest_files`` table; per file and reason, the rows
excluded and quarantined, from the ``quarantine`` table. Stores written before ingest
counted exclusions separately have no ``excluded`` column: their excluded rows are then
``None`` (shown as "not counted separately"), never a made-up zero.

>>> rows = [{"file": "a.csv", "read": 10, "loaded": 7, "quarantined": 3}]
>>> reconcile(rows)[0]["reconciles"], reconcile(rows)[0]["excluded"]
(True, None)
>>> reconcile([{"file": "b.csv", "read": 10, "loaded": 6, "excluded": 2,
...             "quarantined": 1}])[0]["reconciles"]
False
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Columns of ``quarantine`` (or of a separate table of exclusions) that may say whether a row
#: was excluded or quarantined, and the values that mean "excluded".
KIND_COLUMNS = ("kind", "disposition", "status", "outcome")
EXCLUDED_VALUES = {"excluded", "exclude", "out_of_scope", "out of scope"}
#: Tables a store may keep excluded rows in, apart from quarantine (``ingest_exclusions``
#: counts them by file, rule and value in a ``rows`` column).
EXCLUSION_TABLES = ("ingest_exclusions",)


def reconcile(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each file row with ``excluded`` (None when not counted) and whether read = loaded +
    excluded + quarantined."""
    out = []
    for r in rows:
        exc = r.get("excluded")
        total = (r.get("loaded") or 0) + (exc or 0) + (r.get("quarantined") or 0)
        out.append(dict(r, excluded=exc, reconciles=r.get("read") == total))
    return out


def _columns(eng, name: str) -> list[str]:
    return list(eng.table(name).columns) if eng.has_table(name) else []


def ingest_summary(project) -> dict[str, Any] | None:
    """Files and reasons as the annex shows them (None when nothing was ingested)."""
    eng = project.engine
    cols = _columns(eng, "ingest_files")
    if not cols:
        return None
    t = eng.table("ingest_files")
    keep = [c for c in ("file", "profile", "table", "read", "loaded", "excluded",
                        "quarantined", "sha256") if c in cols]
    files = eng.to_pandas(t.select(*keep))
    if files.empty:
        return None
    rows = []
    for r in files.sort_values("file", kind="stable").to_dict("records"):
        d = {k: (None if _missing(v) else v) for k, v in r.items()}
        for k in ("read", "loaded", "excluded", "quarantined"):
            if d.get(k) is not None:
                d[k] = int(d[k])
        d["name"] = Path(str(d.get("file") or "")).name
        rows.append(d)
    reasons = _reasons(project)
    rows = reconcile(rows)
    totals = {k: sum(r[k] or 0 for r in rows) for k in ("read", "loaded", "quarantined")}
    totals["excluded"] = (sum(r["excluded"] or 0 for r in rows)
                          if any(r["excluded"] is not None for r in rows) else None)
    return {"files": rows, "reasons": reasons, "totals": totals,
            "excluded_counted": "excluded" in cols,
            "reconciles": all(r["reconciles"] for r in rows)}


def _missing(v) -> bool:
    try:
        return v is None or v != v
    except Exception:
        return False


def _reasons(project) -> list[dict[str, Any]]:
    """Rows not loaded, by file, kind (excluded or quarantined) and reason, most first."""
    eng = project.engine
    out: list[dict[str, Any]] = []
    tables = [("quarantine", "quarantined")] + [(n, "excluded") for n in EXCLUSION_TABLES]
    for name, default_kind in tables:
        cols = _columns(eng, name)
        if "reason" not in cols:
            continue
        t = eng.table(name)
        kind_col = next((c for c in KIND_COLUMNS if c in cols), None)
        by = [c for c in ("file", "sha256", "table") if c in cols] + ["reason"]
        if kind_col:
            by.append(kind_col)
        rows = t["rows"].sum() if "rows" in cols else t.count()
        df = eng.to_pandas(t.group_by(by).aggregate(rows=rows))
        for r in df.to_dict("records"):
            kind = default_kind
            if kind_col and str(r.get(kind_col) or "").lower() in EXCLUDED_VALUES:
                kind = "excluded"
            out.append({"file": Path(str(r.get("file") or "")).name,
                        "table": r.get("table"), "kind": kind,
                        "reason": str(r["reason"]), "rows": int(r["rows"] or 0)})
    out.sort(key=lambda r: (r["file"], r["kind"], -r["rows"], r["reason"]))
    return out


__all__ = ["ingest_summary", "reconcile"]
