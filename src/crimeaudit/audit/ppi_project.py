"""PPI++ recording rate from a project's audit sample, decisions, links and screen scores.

The population side of PPI++ needs only five sums per stratum of the frame (N, and the sums
of f, f R, f^2 R and f^2 (1 - R), with f the screen's P(crime) and R whether a crime record
is linked): they are computed in the engine, so a national frame never enters Python. Whether
a record is linked comes from :func:`crimeaudit.linkage.linked_pairs`, the same definition the
frame, the review sheets and the findings use.
"""

from __future__ import annotations

import ibis
import pandas as pd

from crimeaudit.audit.decisions import latest_decisions
from crimeaudit.audit.design import _strata_expr, load_sample, sampling_frame
from crimeaudit.audit.errors import AuditError
from crimeaudit.audit.estimators import (
    RatioResult,
    small_sample_warnings,
    srs_ratio,
    stratified_ratio,
)
from crimeaudit.audit.ppi import PPIResult, PPIStratum, coverage_warnings, ppi_stratified_ratio
from crimeaudit.model.figures import Estimate
from crimeaudit.model.schema import SCREEN_SCORES
from crimeaudit.store.project import project_verb

_YES = {"yes": 1.0, "no": 0.0}
SCORES_TABLE = SCREEN_SCORES.name  # read by name: the audit does not import the screen


def _scored_frame(project, design):
    """The design's frame (in the engine) with stratum, P(crime) ``f`` and linked flag ``r``."""
    eng = project.engine
    if not eng.has_table(SCORES_TABLE):
        raise AuditError("no screen scores yet: run crimeaudit screen run DIR first")
    frame = sampling_frame(project, design)
    by = design.strata_by if design.kind == "stratified" else ()
    frame = frame.mutate(stratum=_strata_expr(frame, by))
    scores = eng.table(SCORES_TABLE)
    scores = scores.select(record_id=scores.incident_id.cast("string"),
                           p_crime=scores.p_crime.cast("float64"))
    frame = frame.left_join(scores, "record_id")
    # A crime record linked to no incident is itself a recorded crime: prediction 1, recorded.
    is_crime = frame.record_type == "crime"
    f = ibis.ifelse(is_crime, 1.0, frame.p_crime)
    r = ibis.ifelse(is_crime, 1.0, frame.has_crime.cast("float64"))
    return frame.select("record_type", "record_id", "stratum", "strand", "division",
                        f=f, r=r)


def _population_sums(project, frame, group: str | None) -> pd.DataFrame:
    """Per stratum (and group): N and the sums PPI++ needs, computed in the engine."""
    keys = ["stratum"] + ([group] if group else [])
    agg = frame.group_by(keys).aggregate(
        N=frame.count(), missing=frame.f.isnull().cast("int64").sum(),
        sum_f=frame.f.sum(), sum_fr=(frame.f * frame.r).sum(),
        sum_f2r=(frame.f * frame.f * frame.r).sum(),
        sum_f2nr=(frame.f * frame.f * (1 - frame.r)).sum())
    out = project.engine.to_pandas(agg.order_by(keys)).reset_index(drop=True)
    missing = int(out.missing.sum())
    if missing:
        raise AuditError(f"{missing} incidents have no screen score: run crimeaudit screen run "
                         "DIR again")
    return out


def _labelled(project, frame, record_ids) -> pd.DataFrame:
    """The scored frame's rows of the given records (only they leave the engine), in record
    order: the cross-fit folds are assigned by position, so the order must not depend on the
    engine's."""
    ids = ibis.memtable(pd.DataFrame({"record_id": list(record_ids)}))
    out = project.engine.to_pandas(frame.join(ids, "record_id"))
    return out.sort_values(["record_type", "record_id"], kind="stable").reset_index(drop=True)


