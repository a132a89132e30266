"""The decisions store: every auditor decision, append-only and hash-chained.

Table ``audit_decisions`` holds one row per decision with its auditor, time and source (the
sheet file, ``oracle``, or the workbench). Nothing is ever updated or deleted: a corrected
decision is a new row that names the row it ``supersedes``. Each row has a ``review`` kind:

* ``first``: the auditor's review (what every sheet and the oracle write);
* ``second``: a blind second review of the same record, for agreement statistics;
* ``adjudication``: a lead's resolution where the two disagreed.

The *current* decision of a record, which estimators use, is its latest adjudication if it has
one, else its latest first review (:func:`latest_decisions`). Every row carries ``prev_hash``
and ``row_hash`` = SHA-256 of the previous row's hash and its own fields, so an edited,
deleted or reordered row breaks the chain; :func:`verify_chain` names the first broken row.
:func:`history` shows every version of a record's decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

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
REVIEWS = ("first", "second", "adjudication")
GENESIS = "0" * 64
#: The fields a row's hash covers, in this order (everything but the hash itself).
HASHED = tuple(f.name for f in DECISION_SCHEMA if f.name != "row_hash")


def row_hash(prev_hash: str, row: dict) -> str:
    """SHA-256 of the previous hash and the row's fields, canonically written.

    >>> h = row_hash(GENESIS, {"decision_id": 1, "should_record": "yes"})
    >>> len(h), h == row_hash(GENESIS, {"decision_id": 1, "should_record": "no"})
    (64, False)
    """
    fields = {k: _canonical(row.get(k)) for k in HASHED if k != "prev_hash"}
    text = prev_hash + json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(v):
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp | dt.datetime):
        return pd.Timestamp(v).isoformat()
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    return v


def _upgrade(eng) -> None:
    """A decisions table from an earlier version gains the review and hash columns (rows
    before the upgrade are 'first' reviews; the chain starts over them at the upgrade)."""
    t = eng.table(DECISIONS_TABLE)
    missing = [f for f in DECISION_SCHEMA if f.name not in t.columns]
    if not missing:
        return
    old = eng.to_pyarrow(t.order_by("decision_id"))
    rows = old.to_pylist()
    prev = GENESIS
    for r in rows:
        r.setdefault("review", "first")
        r["prev_hash"] = prev
        r["row_hash"] = prev = row_hash(prev, r)
    eng.write(DECISIONS_TABLE, pa.Table.from_pylist(rows, schema=DECISION_SCHEMA))


def append_decisions(project, rows: pd.DataFrame, source: str, batch: str,
                     review: str = "first") -> int:
    """Append validated decision rows (one per record) in one transaction; returns the count.

    ``rows`` has sample_id, record_type, record_id, the decision columns, auditor and notes
    (and optionally a ``review`` column; else every row is of kind ``review``). A row
    supersedes the latest earlier row of the same sample, record and review kind.
    """
    if review not in REVIEWS:
        raise ValueError(f"review must be one of {REVIEWS}, not {review!r}")
    eng = project.engine
    eng.create_empty(DECISIONS_TABLE, DECISION_SCHEMA)
    with eng.transaction():
        _upgrade(eng)
        t = eng.table(DECISIONS_TABLE)
        out = rows.reset_index(drop=True).copy()
        if "review" not in out:
            out["review"] = review
        bad = sorted(set(out.review) - set(REVIEWS))
        if bad:
            raise ValueError(f"unknown review kind(s) {bad}; use one of {REVIEWS}")
        sample_ids = sorted(set(out.sample_id))
        prior = eng.to_pandas(t.filter(t.sample_id.isin(sample_ids)).select(
            "decision_id", "sample_id", "record_id", "review"))
        latest = (prior.groupby(["sample_id", "record_id", "review"]).decision_id.max()
                  .to_dict() if len(prior) else {})
        last = eng.to_pandas(t.order_by(ibis.desc(t.decision_id)).limit(1)
                             .select("decision_id", "row_hash"))
        start = int(last.decision_id.iloc[0]) + 1 if len(last) else 1
        prev = str(last.row_hash.iloc[0]) if len(last) and last.row_hash.iloc[0] else GENESIS
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        out["decision_id"] = range(start, start + len(out))
        out["decided_at"] = pd.Timestamp(now)
        out["source"] = source
        out["batch"] = batch
        out["supersedes"] = [latest.get(k) for k in zip(out.sample_id, out.record_id,
                                                        out.review, strict=True)]
        out["supersedes"] = out.supersedes.astype("Int64")
        for c in (*DECISION_COLUMNS, "auditor", "notes"):
            out[c] = out[c].where(out[c].notna() & (out[c].astype(str) != ""), None)
        records = out[[f.name for f in DECISION_SCHEMA if f.name not in ("prev_hash",
                                                                          "row_hash")]]
        chained = []
        for r in records.to_dict("records"):
            r["prev_hash"] = prev
            r["row_hash"] = prev = row_hash(prev, r)
            chained.append(r)
        table = pa.Table.from_pandas(pd.DataFrame(chained)[[f.name for f in DECISION_SCHEMA]],
                                     schema=DECISION_SCHEMA, preserve_index=False)
        eng.write(DECISIONS_TABLE, table, mode="append")
    return len(out)


def verify_chain(project) -> tuple[int, int | None]:
    """Check the decisions' hash chain: (rows checked, the first broken decision_id or None).

    A row is broken when its ``prev_hash`` is not the previous row's ``row_hash`` or its
    ``row_hash`` does not match its fields (edited, deleted, inserted or reordered rows).
    """
    eng = project.engine
    if not eng.has_table(DECISIONS_TABLE):
        return 0, None
    t = eng.table(DECISIONS_TABLE)
    if "row_hash" not in t.columns:
        return 0, None
    prev = GENESIS
    n = 0
    for batch in eng.to_pyarrow_batches(t.order_by("decision_id")):
        for r in batch.to_pylist():
            n += 1
            if r["prev_hash"] != prev or row_hash(prev, r) != r["row_hash"]:
                return n, int(r["decision_id"])
            prev = r["row_hash"]
    return n, None


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
                     across_samples: bool = False, review: str = "current") -> pd.DataFrame:
    """The current decision per record: the latest row (highest ``decision_id``) wins.

    The one place "latest decision" is defined. Per record of one sample (``sample_id``), per
    record of each sample (``None``), or per record over every sample (``across_samples``: a
    record audited in two samples keeps its most recent decision, as the screen's training
    wants). ``review="current"`` takes a record's adjudication if it has one, else its first
    review (what estimators use); ``"first"``, ``"second"`` or ``"adjudication"`` take only
    that kind. Chosen in the engine; only the current decisions come back.
    """
    eng = project.engine
    if not eng.has_table(DECISIONS_TABLE):
        return pd.DataFrame(columns=[f.name for f in DECISION_SCHEMA])
    t = eng.table(DECISIONS_TABLE)
    if sample_id:
        t = t.filter(t.sample_id == sample_id)
    if "review" in t.columns:
        kind = t.review.fill_null("first")
        if review == "current":
            t = t.filter(kind.isin(["first", "adjudication"])).mutate(
                _adj=(kind == "adjudication").cast("int8"))
        else:
            t = t.filter(kind == review).mutate(_adj=ibis.literal(0, "int8"))
    else:
        t = t.mutate(_adj=ibis.literal(0, "int8"))
    keys = ["record_type", "record_id"] if across_samples else ["sample_id", "record_type",
                                                                "record_id"]
    ranked = t.mutate(_k=ibis.row_number().over(
        group_by=keys, order_by=[ibis.desc(t._adj), ibis.desc(t.decision_id)]))
    latest = ranked.filter(ranked._k == 0).drop("_k", "_adj").order_by("decision_id")
    return eng.to_pandas(latest).reset_index(drop=True)


def history(project, sample_id: str, record_id: str) -> pd.DataFrame:
    """Every version of one record's decision, oldest first."""
    d = all_decisions(project, sample_id)
    return d[d.record_id == record_id].reset_index(drop=True)
