"""The review workbench's work, apart from HTTP: queues, records, decisions, double review.

A :class:`Workbench` holds the project open for as long as the server runs (the DuckDB store
admits one process) and serialises every use of it with one lock, so two auditors submitting
at once are two transactions one after the other, never interleaved. A decision is stored only
if the record's decision of that kind is still the one the auditor saw (``seen``); otherwise
:class:`DecisionConflict` says who decided it meanwhile. Decisions go through
:func:`crimeaudit.audit.decisions.append_decisions` (append-only, hash-chained) with source
``workbench`` and the logged-in user as auditor; they are checked exactly like a sheet's rows
(:func:`crimeaudit.audit.review.validate_rows`).

Roles: a *viewer* reads; an *auditor* reviews the records assigned to them (first or blind
second review); a *lead* also assigns records, sets the second-review share, adjudicates
disagreements and closes a sample. Blindness is enforced here, not in a template: the view of
a second review carries no other review's decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from crimeaudit.audit.agreement import kappa_by_question, pairs
from crimeaudit.audit.decisions import (
    DECISION_COLUMNS,
    all_decisions,
    append_decision_rows,
    decisions_location,
    move_decisions_to_postgres,
    verify_chain,
)
from crimeaudit.audit.design import DESIGNS_TABLE, Sample, load_sample
from crimeaudit.audit.review import (
    ReviewSheetError,
    cancelled_records,
    linked_crimes,
    review_frame,
    validate_rows,
)
from crimeaudit.errors import CrimeauditError
from crimeaudit.web.store import User, WorkbenchStore, open_store

SOURCE = "workbench"
REVIEW_KINDS = ("first", "second", "adjudication")


class WorkbenchError(CrimeauditError):
    """A request the workbench refuses, with a message for the person who made it."""


class Forbidden(WorkbenchError):
    """The user's role or assignments do not allow this."""


class NotFound(WorkbenchError):
    """No such sample or record."""


class DecisionConflict(WorkbenchError):
    """The record was decided by someone else after the form was opened."""