@project_verb
def estimate_ppi(project, level: float = 0.95, by=None, sample_id: str | None = None,
                 lam: float | None = None):
    """The recording rate by PPI++ from the audit's decisions and the screen's scores.

    Reads ``audit_samples`` / ``audit_decisions`` (incident records, ``should_record`` yes/no),
    ``screen_scores`` (``p_crime`` for every incident) and the linked pairs (whether each
    incident has a crime record). Stratified by the sample's strata; ``by`` (``"strand"`` or
    ``"division"``) gives one estimate per group as well. Returns a list of
    :class:`crimeaudit.model.Estimate`, the overall figure first.

    Every decided record is on the sample side (``cannot_tell`` with ``s = 0``, as it is in no
    denominator), so both sides hold the same records. Where the power-tuned PPI++ interval
    is not narrower than the classical one on the same records (Wilson, or the stratified
    ratio's), the classical figure is reported instead, saying so: PPI++ is never wider.
    ``lam`` fixes lambda (``0`` is the classical ratio, ``1`` plain PPI) and turns that
    fallback off.
    """
    if by is not None and by not in ("strand", "division"):
        raise AuditError(f"cannot estimate by {by!r}: use strand or division")
    sample = load_sample(project, sample_id)
    design = sample.design
    if design.frame != "incidents" or design.kind not in ("srs", "stratified"):
        raise AuditError("PPI estimation supports srs and stratified samples of incidents, "
                         f"not a {design.kind} sample of {design.frame}")
    frame = _scored_frame(project, design)  # first: the screen comes before the review
    dec = latest_decisions(project, sample.sample_id)
    if dec.empty:
        raise AuditError(f"sample {sample.sample_id} has no decisions yet")
    # Every decided record is labelled, cannot_tell included (s = 0: in no denominator, as in
    # the classical estimator): the sample side then holds the same kinds of record as the
    # population side, where a crime linked to no incident counts with f = 1, r = 1.
    dec = dec[dec.should_record.isin([*_YES, "cannot_tell"])]
    labelled = _labelled(project, frame, dec.record_id.astype(str).unique())
    lab = labelled.merge(dec[["record_id", "should_record", "recorded"]], on="record_id")
    lab["s"] = (lab.should_record == "yes").astype(float)
    lab["r_auditor"] = lab.recorded.map(_YES).fillna(lab.r)
    groups: list[tuple[str, pd.DataFrame, pd.DataFrame]] = [
        ("all", _population_sums(project, frame, None), lab)]
    if by:
        pops = _population_sums(project, frame, by)
        for g in sorted(pops[by].dropna().astype(str).unique()):
            groups.append((f"{by}={g}", pops[pops[by].astype(str) == g],
                           lab[lab[by].astype(str) == g]))
    out = []
    for scope, pop, lb in groups:
        strata = {}
        for row in pop.itertuples(index=False):
            lh = lb[lb.stratum == row.stratum]
            if len(lh) >= 2:
                strata[row.stratum] = PPIStratum(
                    lh.s.to_numpy(float), lh.f.to_numpy(float), lh.r_auditor.to_numpy(float),
                    lh.r.to_numpy(float), int(row.N), float(row.sum_f), float(row.sum_fr),
                    float(row.sum_f2r), float(row.sum_f2nr))
        if not strata:
            continue
        res = ppi_stratified_ratio(strata, level=level, lam=lam)
        used = lb[lb.stratum.isin(list(strata))]
        cls = _classical(design.kind, used, {h: st.N for h, st in strata.items()}, level)
        skipped = sorted(set(pop.stratum) - set(strata))
        out.append(_estimate(scope, res, cls, used, int(pop.N.sum()), skipped, level,
                             sample.sample_id, fallback=lam is None))
    return out


