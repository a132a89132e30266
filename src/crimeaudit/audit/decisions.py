"""The decisions store: every auditor decision, append-only.

Table ``audit_decisions`` holds one row per decision with its auditor, time and source (the
sheet file, or ``oracle``). Nothing is ever updated or deleted: a corrected decision is a new
row that names the row it ``supersedes``; estimators use the latest row per record
(highest ``decision_id``). :func:`history` shows every version of a record's decision.
"""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pyarrow as pa

from crimeaudit.model.schema import AUDIT_DECISIONS

DECISIONS_TABLE = AUDIT_DECISIONS.name

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

DECISION_SCHEMA = AUDIT_DECISIONS.arrow_schema()


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


def latest_decisions(project, sample_id: str | None = None,
                     across_samples: bool = False) -> pd.DataFrame:
    """The current decision per record: the latest row (highest ``decision_id``) wins.

    The one place "latest decision" is defined. Per record of one sample (``sample_id``), per
    record of each sample (``None``), or per record over every sample (``across_samples``: a
    record audited in two samples keeps its most recent decision, as the screen's training
    wants). Chosen in the engine; only the current decisions come back.
    """
    eng = project.engine
    if not eng.has_table(DECISIONS_TABLE):
        return pd.DataFrame(columns=[f.name for f in DECISION_SCHEMA])
    t = eng.table(DECISIONS_TABLE)
    if sample_id:
        t = t.filter(t.sample_id == sample_id)
    keys = ["record_type", "record_id"] if across_samples else ["sample_id", "record_type",
                                                                "record_id"]
    ranked = t.mutate(_k=ibis.row_number().over(group_by=keys,
                                                order_by=ibis.desc(t.decision_id)))
    latest = ranked.filter(ranked._k == 0).drop("_k").order_by("decision_id")
    return eng.to_pandas(latest).reset_index(drop=True)


def history(project, sample_id: str, record_id: str) -> pd.DataFrame:
    """Every version of one record's decision, oldest first."""
    d = all_decisions(project, sample_id)
    return d[d.record_id == record_id].reset_index(drop=True)
