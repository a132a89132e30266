"""The decisions store: every auditor decision, append-only.

Table ``audit_decisions`` holds one row per decision with its auditor, time and source (the
sheet file, or ``oracle``). Nothing is ever updated or deleted: a corrected decision is a new
row that names the row it ``supersedes``; estimators use the latest row per record
(highest ``decision_id``). :func:`history` shows every version of a record's decision.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

DECISIONS_TABLE = "audit_decisions"

#: The decision columns and their allowed values (``correct_class``: an offence code).
VOCABULARY: dict[str, tuple[str, ...]] = {
    "should_record": ("yes", "no", "cannot_tell"),
    "recorded": ("yes", "no"),
    "correctly_classified": ("yes", "no"),
    "within_time_limit": ("yes", "no"),
    "cancellation_valid": ("yes", "no"),
    "victim_told": ("yes", "no"),
}
DECISION_COLUMNS = (
    "should_record", "recorded", "correctly_classified", "correct_class",
    "within_time_limit", "cancellation_valid", "victim_told",
)

DECISION_SCHEMA = pa.schema(
    [
        ("decision_id", pa.int64()),
        ("sample_id", pa.string()),
        ("record_type", pa.string()),
        ("record_id", pa.string()),
        *[(c, pa.string()) for c in DECISION_COLUMNS],
        ("auditor", pa.string()),
        ("notes", pa.string()),
        ("decided_at", pa.timestamp("us")),
        ("source", pa.string()),
        ("batch", pa.string()),
        ("supersedes", pa.int64()),
    ]
)


def append_decisions(project, rows: pd.DataFrame, source: str, batch: str) -> int:
    """Append validated decision rows (one per record) in one transaction; returns the count.

    ``rows`` has sample_id, record_type, record_id, the decision columns, auditor and notes.
    """
    eng = project.engine
    eng.create_empty(DECISIONS_TABLE, DECISION_SCHEMA)
    with eng.transaction():
        t = eng.table(DECISIONS_TABLE)
        sample_ids = sorted(set(rows.sample_id))
        prior = eng.to_pandas(
            t.filter(t.sample_id.isin(sample_ids)).select("decision_id", "record_id")
        )
        latest = prior.groupby("record_id").decision_id.max().to_dict() if len(prior) else {}
        start = int(t.decision_id.max().execute() or 0) + 1
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        out = rows.reset_index(drop=True).copy()
        out["decision_id"] = range(start, start + len(out))
        out["decided_at"] = pd.Timestamp(now)
        out["source"] = source
        out["batch"] = batch
        out["supersedes"] = out.record_id.map(latest).astype("Int64")
        for c in (*DECISION_COLUMNS, "auditor", "notes"):
            out[c] = out[c].where(out[c].notna() & (out[c].astype(str) != ""), None)
        table = pa.Table.from_pandas(
            out[[f.name for f in DECISION_SCHEMA]], schema=DECISION_SCHEMA, preserve_index=False
        )
        eng.write(DECISIONS_TABLE, table, mode="append")
    return len(out)


def all_decisions(project, sample_id: str | None = None) -> pd.DataFrame:
    """Every stored decision row (of one sample), oldest first."""
    eng = project.engine
    if not eng.has_table(DECISIONS_TABLE):
        return pd.DataFrame(columns=[f.name for f in DECISION_SCHEMA])
    t = eng.table(DECISIONS_TABLE)
    if sample_id:
        t = t.filter(t.sample_id == sample_id)
    return eng.to_pandas(t.order_by("decision_id")).reset_index(drop=True)


def latest_decisions(project, sample_id: str) -> pd.DataFrame:
    """The current decision per record of a sample: the latest row wins."""
    d = all_decisions(project, sample_id)
    if d.empty:
        return d
    return d.sort_values("decision_id").groupby("record_id", as_index=False).tail(1).reset_index(
        drop=True
    )


def history(project, sample_id: str, record_id: str) -> pd.DataFrame:
    """Every version of one record's decision, oldest first."""
    d = all_decisions(project, sample_id)
    return d[d.record_id == record_id].reset_index(drop=True)
