"""PPI++ recording rate from a project's audit sample, decisions, links and screen scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crimeaudit.audit.errors import AuditError
from crimeaudit.audit.ppi import PPIResult, coverage_warnings, ppi_stratified_ratio
from crimeaudit.model.figures import Estimate

_YES = {"yes": 1.0, "no": 0.0}


def _population(project, design) -> pd.DataFrame:
    """The design's frame with, for every record, P(crime) and whether a crime is linked."""
    from crimeaudit.audit.design import _strata, sampling_frame

    eng = project.engine
    frame = sampling_frame(project, design)
    frame["stratum"] = (_strata(frame, design.strata_by) if design.kind == "stratified"
                        else "all")
    if not eng.has_table("screen_scores"):
        raise AuditError("no screen scores yet: run crimeaudit screen run DIR first")
    scores = eng.to_pandas(eng.table("screen_scores").select("incident_id", "p_crime"))
    frame = frame.merge(scores.rename(columns={"incident_id": "record_id"}), on="record_id",
                        how="left")
    # A crime record with no incident is itself a recorded crime: prediction 1, recorded.
    is_crime = frame.record_type == "crime"
    frame.loc[is_crime, "p_crime"] = 1.0
    if frame.p_crime.isna().any():
        raise AuditError(f"{int(frame.p_crime.isna().sum())} incidents have no screen score: "
                          "run crimeaudit screen run DIR again")
    if eng.has_table("links"):
        linked = set(eng.to_pandas(eng.table("links").select("incident_id")).incident_id)
        frame["r_link"] = np.where(is_crime, 1.0, frame.record_id.isin(linked).astype(float))
    else:
        frame["r_link"] = frame.has_crime.astype(float)
    return frame


def estimate_ppi(project, level: float = 0.95, by=None, sample_id: str | None = None):
    """The recording rate by PPI++ from the audit's decisions and the screen's scores.

    Reads ``audit_samples`` / ``audit_decisions`` (incident records, ``should_record`` yes/no),
    ``screen_scores`` (``p_crime`` for every incident) and the linked pairs (whether each
    incident has a crime record). Stratified by the sample's strata; ``by`` (e.g.
    ``"division"``) gives one estimate per group as well. Returns a list of
    :class:`crimeaudit.model.Estimate`.
    """
    from crimeaudit.audit.decisions import latest_decisions
    from crimeaudit.audit.design import load_sample

    sample = load_sample(project, sample_id)
    design = sample.design
    if design.frame != "incidents" or design.kind not in ("srs", "stratified"):
        raise AuditError("PPI estimation supports srs and stratified samples of incidents, "
                          f"not a {design.kind} sample of {design.frame}")
    frame = _population(project, design)
    dec = latest_decisions(project, sample.sample_id)
    if dec.empty:
        raise AuditError(f"sample {sample.sample_id} has no decisions yet")
    dec = dec[dec.should_record.isin(list(_YES))]
    lab = frame.merge(dec[["record_id", "should_record", "recorded"]], on="record_id")
    lab["s"] = lab.should_record.map(_YES)
    lab["r"] = lab.recorded.map(_YES).fillna(lab.r_link)
    groups = [("all", frame, lab)]
    if by:
        if by not in frame.columns:
            raise AuditError(f"cannot estimate by {by!r}: use strand or division")
        groups += [(f"{by}={g}", frame[frame[by] == g], lab[lab[by] == g])
                   for g in sorted(frame[by].dropna().unique())]
    out = []
    for scope, pop, lb in groups:
        strata = {}
        for h, ph in pop.groupby("stratum"):
            lh = lb[lb.stratum == h]
            if len(lh) >= 2:
                strata[h] = (lh.s, lh.p_crime, lh.r, ph.p_crime, ph.r_link, lh.r_link)
        if not strata:
            continue
        res = ppi_stratified_ratio(strata, level=level)
        cls = ppi_stratified_ratio(strata, level=level, lam=0.0)
        skipped = sorted(set(pop.stratum) - set(strata))
        out.append(_estimate(scope, res, cls, lb, pop, skipped, level, sample.sample_id))
    return out


def method_name(res: PPIResult) -> str:
    """The method string of an estimate: estimator, tuning and interval actually used.

    >>> method_name(PPIResult(0.9, 0.88, 0.92, 0.01, 0.9, 400, 9000, 0.95,
    ...                       {"strata": 1, "tuning": "cross-fit", "interval": "logit"}))
    'ppi++ (cross-fit lambda, logit interval)'
    """
    strat = " stratified" if res.extra.get("strata", 1) > 1 else ""
    return f"ppi++{strat} ({res.extra['tuning']} lambda, {res.extra['interval']} interval)"


def _estimate(scope, res: PPIResult, cls: PPIResult, lb, pop, skipped, level, sample_id):
    """One Estimate with the method, the sizes behind it and any coverage warning in notes."""
    x = res.extra
    warnings = coverage_warnings(res.n, x["should_record"], x["discordant"])
    folds = f" over {x['folds']} folds" if x.get("folds") else ""
    notes = (f"prediction-powered inference (PPI++) combining the screen's P(crime) on all "
             f"{res.N:,} records of the frame with {res.n:,} audited records "
             f"({x['should_record']} should have been recorded, {x['discordant']} where the "
             f"auditor and the screen disagree); lambda power-tuned by {x['tuning']}{folds}; "
             f"ratio as an M-estimate, delta-method interval on the {x['interval']} scale")
    if skipped:
        notes += f"; strata with < 2 audited records left out: {skipped}"
    if warnings:
        notes += "; WARNING: " + "; ".join(warnings)
    return Estimate(
        measure="recording_rate", scope=scope, estimate=res.estimate, lower=res.lower,
        upper=res.upper, level=level, method=method_name(res), n=int(len(lb)),
        numerator=float((lb.s * lb.r).sum()), denominator=float(lb.s.sum()), notes=notes,
        se=res.se, sample_id=sample_id, warnings=tuple(warnings),
        extra={"lambda": res.lam, "classical_half_width": cls.half_width,
               "ppi_half_width": res.half_width, "population": int(len(pop)),
               "sample_id": sample_id, "tuning": x["tuning"], "interval": x["interval"],
               "discordant": x["discordant"], "should_record": x["should_record"],
               "warnings": warnings},
    )
