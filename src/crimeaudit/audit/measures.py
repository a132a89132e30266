"""The audit's figures: recording rate, timeliness, classification, cancellations, unrecorded.

Each measure is a ratio over the sampled records' latest decisions (``z`` = in the
denominator, ``y`` = in the numerator):

====================== ================================================ =====================
measure                denominator (z)                                  numerator (y)
====================== ================================================ =====================
recording_rate         should_record = yes                              ... and recorded = yes
timeliness             should_record = yes, recorded = yes              within_time_limit=yes
classification_accuracy should_record = yes, recorded = yes             correctly_classified
cancellation_wrong     a cancellation was judged                        cancellation_valid=no
victim_told            a cancellation was judged                        victim_told = yes
====================== ================================================ =====================

``cannot_tell`` records are left out of every denominator (and counted in the notes). The
estimator follows the sample's design (SRS: Wilson by default; stratified and pps: design-based
ratio estimators, see :mod:`crimeaudit.audit.estimators`). Estimates *by strand* put a record in
the strand of the class the auditor says it should have had (``correct_class``), else the
class it was recorded with, else the strand its call type maps to; a rape record counts in
``rape``, ``sexual`` and ``all``. *By division* uses the incident's division.

Beside them: ``unrecorded_per_year`` (:mod:`crimeaudit.audit.unrecorded`) in each scope; and,
when the sample has blind second reviews, ``<measure>_adjusted`` (the figure corrected for
auditor error, :mod:`crimeaudit.audit.misclassification`) and the agreement figures
(:mod:`crimeaudit.audit.agreement`). Every figure carries the warnings a reader must see: small
domains (fewer than ``SMALL_DOMAIN`` decided records or effective sample size), a partially
reviewed sample, strata without decisions, disagreements found by the double review, and a
correction for auditor error resting on fewer than
:data:`~crimeaudit.audit.misclassification.RARE_DISAGREEMENTS` disagreements.

>>> from crimeaudit.audit.estimators import srs_ratio
>>> _small_domain(srs_ratio([1] * 12, [1] * 12))[0].startswith("only 12 decided records")
True
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd

from crimeaudit.audit.agreement import agreement_figures
from crimeaudit.audit.decisions import VOCABULARY, latest_decisions
from crimeaudit.audit.design import Sample, load_sample
from crimeaudit.audit.errors import AuditError
from crimeaudit.audit.estimators import (
    SMALL_DOMAIN,
    RatioResult,
    ht_ratio,
    small_sample_warnings,
    srs_ratio,
    stratified_ratio,
)
from crimeaudit.audit.figures_store import load_run, store_run
from crimeaudit.audit.misclassification import rare_disagreement_warnings, two_phase_ratio
from crimeaudit.audit.ppi_project import estimate_ppi
from crimeaudit.audit.results import AuditEstimates
from crimeaudit.audit.review import linked_crimes
from crimeaudit.audit.shortfalls import design_key, shortfall_warnings, unmeasured_note
from crimeaudit.audit.unrecorded import frame_facts, unrecorded_estimate
from crimeaudit.model.figures import Estimate
from crimeaudit.progress import Progress, resolve
from crimeaudit.store.files import write_text
from crimeaudit.store.project import project_verb

MEASURES = (
    "recording_rate", "timeliness", "classification_accuracy", "cancellation_wrong",
    "victim_told",
)
#: What each kind of sample measures: a sample of cancelled crimes says nothing about the
#: recording rate (every record in it was recorded), so it gives only the cancellation figures.
FRAME_MEASURES = {
    "incidents": MEASURES,
    "cancellations": ("cancellation_wrong", "victim_told"),
}
METHODS = ("auto", "wilson", "clopper-pearson", "linearised", "ppi")
BY = ("strand", "division")



def record_table(project, sample: Sample, decisions: pd.DataFrame) -> pd.DataFrame:
    """One row per decided sampled record with design columns, decisions, its offence code and
    whether any crime record is linked to it (``has_crime``, the linkage's answer)."""
    recs = sample.records.merge(decisions.drop(columns=["sample_id", "record_type"]),
                                on="record_id", how="inner")
    crimes = linked_crimes(project, sample)
    if len(crimes):
        ranks = {c: o.seriousness_rank for c, o in project.codes.offences.items()}
        crimes = crimes.assign(_rank=crimes.offence_code.map(ranks).fillna(-1)).sort_values(
            ["record_id", "_rank"], ascending=[True, False], kind="stable")
        main = crimes.groupby("record_id").offence_code.first()
    else:
        main = pd.Series(dtype=str)
    recs["recorded_code"] = recs.record_id.map(main)
    recs["has_crime"] = recs.record_id.isin(main.index)
    recs["code"] = recs.correct_class.where(recs.correct_class.notna(), recs.recorded_code)
    return recs


def _indicators(recs: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    sr, rec = recs.should_record == "yes", recs.recorded == "yes"
    out = {
        "recording_rate": (sr & rec, sr),
        "timeliness": (sr & rec & (recs.within_time_limit == "yes"),
                       sr & rec & recs.within_time_limit.notna()),
        "classification_accuracy": (sr & rec & (recs.correctly_classified == "yes"),
                                    sr & rec & recs.correctly_classified.notna()),
        "cancellation_wrong": (recs.cancellation_valid == "no", recs.cancellation_valid.notna()),
        "victim_told": (recs.victim_told == "yes", recs.victim_told.notna()),
    }
    return {k: (y.to_numpy(float), z.to_numpy(float)) for k, (y, z) in out.items()}


def _domains(project, recs: pd.DataFrame, by: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    out = [("all", np.ones(len(recs)))]
    codes = project.codes
    if "strand" in by:
        # A record's strands: those of its class (auditor's, else recorded), else those of
        # the strand its call type maps to.
        known = recs.code.where(recs.code.isin(list(codes.offences)))
        key = np.where(known.notna(), "c:" + known.fillna("").astype(str),
                       "s:" + recs.strand.astype(str))
        member = {k: set(codes.strands_of(k[2:]) if k.startswith("c:")
                         else codes.ancestry(k[2:])) for k in set(key)}
        for s in codes.strands:
            if s == "all":
                continue
            inside = {k for k, m in member.items() if s in m}
            d = np.isin(key, list(inside)).astype(float)
            if d.any():
                out.append((s, d))
    if "division" in by:
        div = recs.division.astype(str).to_numpy()
        strands = [(s, d) for s, d in out[1:] if not s.startswith("division=")]
        for g in sorted(set(div)):
            in_g = (div == g).astype(float)
            out.append((f"division={g}", in_g))
            # Strand by division (by strand and division together): cells with decided
            # records only; small ones carry their small-sample warning like any domain.
            out += [(f"division={g}, strand={s}", d * in_g) for s, d in strands
                    if (d * in_g).any()]
    return out


def _ratio(sample: Sample, recs: pd.DataFrame, y, z, level: float, method: str,
           domain: bool = False) -> RatioResult:
    kind = sample.design.kind
    interval = "wilson" if method == "auto" else method
    if kind == "srs":
        return srs_ratio(y, z, level, interval)
    if kind == "stratified":
        # FPC uses the stratum's frame size and the records actually decided in it.
        return stratified_ratio(y, z, recs.stratum.to_numpy(), sample.population, level,
                                interval, domain=domain)
    return ht_ratio(y, z, recs.inclusion_probability.to_numpy(), level, interval)


def _design_warnings(sample: Sample, recs: pd.DataFrame) -> list[str]:
    """What every figure of the run must carry: partial review, strata without decisions."""
    out = []
    undecided = len(sample) - len(recs)
    if undecided:
        out.append(
            f"only {len(recs)} of {len(sample)} sampled records are decided: the interval "
            "assumes the undecided ones are like the decided ones, which is not known")
    if sample.design.kind == "stratified":
        decided = recs.stratum.astype(str).value_counts()
        total = sum(sample.population.values())
        empty = sorted(h for h in sample.population if decided.get(h, 0) == 0)
        if empty:
            left = sum(sample.population[h] for h in empty)
            out.append(
                f"strata with no decided record: {', '.join(empty)} ({left:,} of {total:,} "
                "frame records): every figure describes the other strata only")
        single = sorted(h for h in sample.population if decided.get(h, 0) == 1)
        if single:
            out.append(f"strata with one decided record add no variance: {', '.join(single)}"
                       " (the interval may be too narrow)")
    return out


def _small_domain(r: RatioResult) -> list[str]:
    return small_sample_warnings(r)


def _estimate_of(measure: str, scope: str, r: RatioResult, level: float, sample: Sample,
                 notes: list[str], warnings: list[str]) -> Estimate:
    if r.extra.get("n_eff_capped"):
        notes = [*notes, f"effective sample size limited to Kish's weighted count of the "
                 f"figure's records ({r.n_kish:.1f}): the variance alone claimed more"]
    return Estimate(
        measure=measure, scope=scope, estimate=r.estimate, lower=r.lower, upper=r.upper,
        level=level, method=r.method, n=int(r.denominator), numerator=r.numerator,
        denominator=r.denominator, notes="; ".join(notes), se=r.se,
        n_effective=None if r.n_effective is None else round(float(r.n_effective), 3),
        sample_id=sample.sample_id, warnings=tuple(warnings + _small_domain(r)),
        extra={"design": sample.design.kind, "records_in_sample": r.n,
               **({"df": r.df} if r.df is not None else {}), **r.extra},
    )


def _oracle_error_rates(recs: pd.DataFrame) -> list[float]:
    """The error rates the oracle auditor was run with, from its decisions' batches (or the
    labels of earlier versions), so the report can state them whatever they are."""
    rates = set()
    # One look per distinct (source, batch), not per decision.
    for src, batch in set(zip(recs.source.astype(str), recs.batch.astype(str), strict=True)):
        if not src.startswith("oracle"):
            continue
        m = (re.match(r"oracle-(\d+(?:\.\d+)?(?:e-?\d+)?)-", batch)
             or re.search(r"error rate (\d+(?:\.\d+)?(?:e-?\d+)?)", src))
        rates.add(float(m.group(1)) if m else 0.0)
    return sorted(rates)


@project_verb
def estimate(project, sample_id: str | None = None, by: tuple[str, ...] | list[str] = (),
             level: float | None = None, method: str = "auto", write: bool = True,
             progress: Progress | None = None) -> AuditEstimates:
    """Estimate every measure of the sample's frame overall and by ``by`` (``strand``,
    ``division``).

    The figures are stored in the project (tables ``estimate_runs`` and ``estimates``, see
    :mod:`crimeaudit.audit.figures_store`) unless ``write`` is false, beside those of other
    samples and methods, and exported to ``reports/estimates-<sample>-<method>.json``; the
    returned object is read back from the store. Where the sample has blind second reviews,
    the agreement figures (:mod:`crimeaudit.audit.agreement`) and the recording rate corrected
    for auditor error (``recording_rate_adjusted``, :mod:`crimeaudit.audit.misclassification`)
    come too.
    """
    by = tuple(by)
    bad = [b for b in by if b not in BY]
    if bad:
        raise AuditError(f"cannot estimate by {bad[0]!r}; use {' or '.join(BY)}")
    if method not in METHODS:
        raise AuditError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    level = level or project.config.confidence_level
    if not 0.5 < level < 1:
        raise AuditError(f"level must be between 0.5 and 1, not {level}")
    if method == "ppi":
        return _ppi(project, level, by, write, sample_id)
    sample = load_sample(project, sample_id)
    measures = FRAME_MEASURES[sample.design.frame]
    decisions = latest_decisions(project, sample.sample_id)
    if decisions.empty:
        raise AuditError(
            f"sample {sample.sample_id} has no decisions yet: import a review sheet "
            "(crimeaudit review import) or run the oracle (crimeaudit review oracle)"
        )
    prog = resolve(progress)
    recs = record_table(project, sample, decisions)
    ind = _indicators(recs)
    doms = _domains(project, recs, by)
    undecided = len(sample) - len(recs)
    cannot = int((recs.should_record == "cannot_tell").sum())
    notes: list[str] = []
    warnings = _design_warnings(sample, recs)
    if undecided:
        notes.append(f"{undecided} of {len(sample)} sampled records have no decision yet")
    if cannot:
        notes.append(f"{cannot} records judged cannot_tell are left out")
    double = _double_review(project, sample, recs, level) if sample.design.frame == \
        "incidents" else None
    facts = frame_facts(project, sample.design) if sample.design.frame == "incidents" else None
    unmeasured_error = _unmeasured_auditor_error(recs) if double is None else []
    estimates: list[Estimate] = []
    with prog.task("Estimating", total=len(doms) * len(measures)) as advance:
        for scope, d in doms:
            for measure in measures:
                y, z = ind[measure]
                advance(1)
                if (z * d).sum() == 0:
                    continue
                r = _ratio(sample, recs, y * d, z * d, level, method, domain=scope != "all")
                extra_notes, extra_warn = [], []
                if double is not None:
                    extra_warn = double["warn"][measure]
                else:
                    extra_notes = ["no double review was done: auditor error is not measured "
                                   "and not in the interval"]
                plain = _estimate_of(measure, scope, r, level, sample, notes + extra_notes,
                                     warnings + extra_warn + unmeasured_error)
                estimates.append(plain)
                if double is not None:
                    estimates.append(_adjusted(sample, measure, recs, double, d, scope, plain,
                                               level, warnings))
            rate = next((e for e in estimates if e.measure == "recording_rate"
                         and e.scope == scope), None)
            if rate is not None and facts is not None:
                estimates.append(unrecorded_estimate(sample, recs, d, scope, rate, facts,
                                                     level, method))
    estimates = _flag_shortfalls(estimates, sample)
    if double is not None:
        estimates += double["figures"]
    result = AuditEstimates(
        estimates=estimates, design=sample.design.to_dict() | {"kind": sample.design.kind},
        level=level, method=method, sample_id=sample.sample_id,
        frame=sample.design.frame, by=by,
        sample={"frame_size": sample.frame_size, "size": len(sample),
                "population": sample.population, "allocation": sample.allocation},
        decisions={"decided": int(len(recs)), "undecided": int(undecided),
                   "cannot_tell": cannot,
                   "auditors": sorted(set(recs.auditor.dropna().astype(str))),
                   "sources": sorted({"oracle" if s.startswith("oracle") else s
                                      for s in recs.source.dropna().astype(str)}),
                   "oracle_error_rates": _oracle_error_rates(recs),
                   "double_review": None if double is None else double["summary"]},
    )
    project.log_run("estimate", params={"sample_id": sample.sample_id, "by": list(by),
                                        "level": level, "method": method},
                    counts={"estimates": len(estimates), "decided": int(len(recs))})
    return write_estimates(project, result) if write else result


def _flag_shortfalls(estimates: list[Estimate], sample: Sample, prefix: str = ""
                     ) -> list[Estimate]:
    """Each figure with the warning of :mod:`crimeaudit.audit.shortfalls` where the pipeline
    coverage benchmark measured its interval short of its level (same design and size)."""
    key = design_key(sample.design)
    note = unmeasured_note(sample.design)
    out = []
    for e in estimates:
        extra = shortfall_warnings(prefix + e.measure, e.scope, key, len(sample))
        if extra:
            e = dataclasses.replace(e, warnings=tuple(e.warnings) + tuple(extra))
        if note:
            e = dataclasses.replace(e, notes="; ".join(filter(None, [e.notes, note])))
        out.append(e)
    return out


# -- double review: agreement and the rate corrected for auditor error ---------------------------


#: The questions each measure's figure rests on (its auditor error is measured on them).
QUESTIONS_OF = {
    "recording_rate": ("should_record", "recorded"),
    "timeliness": ("should_record", "recorded", "within_time_limit"),
    "classification_accuracy": ("should_record", "recorded", "correctly_classified"),
    "cancellation_wrong": ("cancellation_valid",),
    "victim_told": ("victim_told",),
}


def _double_review(project, sample: Sample, recs: pd.DataFrame, level: float) -> dict | None:
    second = latest_decisions(project, sample.sample_id, review="second")
    if second.empty:
        return None
    first = latest_decisions(project, sample.sample_id, review="first")
    adjudicated = latest_decisions(project, sample.sample_id, review="adjudication")
    figures = agreement_figures(first, second, adjudicated, level, sample.sample_id)
    differ = _review_differences(first, second)
    both, questions = differ.index, list(differ.columns)
    adjudged = both.isin(adjudicated.record_id) if len(adjudicated) else np.zeros(len(both),
                                                                                  bool)
    # A double-reviewed record is validated when its reviews agree or a lead adjudicated it.
    validated = set(both[~differ.any(axis=1).to_numpy() | adjudged])
    unresolved = len(both) - len(validated)
    first_recs = record_table(project, sample, first[first.record_id.isin(recs.record_id)])
    first_recs = first_recs.set_index("record_id").reindex(recs.record_id).reset_index()
    summary = {"records": int(len(both)), "share": round(len(both) / max(len(recs), 1), 4),
               "disagreements": int(differ[["should_record", "recorded"]].any(axis=1).sum()),
               "disagreements_by_question": {q: int(differ[q].sum()) for q in questions},
               "validated": len(validated), "unresolved": unresolved}
    warn: dict[str, list[str]] = {}
    for measure, qs in QUESTIONS_OF.items():
        qs = [q for q in qs if q in differ]
        k = int(differ[qs].any(axis=1).sum()) if qs else 0
        warn[measure] = []
        if k:
            warn[measure].append(_disagreement_warning(qs, k, len(both),
                                                       f"{measure}_adjusted corrects for it"))
        if unresolved:
            warn[measure].append(f"{unresolved} double-reviewed records disagree and are not "
                                 "adjudicated yet")
    # The second review may be likelier for some first answers (the oracle double-reviews
    # every finding): the correction weights by the share double-reviewed per answer.
    finding = ((first_recs.should_record == "yes") & (first_recs.recorded == "no")).to_numpy()
    return {"figures": figures, "first": _indicators(first_recs), "finding": finding,
            "current": _indicators(recs),
            "validated": recs.record_id.isin(validated).to_numpy(),
            "summary": summary, "warn": warn}


#: Corrected figures that take the rare-disagreement interval and its warning
#: (:mod:`crimeaudit.audit.misclassification`). Measured through the pipeline (1-3% auditor
#: error, 10% double review, 1,000 audits a cell, benchmarks/results/pipeline_coverage.md):
#: with the plain interval, corrected timeliness and classification covered 54-94%, and 93-98%
#: with it; the corrected recording rate covered 93.1-95.7% with the plain interval (its
#: design variance dominates the correction's) and over-covered with the other (98.4-99.9%,
#: 10-90% wider), so it keeps the plain one (its measured shortfalls are flagged).
RARE_DISAGREEMENT_MEASURES = ("timeliness", "classification_accuracy")


def _adjusted(sample: Sample, measure: str, recs: pd.DataFrame, double: dict, d: np.ndarray,
              scope: str, plain: Estimate, level: float, warnings: list[str]) -> Estimate:
    y2, z2 = double["current"][measure]
    y1, z1 = double["first"][measure]
    v = double["validated"]
    kind = sample.design.kind
    rare = measure in RARE_DISAGREEMENT_MEASURES
    if kind == "pps":
        r = two_phase_ratio(y1 * d, z1 * d, y2 * d, z2 * d, v,
                            pi=recs.inclusion_probability.to_numpy(), level=level,
                            groups=double["finding"], rare=rare)
    else:
        r = two_phase_ratio(y1 * d, z1 * d, y2 * d, z2 * d, v,
                            strata=recs.stratum.to_numpy(), population=sample.population,
                            level=level, groups=double["finding"], rare=rare)
    own = list(warnings)
    n_checked = int((v * np.maximum(z1, z2) * d).sum())
    if n_checked < SMALL_DOMAIN:
        own.append(f"only {n_checked} double-reviewed records in this figure's denominator: "
                   "the correction for auditor error rests on very few")
    if rare:
        own += rare_disagreement_warnings(r)
    return Estimate(
        measure=f"{measure}_adjusted", scope=scope, estimate=r.estimate, lower=r.lower,
        upper=r.upper, level=level, method=r.method, n=plain.n, numerator=plain.numerator,
        denominator=plain.denominator, se=r.se,
        n_effective=None if r.n_effective is None else round(float(r.n_effective), 3),
        sample_id=sample.sample_id, warnings=tuple(own + _small_domain(r)),
        notes=(f"corrected for auditor error measured on {double['summary']['records']} "
               f"blind double reviews ({double['summary']['validated']} resolved); "
               f"{r.extra['corrected_records']} records here changed on review"),
        extra={"design": kind, "df": r.df, **r.extra},
    )


def write_estimates(project, result: AuditEstimates) -> AuditEstimates:
    """Store ``result`` in the project and export it as JSON; returns it as stored.

    The store is the source of truth; ``reports/estimates-<sample>-<method>.json`` is an
    export for people and other tools (strict JSON).
    """
    run_id = store_run(project, result)
    stored = load_run(project, run_id)
    name = f"estimates-{stored.sample_id}-{stored.method}.json"
    write_text(project.folder("reports") / name, stored.to_json() + "\n")  # no link followed
    return stored


def export_path(project, result: AuditEstimates):
    """Where :func:`write_estimates` exported ``result``."""
    return project.path / "reports" / f"estimates-{result.sample_id}-{result.method}.json"


def _unmeasured_auditor_error(decisions: pd.DataFrame) -> list[str]:
    """The warning for decisions by an auditor known to err (the simulated one, run with an
    error rate) with no double review to measure it: every figure leans by the errors, and its
    interval does not know.

    >>> d = pd.DataFrame({"source": ["oracle"], "batch": ["oracle-0.02-7"]})
    >>> _unmeasured_auditor_error(d)[0][:59]
    'decided by the simulated auditor with error rate 2% and no '
    >>> _unmeasured_auditor_error(d.assign(batch="oracle-0-7"))
    []
    """
    erring = [r for r in _oracle_error_rates(decisions) if r > 0]
    if not erring:
        return []
    return [f"decided by the simulated auditor with error rate {100 * max(erring):g}% and no "
            "double review: auditor error is not in this interval, which will not hold its "
            "level"]


def _ppi_auditor_error(project, sample: Sample) -> list[str]:
    """PPI++ rests on the auditor's answers as given: where a blind second review disagreed
    with the first on the recording questions, the figure says so and where the correction is."""
    second = latest_decisions(project, sample.sample_id, review="second")
    first = latest_decisions(project, sample.sample_id, review="first")
    if second.empty:
        return _unmeasured_auditor_error(first)
    qs = ["should_record", "recorded"]
    differ = _review_differences(first, second)
    k = int(differ[qs].any(axis=1).sum())
    if not k:
        return []
    return [_disagreement_warning(qs, k, len(differ), "crimeaudit estimate without --method "
                                  "ppi gives recording_rate_adjusted, corrected for it")]


def _review_differences(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Per record with both a first and a second review (the index), per decision question:
    whether the two reviews' answers differ (two blanks agree)."""
    f = first.set_index("record_id")
    sec = second.set_index("record_id")
    both = sec.index.intersection(f.index)
    questions = [q for q in VOCABULARY if q in f and q in sec]
    fa = f.loc[both, questions].astype(object).where(f.loc[both, questions].notna(), None)
    sa = sec.loc[both, questions].astype(object).where(sec.loc[both, questions].notna(), None)
    return pd.DataFrame(fa.to_numpy() != sa.to_numpy(), index=both, columns=questions)


def _disagreement_warning(questions: list[str], k: int, n: int, correction: str) -> str:
    """The warning on a figure whose questions the first and second reviews answered
    differently for ``k`` of the ``n`` double-reviewed records; ``correction`` says where the
    corrected figure is."""
    return (f"the first and a blind second review disagreed on {' or '.join(questions)} for "
            f"{k} of {n} double-reviewed records: this interval leaves auditor error out; "
            f"{correction}")


def _ppi(project, level: float, by: tuple[str, ...], write: bool,
         sample_id: str | None) -> AuditEstimates:
    # estimate_ppi takes one grouping column: the overall figure comes first, then each group.
    ests = list(estimate_ppi(project, level=level, by=by[0] if by else None,
                             sample_id=sample_id))
    for column in by[1:]:
        ests += list(estimate_ppi(project, level=level, by=column, sample_id=sample_id))[1:]
    sample = load_sample(project, sample_id)
    ests = _flag_shortfalls(ests, sample, prefix="ppi:")
    error = _ppi_auditor_error(project, sample)
    ests = [dataclasses.replace(e, warnings=tuple(e.warnings) + tuple(error)) for e in ests]
    result = AuditEstimates(
        estimates=ests, design=sample.design.to_dict() | {"kind": sample.design.kind},
        level=level, method="ppi", sample_id=sample.sample_id, frame=sample.design.frame,
        by=by, sample={"frame_size": sample.frame_size, "size": len(sample),
                       "population": sample.population, "allocation": sample.allocation})
    project.log_run("estimate", params={"sample_id": sample.sample_id, "by": list(by),
                                        "level": level, "method": "ppi"},
                    counts={"estimates": len(ests)})
    return write_estimates(project, result) if write else result
