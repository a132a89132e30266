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

Where the rows live: the project store by default; for a team, the PostgreSQL database that
``project.yaml`` names as ``decisions_db`` (set once by :func:`move_decisions_to_postgres`, which
``crimeaudit serve --db postgresql://...`` calls). Only the storage differs
(:mod:`crimeaudit.audit.decisions_postgres` moves rows in and out): the chain, ``supersedes``
and :func:`latest_decisions` are defined here once, so an estimate reads the same decisions
whichever store holds them.
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


def _postgres(project):
    """The project's PostgreSQL decisions (``decisions_db`` in project.yaml), or None when they
    are in the project store. Opened once per open project."""
    url = getattr(project.config, "decisions_db", None)
    if not url:
        return None
    ledger = getattr(project, "_decisions_postgres", None)
    if ledger is None or ledger.url != url:
        from crimeaudit.audit.decisions_postgres import PostgresDecisions

        ledger = PostgresDecisions(url, DECISION_SCHEMA, project.config.name,
                                   project.config.created)
        project._decisions_postgres = ledger
    return ledger


def decisions_location(project) -> str:
    """Where the project's decisions are, for messages: the store file or the database."""
    ledger = _postgres(project)
    return ledger.describe() if ledger else str(project.engine.location)


def _table(project, sample_id: str | None = None):
    """The decision rows (of one sample) as an engine table, wherever they are kept; None
    when there are none yet. Every reader below starts here, so "latest" has one definition
    whichever store holds the rows."""
    eng = project.engine
    ledger = _postgres(project)
    if ledger is not None:
        return eng.memtable(ledger.read(sample_id))
    if not eng.has_table(DECISIONS_TABLE):
        return None
    t = eng.table(DECISIONS_TABLE)
    return t.filter(t.sample_id == sample_id) if sample_id else t


def _upgrade_if_needed(eng) -> None:
    if any(f.name not in eng.table(DECISIONS_TABLE).columns for f in DECISION_SCHEMA):
        with eng.transaction():
            _upgrade(eng)


def _prepare(rows: pd.DataFrame, review: str) -> pd.DataFrame:
    if review not in REVIEWS:
        raise ValueError(f"review must be one of {REVIEWS}, not {review!r}")
    out = rows.reset_index(drop=True).copy()
    if "review" not in out:
        out["review"] = review
    bad = sorted(set(out.review) - set(REVIEWS))
    if bad:
        raise ValueError(f"unknown review kind(s) {bad}; use one of {REVIEWS}")
    return out


def _chained(out: pd.DataFrame, latest: dict[tuple, int], last_id: int,
             last_hash: str | None, source: str, batch: str) -> pa.Table:
    """The new rows with ids, times, ``supersedes`` and the hash chain continued from the last
    stored row (``last_id``, ``last_hash``); ``latest`` maps (sample_id, record_id, review) to
    the highest stored decision_id of that key (what a new row of the key supersedes)."""
    prev = str(last_hash) if last_hash else GENESIS
    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    given = [f.name for f in DECISION_SCHEMA if f.name not in _SET_HERE]
    chained = []
    for i, r in enumerate(out[given].to_dict("records"), start=int(last_id) + 1):
        for c, v in r.items():
            if v is not None and _blank(v) and (c in _BLANK_IS_NULL or not isinstance(v, str)):
                r[c] = None
        r.update(decision_id=i, decided_at=now, source=source, batch=batch,
                 supersedes=latest.get((r["sample_id"], r["record_id"], r["review"])))
        r["prev_hash"] = prev
        r["row_hash"] = prev = row_hash(prev, r)
        chained.append(r)
    return pa.Table.from_pylist(chained, schema=DECISION_SCHEMA)


#: Columns :func:`_chained` fills in (the caller gives every other column).
_SET_HERE = ("decision_id", "decided_at", "source", "batch", "supersedes", "prev_hash",
             "row_hash")
_BLANK_IS_NULL = (*DECISION_COLUMNS, "auditor", "notes")


def _blank(v) -> bool:
    return v is None or (not isinstance(v, str) and pd.isna(v)) or str(v) == ""


def _latest_ids(rows) -> dict[tuple, int]:
    """(sample_id, record_id, review) -> highest decision_id, from result rows of the four."""
    return {(s, r, k): int(i) for s, r, k, i in rows if k is not None}


_STORE_TAIL = (f"SELECT decision_id, row_hash FROM {DECISIONS_TABLE} "
               "ORDER BY decision_id DESC LIMIT 1")


def _store_latest(sample_ids: list[str]) -> str:
    """The highest decision id of each (sample, record, review) of ``sample_ids``, in SQL
    that DuckDB and Spark both run (one ``?`` per sample).

    >>> _store_latest(["s1", "s2"]).split("WHERE ")[1][:26]
    'sample_id IN (?, ?) GROUP '
    """
    marks = ", ".join("?" * len(sample_ids))
    return (f"SELECT sample_id, record_id, review, max(decision_id) FROM {DECISIONS_TABLE} "
            f"WHERE sample_id IN ({marks}) GROUP BY sample_id, record_id, review")


def _store_ready(eng) -> None:
    """Create the store's decisions table, or upgrade one from an earlier version, when needed:
    one catalogue query when it is ready (as on every append but the first)."""
    have = set(eng.columns(DECISIONS_TABLE))
    if not have:
        eng.create_empty(DECISIONS_TABLE, DECISION_SCHEMA)
    elif any(f.name not in have for f in DECISION_SCHEMA):
        with eng.transaction():
            _upgrade(eng)


def append_decisions(project, rows: pd.DataFrame, source: str, batch: str,
                     review: str = "first") -> int:
    """Append validated decision rows (one per record) in one transaction; returns the count
    (:func:`append_decision_rows` returns the stored rows themselves).

    ``rows`` has sample_id, record_type, record_id, the decision columns, auditor and notes
    (and optionally a ``review`` column; else every row is of kind ``review``). A row
    supersedes the latest earlier row of the same sample, record and review kind. The rows go
    to the project store, or to the project's PostgreSQL decisions when ``project.yaml`` names
    ``decisions_db``; the chain and the rules are the same.
    """
    return append_decision_rows(project, rows, source, batch, review).num_rows


def append_decision_rows(project, rows: pd.DataFrame, source: str, batch: str,
                         review: str = "first") -> pa.Table:
    """:func:`append_decisions`, returning the rows as stored (ids, times, hashes): a caller
    that keeps the decisions in memory (the workbench) adds them without reading all again."""
    out = _prepare(rows, review)
    sample_ids = sorted(set(out.sample_id))
    ledger = _postgres(project)
    if ledger is not None:
        return ledger.append(sample_ids, lambda latest, last_id, last_hash: _chained(
            out, _latest_ids(latest), last_id, last_hash, source, batch))
    eng = project.engine
    _store_ready(eng)
    # Three plain SQL statements in one transaction (the tail, the superseded ids of these
    # samples, the insert): the tail is read inside it, so the chain continues from what is
    # stored, whoever wrote last.
    with eng.transaction():
        last = eng.rows(_STORE_TAIL)
        latest = _latest_ids(eng.rows(_store_latest(sample_ids), tuple(sample_ids)))
        table = _chained(out, latest, int(last[0][0]) if last else 0,
                         last[0][1] if last else None, source, batch)
        eng.insert_rows(DECISIONS_TABLE, table)
    return table


def _broken(rows) -> tuple[int, int | None]:
    prev = GENESIS
    n = 0
    for r in rows:
        n += 1
        if r["prev_hash"] != prev or row_hash(prev, r) != r["row_hash"]:
            return n, int(r["decision_id"])
        prev = r["row_hash"]
    return n, None


def _store_rows(eng):
    t = eng.table(DECISIONS_TABLE)
    for batch in eng.to_pyarrow_batches(t.order_by("decision_id")):
        yield from batch.to_pylist()


def verify_chain(project) -> tuple[int, int | None]:
    """Check the decisions' hash chain: (rows checked, the first broken decision_id or None).

    A row is broken when its ``prev_hash`` is not the previous row's ``row_hash`` or its
    ``row_hash`` does not match its fields (edited, deleted, inserted or reordered rows).
    Checks wherever the project keeps its decisions (the store or PostgreSQL).
    """
    ledger = _postgres(project)
    if ledger is not None:
        return _broken(ledger.read().to_pylist())
    eng = project.engine
    if not eng.has_table(DECISIONS_TABLE):
        return 0, None
    if "row_hash" not in eng.table(DECISIONS_TABLE).columns:
        return 0, None
    return _broken(_store_rows(eng))


def move_decisions_to_postgres(project, url: str) -> int:
    """Make PostgreSQL at ``url`` the home of the project's decisions; returns the rows copied.

    The store's rows are checked (an intact chain only), copied with their ids and hashes
    after any already there (a move killed half-way resumes), and ``project.yaml`` then names
    the database (without a password), so every later reader and writer, on any machine, uses
    it. The store's own table stays as it was at the move and is read by nothing.
    """
    from crimeaudit.audit.decisions_postgres import (
        DecisionsDatabaseError,
        PostgresDecisions,
        is_postgres_url,
        remember,
        without_password,
    )

    if not is_postgres_url(url):
        raise DecisionsDatabaseError(f"the decisions database must be a postgresql:// URL, "
                                     f"not {url.split(':')[0]!r}")
    remember(url)
    current = getattr(project.config, "decisions_db", None)
    if current:
        if current != without_password(url):
            raise DecisionsDatabaseError(
                f"the decisions of {project.path} are in {current}, not {without_password(url)}")
        return 0
    eng = project.engine
    local = pa.Table.from_pylist([], schema=DECISION_SCHEMA)
    if eng.has_table(DECISIONS_TABLE):
        checked, broken = verify_chain(project)
        if broken is not None:
            raise DecisionsDatabaseError(
                f"the decision chain of {project.path} breaks at decision_id {broken}: "
                "run crimeaudit verify and repair it before moving the decisions")
        _upgrade_if_needed(eng)
        local = eng.to_pyarrow(eng.table(DECISIONS_TABLE).order_by("decision_id")).cast(
            DECISION_SCHEMA)
    ledger = PostgresDecisions(url, DECISION_SCHEMA, project.config.name, project.config.created)
    there = ledger.read()
    n = there.num_rows
    ours = local.column("row_hash").to_pylist()[:n]
    if n and (n > local.num_rows or there.column("row_hash").to_pylist() != ours):
        raise DecisionsDatabaseError(
            f"{ledger.describe()} already holds decisions that are not this project's "
            "first ones; give the project an empty database")
    ledger.copy_in(local.slice(n))
    project.record_decisions_db(ledger.url)
    project._decisions_postgres = ledger
    return local.num_rows - n


def all_decisions(project, sample_id: str | None = None) -> pd.DataFrame:
    """Every stored decision row (of one sample), oldest first."""
    t = _table(project, sample_id)
    if t is None:
        return pd.DataFrame(columns=[f.name for f in DECISION_SCHEMA])
    return project.engine.to_pandas(t.order_by("decision_id")).reset_index(drop=True)


def latest_decisions(project, sample_id: str | None = None,
                     across_samples: bool = False, review: str = "current") -> pd.DataFrame:
    """The current decision per record: the latest row (highest ``decision_id``) wins.

    The one place "latest decision" is defined, whichever store holds the rows. Per record of
    one sample (``sample_id``), per record of each sample (``None``), or per record over every
    sample (``across_samples``: a record audited in two samples keeps its most recent decision,
    as the screen's training wants). ``review="current"`` takes a record's adjudication if it
    has one, else its first review (what estimators use); ``"first"``, ``"second"`` or
    ``"adjudication"`` take only that kind. Chosen in the engine; only the current decisions
    come back.
    """
    eng = project.engine
    t = _table(project, sample_id)
    if t is None:
        return pd.DataFrame(columns=[f.name for f in DECISION_SCHEMA])
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