def _classical(kind: str, lab: pd.DataFrame, population: dict, level: float) -> RatioResult:
    """The estimator ``crimeaudit estimate`` uses without the screen, on the same records:
    Wilson (SRS) or the stratified ratio with Wilson at the effective sample size."""
    y = (lab.s * lab.r_auditor).to_numpy(float)
    z = lab.s.to_numpy(float)
    if kind == "srs":
        return srs_ratio(y, z, level)
    return stratified_ratio(y, z, lab.stratum.astype(str).to_numpy(), population, level)


def method_name(res: PPIResult) -> str:
    """The method string of an estimate: estimator, tuning and interval actually used.

    >>> method_name(PPIResult(0.9, 0.88, 0.92, 0.01, 0.9, 400, 9000, 0.95,
    ...                       {"strata": 1, "tuning": "cross-fit", "interval": "logit"}))
    'ppi++ (cross-fit lambda, logit interval)'
    """
    strat = " stratified" if res.extra.get("strata", 1) > 1 else ""
    return f"ppi++{strat} ({res.extra['tuning']} lambda, {res.extra['interval']} interval)"


def _estimate(scope, res: PPIResult, cls: RatioResult, lb, population: int, skipped, level,
              sample_id, fallback: bool = True):
    """One Estimate: PPI++'s, or the classical one where PPI++'s interval is not narrower
    (the screen did not help on this sample), with the sizes and warnings behind it."""
    x = res.extra
    cls_half = (cls.upper - cls.lower) / 2
    warnings = coverage_warnings(res.n, x["should_record"], x["discordant"])
    left_out = []
    if skipped:
        left_out.append(f"strata with fewer than 2 audited records are left out: "
                        f"{', '.join(map(str, skipped))} (the figure describes the others)")
    warnings += left_out
    folds = f" over {x['folds']} folds" if x.get("folds") else ""
    counts = (f"{res.n:,} audited records ({x['should_record']} should have been recorded, "
              f"{x['discordant']} where the auditor and the screen disagree)")
    common = {"lambda": res.lam, "classical_half_width": cls_half,
              "ppi_half_width": res.half_width, "population": population,
              "sample_id": sample_id, "tuning": x["tuning"], "interval": x["interval"],
              "discordant": x["discordant"], "should_record": x["should_record"]}
    if fallback and res.half_width >= cls_half:
        # PPI++ is never allowed to be wider than the estimate without the screen.
        return Estimate(
            measure="recording_rate", scope=scope, estimate=cls.estimate, lower=cls.lower,
            upper=cls.upper, level=level,
            method=f"{cls.method} (PPI++ fallback: the screen did not narrow the interval)",
            n=int(len(lb)), numerator=float(cls.numerator), denominator=float(cls.denominator),
            se=cls.se, n_effective=cls.n_effective, sample_id=sample_id,
            warnings=tuple(left_out + small_sample_warnings(cls)),
            notes=(f"PPI++ with the screen's P(crime) gave a half-width of "
                   f"{100 * res.half_width:.2f} points, the classical estimate "
                   f"{100 * cls_half:.2f}: the classical one is reported; {counts}"),
            extra=common | {"fallback": True, "warnings": warnings})
    notes = (f"prediction-powered inference (PPI++) combining the screen's P(crime) on all "
             f"{res.N:,} records of the frame with {counts}; lambda power-tuned by "
             f"{x['tuning']}{folds}; ratio as an M-estimate, delta-method interval on the "
             f"{x['interval']} scale")
    if skipped:
        notes += f"; strata with < 2 audited records left out: {skipped}"
    if warnings:
        notes += "; WARNING: " + "; ".join(warnings)
    return Estimate(
        measure="recording_rate", scope=scope, estimate=res.estimate, lower=res.lower,
        upper=res.upper, level=level, method=method_name(res), n=int(len(lb)),
        numerator=float((lb.s * lb.r_auditor).sum()), denominator=float(lb.s.sum()), notes=notes,
        se=res.se, sample_id=sample_id, warnings=tuple(warnings),
        extra=common | {"fallback": False, "warnings": warnings},
    )
