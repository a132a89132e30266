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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crimeaudit.audit.decisions import latest_decisions
from crimeaudit.audit.design import Sample, load_sample
from crimeaudit.audit.errors import AuditError
from crimeaudit.audit.estimators import ht_ratio, srs_ratio, stratified_ratio
from crimeaudit.audit.figures_store import load_run, store_run
from crimeaudit.audit.ppi_project import estimate_ppi
from crimeaudit.audit.results import AuditEstimates
from crimeaudit.audit.review import linked_crimes
from crimeaudit.audit.unrecorded import recorded_last_year, unrecorded_from_rate
from crimeaudit.model.figures import Estimate
from crimeaudit.progress import Progress, resolve
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
    """One row per decided sampled record with design columns, decisions and its offence code."""
    recs = sample.records.merge(decisions.drop(columns=["sample_id", "record_type"]),
                                on="record_id", how="inner")
    crimes = linked_crimes(project, sample)
    if len(crimes):
        crimes = crimes.assign(
            _rank=crimes.offence_code.map(
                lambda c: project.codes.offences[c].seriousness_rank
                if c in project.codes.offences else -1)
        ).sort_values(["record_id", "_rank"], ascending=[True, False], kind="stable")
        main = crimes.groupby("record_id").offence_code.first()
    else:
        main = pd.Series(dtype=str)
    recs["recorded_code"] = recs.record_id.map(main)
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
        def strands(row) -> list[str]:
            if isinstance(row.code, str) and row.code in codes.offences:
                return codes.strands_of(row.code)
            return codes.ancestry(row.strand)  # no class: the strand of its call type

        member = [set(strands(r)) for r in recs.itertuples(index=False)]
        for s in codes.strands:
            if s == "all":
                continue
            d = np.array([s in m for m in member], dtype=float)
            if d.any():
                out.append((s, d))
    if "division" in by:
        for div in sorted(recs.division.astype(str).unique()):
            out.append((f"division={div}", (recs.division.astype(str) == div).to_numpy(float)))
    return out


def _ratio(sample: Sample, recs: pd.DataFrame, y, z, level: float, method: str):
    kind = sample.design.kind
    interval = "wilson" if method == "auto" else method
    if kind == "srs":
        return srs_ratio(y, z, level, interval)
    if kind == "stratified":
        # FPC uses the stratum's frame size and the records actually decided in it.
        return stratified_ratio(y, z, recs.stratum.to_numpy(), sample.population, level,
                                interval)
    return ht_ratio(y, z, recs.inclusion_probability.to_numpy(), level, interval)


