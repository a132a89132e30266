"""The oracle auditor: decisions read from a simulated force's ground truth.

For simulated forces the store holds ``truth_incidents`` and ``truth_crimes``; the oracle fills
every decision of a sample from them, so the whole pipeline runs without people. With
``error_rate`` > 0 each yes/no decision is flipped with that probability (seeded), to study what
auditor mistakes do to the estimates. Its decisions go through the same validation and the same
append-only store as a human's sheet (source ``oracle``).

Truth used per sampled incident: should_record = ``discloses_crime``; recorded =
``truth_incidents.recorded``; the crime records that truly came from it
(``truth_crimes.true_incident_id``, so a record whose incident reference was lost still counts)
give correctly_classified, cancellation_valid and victim_told; within_time_limit compares the
first such record's ``recorded_at`` with the incident's ``reported_at`` and the project's
``timeliness_hours``; correct_class = ``true_offence_code``. A crime sampled as a record of its
own (no incident reference) whose true incident is in the incident log is judged
``cannot_tell`` with a note: that crime is already audited through its incident, and counting it
twice would bias the rate upwards.

**Double review** (``second_share`` > 0): every finding of the first review (should have been
recorded, was not) and a random share of the other sampled records (seeded) are reviewed
again by an independent oracle with the same error rate, blind to the first review
(``review = "second"`` rows), and every record on which the two disagree is adjudicated from the
truth (``review = "adjudication"``), as a lead auditor would resolve it. ``crimeaudit estimate``
then reports the auditors' agreement and a rate corrected for auditor error
(:mod:`crimeaudit.audit.agreement`, :mod:`crimeaudit.audit.misclassification`).

The decisions' source is ``oracle`` and their batch ``oracle-<error rate>-<seed>``, so the
report can state the error rate whatever it is.
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd

from crimeaudit.audit.decisions import DECISION_COLUMNS, VOCABULARY, append_decisions
from crimeaudit.audit.design import load_sample
from crimeaudit.audit.errors import AuditError
from crimeaudit.audit.review import (
    ImportResult,
    cancelled_records,
    store_decisions,
    validate_rows,
)
from crimeaudit.progress import Progress, resolve
from crimeaudit.store.project import project_verb


def _yn(b) -> str:
    return "yes" if bool(b) else "no"


@project_verb
def oracle_review(project, sample_id: str | None = None, error_rate: float = 0.0,
                  seed: int = 0, progress: Progress | None = None,
                  second_share: float = 0.0) -> ImportResult:
    """Decide every record of a sample from the ground truth and store the decisions.

    ``error_rate`` flips each yes/no decision with that probability (seeded by ``seed``);
    ``second_share`` > 0 adds a blind second review of that share of the records and an
    adjudication of every disagreement (see the module docstring).
    """
    if not 0 <= error_rate <= 1:
        raise AuditError(f"error rate must be between 0 and 1, not {error_rate}")
    if not 0 <= second_share <= 1:
        raise AuditError(f"second-review share must be between 0 and 1, not {second_share}")
    eng = project.engine
    for t in ("truth_incidents", "truth_crimes"):
        if not eng.has_table(t) or eng.count(t) == 0:
            raise AuditError(
                f"the oracle auditor needs the ground truth ({t}), which only simulated forces "
                "have; review the sheet by hand and use crimeaudit review import"
            )
    sample = load_sample(project, sample_id)
    prog = resolve(progress)
    cancelled = cancelled_records(project, sample)
    with prog.task(f"Oracle reviewing {len(sample)} records", total=None):
        truth = _decide(project, sample, 0.0, seed)
        rows = [(line, dict(d)) for line, d in truth]
        if error_rate:
            _flip(rows, error_rate, seed)
        clean = validate_rows(rows, sample, cancelled, project.codes, "oracle",
                              auditor="oracle")
    batch = f"oracle-{error_rate:g}-{seed}"
    result = store_decisions(project, clean, source="oracle", batch=batch,
                             log_params={"oracle_error_rate": error_rate, "oracle_seed": seed,
                                         "oracle_second_share": second_share})
    if second_share:
        second, adjudicated = double_review(rows, truth, second_share, error_rate, seed)
        for kind, part in (("second", second), ("adjudication", adjudicated)):
            if part:
                frame = validate_rows(part, sample, cancelled, project.codes, "oracle",
                                      auditor=f"oracle-{kind}", corrections=True)
                append_decisions(project, frame, source="oracle", batch=f"{batch}-{kind}",
                                 review=kind)
        project.log_run("review oracle second", params={
            "sample_id": sample.sample_id, "oracle_error_rate": error_rate,
            "oracle_seed": seed, "oracle_second_share": second_share},
            counts={"second": len(second), "adjudicated": len(adjudicated)})
    return result


def double_review(first: list, truth: list, share: float, error_rate: float, seed: int
                  ) -> tuple[list, list]:
    """A blind second review and the adjudications.

    ``first`` and ``truth`` are the oracle's rows (line, decision dict) in the sample's order:
    the first review as stored, and the truth. Reviewed a second time: every *finding* (a
    record the first review says should have been recorded and was not: the errors that move
    the rate most sit there, and an inspectorate checks each finding anyway) and a random
    ``share`` of the other records. The second reviewer errs independently at the same
    ``error_rate``; a record is adjudicated (from the truth) when the two reviews differ on
    any decision. Returns (second-review rows, adjudication rows).

    >>> t = [(i + 2, {"record_id": f"I{i}", "should_record": "yes",
    ...               "recorded": "no" if i < 5 else "yes"}) for i in range(100)]
    >>> second, adj = double_review(t, t, 0.1, 0.0, seed=1)
    >>> len(second), len(adj)  # the 5 findings and 10 of the other 95
    (15, 0)
    """
    rng = np.random.default_rng([seed, 2])
    finding = [d.get("should_record") == "yes" and d.get("recorded") == "no"
               for _, d in first]
    others = [i for i, f in enumerate(finding) if not f]
    k = int(round(share * len(others)))
    picked = rng.choice(len(others), size=k, replace=False).tolist() if k else []
    chosen = sorted([i for i, f in enumerate(finding) if f] + [others[j] for j in picked])
    second = [(truth[i][0], dict(truth[i][1])) for i in chosen]
    if error_rate:
        _flip(second, error_rate, [seed, 3])
    adjudicated = []
    for (line, d2), i in zip(second, chosen, strict=True):
        d1 = first[i][1]
        if any(d1.get(c) != d2.get(c) for c in DECISION_COLUMNS):
            adjudicated.append((line, dict(truth[i][1])))
    return second, adjudicated


def _decide(project, sample, error_rate: float, seed: int) -> list[tuple[int, dict[str, str]]]:
    eng, codes = project.engine, project.codes
    limit = pd.Timedelta(hours=project.config.timeliness_hours)
    recs = sample.records
    keys = ibis.memtable({"record_id": recs.record_id.astype(str).tolist()})
    ti = eng.table("truth_incidents")
    truth_inc = eng.to_pandas(ti.join(keys, ti.incident_id == keys.record_id).select(
        *ti.columns)).set_index("incident_id")
    inc = eng.table("incidents")
    reported = eng.to_pandas(inc.join(keys, inc.incident_id == keys.record_id).select(
        "incident_id", "reported_at")).set_index("incident_id").reported_at
    crimes, tc = eng.table("crimes"), eng.table("truth_crimes")
    joined = crimes.join(tc, crimes.crime_id == tc.crime_id).select(
        "crime_id", "incident_id", "recorded_at", "reported_at", "offence_code", "status",
        "true_offence_code", "correctly_classified", "cancellation_valid", "victim_told",
        "true_incident_id",
    )
    mine = joined.filter(
        joined.true_incident_id.isin(keys.record_id) | joined.incident_id.isin(keys.record_id)
        | joined.crime_id.isin(keys.record_id)
    )
    cr = eng.to_pandas(mine).sort_values(["recorded_at", "crime_id"], kind="stable")
    by_incident: dict[str, pd.DataFrame] = {}
    for col in ("true_incident_id", "incident_id"):
        for rid, g in cr[cr[col].notna()].groupby(col):
            by_incident.setdefault(str(rid), g)
    by_crime = cr.set_index("crime_id")
    cancelled = cancelled_records(project, sample)
    # Crimes sampled as records of their own whose incident is in the log too (the reference
    # was lost): the incident is audited as itself, so counting the crime again would count
    # one crime twice. The oracle marks such records cannot_tell (out of every denominator).
    duplicates: set[str] = set()
    if sample.design.frame == "incidents":
        tids = cr.loc[cr.crime_id.isin(recs.record_id) & cr.true_incident_id.notna()]
        known = ibis.memtable({"tid": tids.true_incident_id.astype(str).tolist() or [""]})
        present = eng.to_pandas(inc.join(known, inc.incident_id == known.tid).select("tid"))
        duplicates = set(tids.crime_id[tids.true_incident_id.isin(present.tid)].astype(str))

    rows = []
    for line, r in enumerate(recs.itertuples(index=False), start=2):
        rid = r.record_id
        if r.record_type == "incident":
            if rid not in truth_inc.index:
                raise AuditError(f"truth_incidents has no row for sampled incident {rid!r}")
            t = truth_inc.loc[rid]
            should, was_recorded = bool(t.discloses_crime), bool(t.recorded)
            true_code = t.true_offence_code if pd.notna(t.true_offence_code) else None
            mine_c = by_incident.get(rid, cr.iloc[0:0])
            when = reported.get(rid)
        else:
            if rid not in by_crime.index:
                raise AuditError(f"truth_crimes has no row for sampled crime {rid!r}")
            c = by_crime.loc[[rid]]
            tid = c.true_incident_id.iloc[0]
            should = bool(truth_inc.loc[tid].discloses_crime) if tid in truth_inc.index else True
            was_recorded, true_code = True, c.true_offence_code.iloc[0]
            mine_c = c.reset_index()
            when = c.reported_at.iloc[0] if pd.notna(c.reported_at.iloc[0]) else None
        main = mine_c.iloc[0] if len(mine_c) else None
        d = {"should_record": _yn(should), "recorded": _yn(was_recorded)}
        if main is not None:
            d["correctly_classified"] = _yn(main.correctly_classified)
            late = when is not None and pd.notna(when) and (
                pd.Timestamp(main.recorded_at) - pd.Timestamp(when) > limit)
            d["within_time_limit"] = _yn(not late)
        else:
            d["correctly_classified"] = "yes"
            d["within_time_limit"] = "yes"
        if rid in cancelled:
            canc = mine_c[mine_c.status == "cancelled"]
            c0 = canc.iloc[0] if len(canc) else main
            d["cancellation_valid"] = _yn(c0 is not None and _true(c0.cancellation_valid))
            d["victim_told"] = _yn(c0 is not None and _true(c0.victim_told))
        fallback = main.offence_code if main is not None else _strand_code(codes, r.strand)
        d["correct_class"] = true_code or fallback
        note = ""
        if rid in duplicates:
            d["should_record"] = "cannot_tell"
            tid = by_crime.loc[rid].true_incident_id
            note = f"came from incident {tid} (reference lost); counted with that incident"
        rows.append((line, {"record_id": rid, "sample_id": sample.sample_id, **d,
                            "auditor": "oracle", "notes": note}))
    if error_rate:
        _flip(rows, error_rate, seed)
    return rows


def _true(v) -> bool:
    """A nullable truth flag: missing counts as no."""
    return bool(v) if v is not None and not pd.isna(v) else False


def _strand_code(codes, strand: str) -> str:
    inside = codes.codes_in_strand(strand) if strand in codes.strand_parent else []
    return inside[0] if inside else next(iter(codes.offences))


def _flip(rows, error_rate: float, seed) -> None:
    """Flip each yes/no decision with probability ``error_rate`` (the auditor's mistakes)."""
    rng = np.random.default_rng(seed)
    binary = [c for c, allowed in VOCABULARY.items() if set(allowed) == {"yes", "no"}]
    for col in ("should_record", *binary):
        for _, d in rows:
            u = rng.random()
            if d.get(col) in ("yes", "no") and u < error_rate:
                d[col] = "no" if d[col] == "yes" else "yes"


__all__ = ["double_review", "oracle_review"]