class DecisionRefused(WorkbenchError):
    """The decision breaks the review vocabulary's rules; ``problems`` lists each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("decision not stored: " + "; ".join(problems))


def _clean(v: Any) -> Any:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d %H:%M")
    return v


def _how_linked(method: str | None, probability: float | None) -> str:
    """How a crime came to this record, in words: a Splink link is an inference, and the
    auditor must see that it is one.

    >>> _how_linked("probabilistic", 0.99731), _how_linked("exact", 1.0)
    ('by Splink, match probability 0.9973', 'by reference on the incident')
    """
    if method == "exact":
        return "by reference on the incident"
    if method == "probabilistic":
        return f"by Splink, match probability {float(probability):.4f}"
    if method == "itself":
        return "the sampled record itself"
    return method or ""


def _order_key(seed: int, record_id: str) -> str:
    """A seeded, reproducible order of records (the same seed picks the same records)."""
    return hashlib.sha256(f"{seed}:{record_id}".encode()).hexdigest()


class Workbench:
    """The project and the workbench store, shared by every request of one server."""

    def __init__(self, project, store: WorkbenchStore, session_minutes: float = 60.0):
        self.project = project
        self.store = store
        self.session_minutes = session_minutes
        self._lock = threading.RLock()
        self._samples: dict[str, Sample] = {}
        self._cancelled: dict[str, set[str]] = {}
        self._decisions: dict[str, pd.DataFrame] = {}
        self._record_facts: dict[str, dict[str, Any]] = {}
        self._rules = None
        self._codes = project.codes

    @classmethod
    def open(cls, directory: str | Path, db: str | None = None, session_minutes: float = 60.0,
             wait: float | None = None) -> Workbench:
        """Open the project and the team store. With a PostgreSQL ``db`` (or a project whose
        decisions are already there) the decisions live in that database too
        (:func:`~crimeaudit.audit.decisions.move_decisions_to_postgres`): a team's record is in
        one place, and every estimate reads it there."""
        from crimeaudit.store import Project

        store = open_store(directory, db)
        project = Project.open(directory, wait=wait)
        try:
            if db:
                move_decisions_to_postgres(project, db)
            decisions_location(project)  # reaches the decisions now, not at a first decision
        except BaseException:
            project.close()
            raise
        return cls(project, store, session_minutes)

    def close(self) -> None:
        with self._lock:
            self.project.close()

    # -- samples ----------------------------------------------------------------------------
    def samples(self) -> list[dict[str, Any]]:
        """Every drawn sample, newest first."""
        with self._lock:
            eng = self.project.engine
            if not eng.has_table(DESIGNS_TABLE):
                return []
            d = eng.to_pandas(eng.table(DESIGNS_TABLE))
        d = d.sort_values("drawn_at", ascending=False, kind="stable")
        return [{"sample_id": r.sample_id, "design": r.design, "size": int(r.sample_size),
                 "drawn_at": str(r.drawn_at)[:19], "closed": self.store.closed(r.sample_id)}
                for r in d.itertuples()]

    def sample(self, sample_id: str) -> Sample:
        with self._lock:
            if sample_id not in self._samples:
                if sample_id not in {s["sample_id"] for s in self.samples()}:
                    raise NotFound(f"no sample {sample_id!r}")
                self._samples[sample_id] = load_sample(self.project, sample_id)
            return self._samples[sample_id]

    def _cancelled_of(self, sample: Sample) -> set[str]:
        # The server holds the project, so no other process changes the crimes meanwhile.
        with self._lock:
            if sample.sample_id not in self._cancelled:
                self._cancelled[sample.sample_id] = cancelled_records(self.project, sample)
            return self._cancelled[sample.sample_id]

    def decisions(self, sample_id: str) -> pd.DataFrame:
        """Every decision row of the sample, oldest first (a copy: callers may change it).

        Cached until this workbench appends to the sample: while the server runs it holds the
        project, so no other process can write decisions behind it.
        """
        with self._lock:
            if sample_id not in self._decisions:
                d = all_decisions(self.project, sample_id)
                if "review" in d:
                    d["review"] = d["review"].fillna("first")
                self._decisions[sample_id] = d
            return self._decisions[sample_id].copy()

    def _facts(self, sample_id: str) -> dict[str, Any]:
        """What the review screen shows of every record of a sample, built once per sample
        (one pass of the engine for the whole sample instead of several per page view)."""
        with self._lock:
            if sample_id in self._record_facts:
                return self._record_facts[sample_id]
            sample = self.sample(sample_id)
            sheet = review_frame(self.project, sample)
            crimes = linked_crimes(self.project, sample)
            changes = self._changes(list(crimes.crime_id.astype(str)))
            scores = self._scores(sample)
            facts = {r["record_id"]: r for r in sheet.to_dict("records")}
            by_record: dict[str, list[dict]] = {}
            for c in crimes.to_dict("records"):
                by_record.setdefault(str(c["record_id"]), []).append(c)
            self._record_facts[sample_id] = {"facts": facts, "crimes": by_record,
                                             "changes": changes, "scores": scores}
            return self._record_facts[sample_id]

    @staticmethod
    def _decided(d: pd.DataFrame, kind: str) -> set[str]:
        return set(d.loc[d.review == kind, "record_id"]) if len(d) else set()

    # -- progress and agreement ---------------------------------------------------------------
    def progress(self, sample_id: str) -> dict[str, Any]:
        """Counts for the sample and for each auditor (what the lead watches)."""
        sample = self.sample(sample_id)
        d = self.decisions(sample_id)
        first, second = self._decided(d, "first"), self._decided(d, "second")
        assigned = self.store.assignments(sample_id)
        p = pairs(d)
        per: dict[str, dict[str, int]] = {}
        for a in assigned:
            row = per.setdefault(a.auditor, {"first_assigned": 0, "first_done": 0,
                                             "second_assigned": 0, "second_done": 0})
            row[f"{a.review}_assigned"] += 1
            row[f"{a.review}_done"] += a.record_id in (first if a.review == "first" else second)
        n = len(sample)
        return {
            "sample_id": sample_id, "records": n, "first_done": len(first),
            "first_assigned": sum(a.review == "first" for a in assigned),
            "second_assigned": sum(a.review == "second" for a in assigned),
            "second_done": len(second), "disagreements_open": int(p.open.sum()) if len(p) else 0,
            "disagreements": int(p.differs.map(bool).sum()) if len(p) else 0,
            "adjudicated": int(p.adjudication_id.notna().sum()) if len(p) else 0,
            "closed": self.store.closed(sample_id),
            "auditors": [{"name": k, **v} for k, v in sorted(per.items())],
        }

    def agreement(self, sample_id: str) -> pd.DataFrame:
        """Cohen's kappa per question over the records reviewed twice."""
        self.sample(sample_id)
        d = self.decisions(sample_id)
        return kappa_by_question(pairs(d), self.project.config.confidence_level)

    def disagreements(self, user: User, sample_id: str) -> pd.DataFrame:
        """Records whose two reviews differ (``open`` until adjudicated); leads only."""
        self._need(user, "lead")
        self.sample(sample_id)
        p = pairs(self.decisions(sample_id))
        return p[p.differs.map(bool)].reset_index(drop=True)

    # -- queues -------------------------------------------------------------------------------
    def queue(self, user: User) -> list[dict[str, Any]]:
        """The user's assigned records over every open sample, undecided ones first."""
        mine = self.store.assignments(auditor=user.name)
        out = []
        for sid in sorted({a.sample_id for a in mine}):
            if self.store.closed(sid):
                continue
            try:
                sample = self.sample(sid)
            except NotFound:
                continue
            d = self.decisions(sid)
            decided = {k: self._decided(d, k) for k in ("first", "second")}
            strata = dict(zip(sample.records.record_id, sample.records.stratum, strict=True))
            for a in (a for a in mine if a.sample_id == sid):
                out.append({"sample_id": sid, "record_id": a.record_id, "review": a.review,
                            "stratum": strata.get(a.record_id, ""),
                            "done": a.record_id in decided[a.review]})
        return sorted(out, key=lambda q: (q["done"], q["sample_id"], q["review"],
                                          q["record_id"]))

    def next_in_queue(self, user: User, sample_id: str, review: str) -> tuple[str, str] | None:
        """The user's next undecided (record_id, review) in this sample: the same kind of
        review first, then the other; None when nothing of the sample is left."""
        pending = [q for q in self.queue(user) if not q["done"] and q["sample_id"] == sample_id]
        pending.sort(key=lambda q: q["review"] != review)
        return (pending[0]["record_id"], pending[0]["review"]) if pending else None

    # -- permissions --------------------------------------------------------------------------
    @staticmethod
    def _need(user: User, *roles: str) -> None:
        if user.role not in roles:
            raise Forbidden(f"{user.name} is a {user.role}; this needs a "
                            f"{' or '.join(roles)}")

    def _assigned(self, user: User, sample_id: str, record_id: str, review: str) -> bool:
        return any(a.record_id == record_id and a.review == review
                   for a in self.store.assignments(sample_id, user.name))

    def may_view(self, user: User, sample_id: str, record_id: str, review: str) -> bool:
        """Who may open which view of a record. A second reviewer must not reach the first
        review's view of the same record (it shows the first decision), and vice versa."""
        if user.role == "lead":
            return True
        if user.role == "viewer":
            return review == "current"
        return review in ("first", "second") and self._assigned(user, sample_id, record_id,
                                                                 review)

    # -- one record -----------------------------------------------------------------------------
    def record(self, user: User, sample_id: str, record_id: str,
               review: str = "first") -> dict[str, Any]:
        """Everything the review screen shows for a record, for ``review``'s view of it.

        ``review`` is ``first``, ``second``, ``adjudication`` or ``current`` (read-only).
        Only the decisions that view may show are in it: a second review's carries none but
        its own.
        """
        if review not in (*REVIEW_KINDS, "current"):
            raise NotFound(f"no review kind {review!r}")
        sample = self.sample(sample_id)
        recs = sample.records
        if record_id not in set(recs.record_id):
            raise NotFound(f"record {record_id!r} is not in sample {sample_id}")
        if not self.may_view(user, sample_id, record_id, review):
            raise Forbidden(f"{record_id} is not in {user.name}'s {review} review queue")
        known = self._facts(sample_id)
        facts = known["facts"][record_id]
        changes = known["changes"]
        screen = self._screen(known["scores"].get(record_id), facts.get("narrative") or "")
        d = self.decisions(sample_id)
        mine = d[d.record_id == record_id]
        shown = {"first": ["first"], "second": ["second"],
                 "adjudication": ["first", "second", "adjudication"],
                 "current": ["first", "adjudication"]}[review]
        if review == "current" and user.role == "lead":
            shown = ["first", "second", "adjudication"]
        history = [{k: _clean(v) for k, v in r.items()}
                   for r in mine[mine.review.isin(shown)].to_dict("records")]
        own = [h for h in history if h["review"] == review]
        latest = {k: next((h for h in reversed(history) if h["review"] == k), None)
                  for k in shown}
        seen_rows = mine if review == "adjudication" else mine[mine.review == review]
        offences = self._codes.offences
        crime_rows = []
        reported = pd.Timestamp(facts["reported_at"]) if facts.get("reported_at") else None
        for c in known["crimes"].get(record_id, []):
            code = c["offence_code"]
            hours = None
            if reported is not None and pd.notna(c.get("recorded_at")):
                hours = (pd.Timestamp(c["recorded_at"]) - reported).total_seconds() / 3600
            c = {k: _clean(v) for k, v in c.items()}
            c["hours_after_report"] = hours
            c["linked"] = _how_linked(c.get("link_method"), c.get("match_probability"))
            c["offence"] = offences[code].description if code in offences else "unknown class"
            c["changes"] = changes.get(str(c["crime_id"]), [])
            crime_rows.append(c)
        return {
            "sample_id": sample_id, "record_id": record_id, "review": review,
            "record_type": facts["record_type"], "stratum": facts["stratum"],
            "facts": facts, "crimes": crime_rows, "screen": screen,
            "has_cancellation": record_id in self._cancelled_of(sample),
            "history": history, "latest": latest,
            "form": own[-1] if own else {},
            "seen": int(seen_rows.decision_id.max()) if len(seen_rows) else 0,
            "can_decide": self.may_decide(user, sample_id, record_id, review),
            "closed": self.store.closed(sample_id),
        }

    def _changes(self, crime_ids: list[str]) -> dict[str, list[dict]]:
        eng = self.project.engine
        if not crime_ids or not eng.has_table("classification_changes"):
            return {}
        cc = eng.table("classification_changes")
        rows = eng.to_pandas(cc.filter(cc.crime_id.isin(crime_ids)).order_by("changed_at"))
        out: dict[str, list[dict]] = {}
        for r in rows.to_dict("records"):
            out.setdefault(str(r["crime_id"]), []).append({k: _clean(v) for k, v in r.items()})
        return out

    def _scores(self, sample: Sample) -> dict[str, dict[str, Any]]:
        """The screen's scores of the sample's incidents, by incident id."""
        eng = self.project.engine
        if not eng.has_table("screen_scores"):
            return {}
        s = eng.table("screen_scores")
        ids = sample.records.loc[sample.records.record_type == "incident", "record_id"]
        rows = eng.to_pandas(s.filter(s.incident_id.isin(ids.tolist())))
        return {str(r["incident_id"]): r for r in rows.to_dict("records")}

    def _screen(self, r: dict[str, Any] | None, narrative: str) -> dict[str, Any] | None:
        """The screen's score for an incident and the reasons (rules that matched, and why)."""
        if r is None:
            return None
        if self._rules is None:
            from crimeaudit.screening.rules import load_rules

            self._rules = load_rules()
        book = self._rules
        reasons = []
        for hit in [h for h in str(_clean(r.get("rule_hits")) or "").split(";") if h]:
            try:
                reasons.append(book.explain(narrative, hit))
            except (KeyError, ValueError, CrimeauditError):
                reasons.append(f"{hit}: (rule not in the shipped rule book)")
        code = _clean(r.get("predicted_offence"))
        offences = self._codes.offences
        return {"p_crime": _clean(r.get("p_crime")), "predicted_offence": code,
                "predicted_description": offences[code].description if code in offences
                else "", "reasons": reasons}

    def may_decide(self, user: User, sample_id: str, record_id: str, review: str) -> bool:
        if self.store.closed(sample_id) or user.role == "viewer":
            return False
        if review == "adjudication":
            return user.role == "lead"
        return review in ("first", "second") and self._assigned(user, sample_id, record_id,
                                                                 review)

    def decide(self, user: User, sample_id: str, record_id: str, review: str, seen: int,
               answers: dict[str, str | None]) -> int:
        """Store one decision; returns its decision_id.

        Refused when the user may not decide it (:class:`Forbidden`), when the record's
        decision of this kind changed since the form showed ``seen`` (:class:`DecisionConflict`,
        naming who and when), or when the answers break the vocabulary (:class:`DecisionRefused`).
        """
        if review not in REVIEW_KINDS:
            raise NotFound(f"no review kind {review!r}")
        sample = self.sample(sample_id)
        if record_id not in set(sample.records.record_id):
            raise NotFound(f"record {record_id!r} is not in sample {sample_id}")
        if user.role == "viewer":
            raise Forbidden(f"{user.name} is a viewer; viewers read, they do not decide")
        if closed := self.store.closed(sample_id):
            raise Forbidden(f"sample {sample_id} was closed by {closed[0]} at {closed[1][:16]}")
        if not self.may_decide(user, sample_id, record_id, review):
            what = "a lead adjudicates" if review == "adjudication" else \
                f"{record_id} is not in {user.name}'s {review} review queue"
            raise Forbidden(what)
        row = {"sample_id": sample_id, "record_id": record_id, "auditor": user.name,
               **{c: (answers.get(c) or "").strip() for c in DECISION_COLUMNS},
               "notes": (answers.get("notes") or "").strip()}
        with self._lock:
            d = self.decisions(sample_id)
            mine = d[d.record_id == record_id]
            if review != "adjudication":
                mine = mine[mine.review == review]
            elif not (set(mine.review) >= {"first", "second"}):
                raise Forbidden(f"{record_id} has not been reviewed twice; nothing to "
                                "adjudicate")
            latest = int(mine.decision_id.max()) if len(mine) else 0
            if latest != int(seen):
                last = mine[mine.decision_id == latest].iloc[0]
                raise DecisionConflict(
                    f"{record_id} was decided meanwhile by {last.auditor} at "
                    f"{pd.Timestamp(last.decided_at):%Y-%m-%d %H:%M:%S} UTC "
                    f"({last.review} review); your decision was not stored. The record is "
                    "shown again with the newer decision: decide again if you still disagree.")
            try:
                clean = validate_rows([(1, row)], sample, self._cancelled_of(sample),
                                      self._codes, "decision", auditor=user.name,
                                      corrections=True)
            except ReviewSheetError as exc:
                raise DecisionRefused([e.removeprefix("line 1, ") for e in exc.errors]) from exc
            batch = f"workbench-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
            try:
                stored = append_decision_rows(self.project, clean, source=SOURCE, batch=batch,
                                              review=review).to_pandas()
            except BaseException:
                self._decisions.pop(sample_id, None)
                raise
            # The lock is held and the server holds the project: the cache plus the stored
            # rows is what a fresh read would give, without reading every decision again.
            if sample_id in self._decisions and len(self._decisions[sample_id]):
                self._decisions[sample_id] = pd.concat(
                    [self._decisions[sample_id], stored[self._decisions[sample_id].columns]],
                    ignore_index=True)
            else:
                self._decisions.pop(sample_id, None)
            new_id = int(stored.decision_id.max())
        self.store.log(user.name, "decision", sample_id=sample_id, record_id=record_id,
                       review=review, decision_id=new_id)
        return new_id

    # -- a lead's work --------------------------------------------------------------------------
    def reviewers(self) -> list[str]:
        return [u.name for u in self.store.users() if u.active and u.role in ("auditor", "lead")]

    def _check_reviewers(self, names: list[str]) -> list[str]:
        known = set(self.reviewers())
        bad = [n for n in names if n not in known]
        if bad:
            raise WorkbenchError(f"not an active auditor or lead: {', '.join(bad)}")
        if not names:
            raise WorkbenchError("choose at least one auditor")
        return names

    def _open_for_work(self, sample_id: str) -> Sample:
        sample = self.sample(sample_id)
        if closed := self.store.closed(sample_id):
            raise Forbidden(f"sample {sample_id} was closed by {closed[0]}")
        return sample

    def assign_first(self, user: User, sample_id: str, auditors: list[str]) -> int:
        """Share the sample's unassigned, undecided records among ``auditors`` in turn."""
        self._need(user, "lead")
        sample = self._open_for_work(sample_id)
        auditors = self._check_reviewers(auditors)
        taken = {a.record_id for a in self.store.assignments(sample_id) if a.review == "first"}
        decided = self._decided(self.decisions(sample_id), "first")
        todo = [r for r in sample.records.record_id if r not in taken and r not in decided]
        pairs_ = [(r, auditors[i % len(auditors)]) for i, r in enumerate(todo)]
        self.store.assign(sample_id, "first", pairs_, by=user.name)
        self.store.log(user.name, "assign", sample_id=sample_id, review="first",
                       records=len(pairs_), auditors=auditors)
        return len(pairs_)

    def set_second_review(self, user: User, sample_id: str, share: float, auditors: list[str],
                          seed: int = 1) -> tuple[int, int]:
        """Draw ``share`` of the sample (seeded) for blind second review by ``auditors``.

        Each drawn record goes to an auditor other than its first reviewer. Returns (records
        assigned now, records skipped because only their first reviewer was available).
        """
        self._need(user, "lead")
        sample = self._open_for_work(sample_id)
        if not 0 < share <= 1:
            raise WorkbenchError(f"the share must be above 0 and at most 1, not {share}")
        auditors = self._check_reviewers(auditors)
        assigned = self.store.assignments(sample_id)
        first_by = {a.record_id: a.auditor for a in assigned if a.review == "first"}
        d = self.decisions(sample_id)
        for r in d[d.review == "first"].sort_values("decision_id").itertuples():
            first_by.setdefault(r.record_id, r.auditor)
        already = {a.record_id for a in assigned if a.review == "second"}
        want = round(share * len(sample)) - len(already)
        pool = sorted((r for r in sample.records.record_id if r not in already),
                      key=lambda r: _order_key(seed, r))
        chosen, skipped, turn = [], 0, 0
        for rid in pool:
            if len(chosen) >= want:
                break
            options = [a for a in auditors if a != first_by.get(rid)]
            if not options:
                skipped += 1
                continue
            chosen.append((rid, options[turn % len(options)]))
            turn += 1
        self.store.assign(sample_id, "second", chosen, by=user.name)
        self.store.log(user.name, "second_review", sample_id=sample_id, share=share, seed=seed,
                       records=len(chosen), skipped=skipped, auditors=auditors)
        return len(chosen), skipped

    def close_sample(self, user: User, sample_id: str) -> None:
        """Close a sample once every record has a decision and no disagreement is open."""
        self._need(user, "lead")
        progress = self.progress(sample_id)
        if progress["closed"]:
            return
        missing = progress["records"] - progress["first_done"]
        if missing:
            raise WorkbenchError(f"{missing} records of {sample_id} have no decision yet")
        if progress["disagreements_open"]:
            raise WorkbenchError(f"{progress['disagreements_open']} disagreements of "
                                 f"{sample_id} wait for adjudication")
        self.store.close_sample(sample_id, user.name)
        self.store.log(user.name, "close_sample", sample_id=sample_id)

    def offence_classes(self, query: str = "", limit: int = 30) -> list[tuple[str, str]]:
        """(code, description) of the classes whose code or description contains ``query``."""
        q = query.strip().lower()
        out = [(c, o.description) for c, o in sorted(self._codes.offences.items())
               if not q or q in c.lower() or q in o.description.lower()]
        return out[:limit]

    def verify(self) -> tuple[int, int | None]:
        with self._lock:
            return verify_chain(self.project)