@project_verb
def estimate(project, sample_id: str | None = None, by: tuple[str, ...] | list[str] = (),
             level: float | None = None, method: str = "auto", write: bool = True,
             progress: Progress | None = None) -> AuditEstimates:
    """Estimate every measure of the sample's frame overall and by ``by`` (``strand``,
    ``division``).

    The figures are stored in the project (tables ``estimate_runs`` and ``estimates``, see
    :mod:`crimeaudit.audit.figures_store`) unless ``write`` is false, beside those of other
    samples and methods, and exported to ``reports/estimates-<sample>-<method>.json``; the
    returned object is read back from the store.
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
    notes, warnings = [], []
    if undecided:
        notes.append(f"{undecided} of {len(sample)} sampled records have no decision yet")
        warnings.append(
            f"only {len(recs)} of {len(sample)} sampled records are decided: the interval "
            "assumes the undecided ones are like the decided ones, which is not known")
    if cannot:
        notes.append(f"{cannot} records judged cannot_tell are left out")
    estimates: list[Estimate] = []
    with prog.task("Estimating", total=len(doms) * len(measures)) as advance:
        for scope, d in doms:
            for measure in measures:
                y, z = ind[measure]
                advance(1)
                if (z * d).sum() == 0:
                    continue
                r = _ratio(sample, recs, y * d, z * d, level, method)
                estimates.append(Estimate(
                    measure=measure, scope=scope, estimate=r.estimate, lower=r.lower,
                    upper=r.upper, level=level, method=r.method, n=int(r.denominator),
                    numerator=r.numerator, denominator=r.denominator,
                    notes="; ".join(notes), se=r.se,
                    n_effective=None if r.n_effective is None
                    else round(float(r.n_effective), 3),
                    sample_id=sample.sample_id,
                    warnings=tuple(warnings + _small_domain(r)),
                    extra={"design": sample.design.kind, "records_in_sample": r.n},
                ))
            rate = next((e for e in estimates if e.measure == "recording_rate"
                         and e.scope == scope), None)
            if rate is not None and sample.design.frame == "incidents":
                estimates.append(_unrecorded(project, rate, scope))
    result = AuditEstimates(
        estimates=estimates, design=sample.design.to_dict() | {"kind": sample.design.kind},
        level=level, method=method, sample_id=sample.sample_id,
        frame=sample.design.frame, by=by,
        sample={"frame_size": sample.frame_size, "size": len(sample),
                "population": sample.population, "allocation": sample.allocation},
        decisions={"decided": int(len(recs)), "undecided": int(undecided),
                   "cannot_tell": cannot,
                   "auditors": sorted(set(recs.auditor.dropna().astype(str))),
                   "sources": sorted(set(recs.source.dropna().astype(str)))},
    )
    project.log_run("estimate", params={"sample_id": sample.sample_id, "by": list(by),
                                        "level": level, "method": method},
                    counts={"estimates": len(estimates), "decided": int(len(recs))})
    return write_estimates(project, result) if write else result


#: Below this many records in a measure's denominator a figure is flagged: its interval rests
#: on very few decisions (and a design-based variance of 0 is then common).
SMALL_DOMAIN = 30


def _small_domain(r) -> list[str]:
    if r.denominator < SMALL_DOMAIN:
        return [f"only {r.denominator} decided records in this figure's denominator (fewer "
                f"than {SMALL_DOMAIN}): read it as an indication, not a measurement"]
    return []


def _unrecorded(project, rate: Estimate, scope: str) -> Estimate:
    strand, division = None, None
    if scope.startswith("division="):
        division = scope.split("=", 1)[1]
    elif scope != "all":
        strand = scope
    count, info = recorded_last_year(project, strand, division)
    u, lo, hi = unrecorded_from_rate(count, rate.estimate, rate.lower, rate.upper)
    # Delta method: dU/dr = -C / r^2, so se(U) = C se(r) / r^2 (the interval is not symmetric:
    # it is U at the rate's interval endpoints).
    se = (count * rate.se / rate.estimate ** 2
          if rate.se is not None and rate.estimate > 0 else None)
    note = f"{count:,.0f} crimes recorded in 12 months"
    if info.get("scaled"):
        note += f" (scaled up from {info['days_covered']:g} days of data)"
    return Estimate(
        measure="unrecorded_per_year", scope=scope, estimate=u, lower=lo, upper=hi,
        level=rate.level, method=f"C(1-r)/r at the {rate.method} interval",
        n=rate.n, unit="crimes", notes=note, se=se, n_effective=rate.n_effective,
        sample_id=rate.sample_id, warnings=rate.warnings,
        extra={"recorded_12m": count, **info, "rate": rate.estimate},
    )


def write_estimates(project, result: AuditEstimates) -> AuditEstimates:
    """Store ``result`` in the project and export it as JSON; returns it as stored.

    The store is the source of truth; ``reports/estimates-<sample>-<method>.json`` is an
    export for people and other tools (strict JSON).
    """
    run_id = store_run(project, result)
    stored = load_run(project, run_id)
    name = f"estimates-{stored.sample_id}-{stored.method}.json"
    (project.folder("reports") / name).write_text(stored.to_json() + "\n", encoding="utf-8")
    return stored


def export_path(project, result: AuditEstimates):
    """Where :func:`write_estimates` exported ``result``."""
    return project.path / "reports" / f"estimates-{result.sample_id}-{result.method}.json"


def _ppi(project, level: float, by: tuple[str, ...], write: bool,
         sample_id: str | None) -> AuditEstimates:
    # estimate_ppi takes one grouping column: the overall figure comes first, then each group.
    ests = list(estimate_ppi(project, level=level, by=by[0] if by else None,
                             sample_id=sample_id))
    for column in by[1:]:
        ests += list(estimate_ppi(project, level=level, by=column, sample_id=sample_id))[1:]
    sample = load_sample(project, sample_id)
    result = AuditEstimates(
        estimates=ests, design=sample.design.to_dict() | {"kind": sample.design.kind},
        level=level, method="ppi", sample_id=sample.sample_id, frame=sample.design.frame,
        by=by, sample={"frame_size": sample.frame_size, "size": len(sample),
                       "population": sample.population, "allocation": sample.allocation})
    project.log_run("estimate", params={"sample_id": sample.sample_id, "by": list(by),
                                        "level": level, "method": "ppi"},
                    counts={"estimates": len(ests)})
    return write_estimates(project, result) if write else result
