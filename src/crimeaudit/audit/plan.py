"""How many records to audit so that the interval achieves a margin, with a stated assurance.

The textbook answer, ``n0 = z^2 p0 (1 - p0) / e^2``, gives a half-width of ``e`` only *on
average*: half the audits planned with it miss the margin (the rate's estimate and the number of
records that turn out to be crimes both vary). ``plan`` instead finds the smallest number of
records for which the interval ``crimeaudit estimate`` will compute achieves the margin with
probability ``assurance`` (default 0.8), under stated assumptions:

* the audit is a **simple random sample** of the scope's records, estimated as ``estimate``
  does it: a Wilson interval on the records that should have been crimes, **without** a
  finite-population correction (the interval applies none, so the plan must not);
* each audited record discloses a crime with probability ``c`` (the crime share), so the
  number of crimes ``m`` is Binomial(n, c);
* the true rate is ``p0`` (``expected``), so the recorded count is Binomial(m, p0);
* the margin is achieved when the half-width ``(upper - lower) / 2`` of that interval (Wilson's,
  with its Poisson bounds within 3 records of 0 or 1) is at most ``e``.

The probability is summed exactly over both binomials; the smallest ``n`` reaching
``assurance`` is found by bisection. With ``assurance=0.5`` this is about the classical answer.
A stratified design audits a strand as a stratum with a finite-population correction and is
at least as precise, so its plan is conservative.

>>> p = plan_sample_size(margin=0.02, expected=0.85, assurance=0.8)
>>> p.n_infinite, p.n_records, round(p.achieved, 3)
(1225, 1281, 0.813)
>>> plan_sample_size(margin=0.02, expected=0.85, assurance=0.5).n_records
1223
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import ibis
import numpy as np
import pandas as pd
from scipy import stats

from crimeaudit.audit.errors import AuditError
from crimeaudit.uncertainty import normal_quantile, proportion_interval

FORMULA = ("smallest n with P(Wilson half-width <= e) >= assurance, crimes m ~ Bin(n, c), "
           "recorded ~ Bin(m, p0), no FPC (as the SRS interval)")
ASSUMPTIONS = ("simple random sample of the scope's records; Wilson interval without "
               "finite-population correction, as crimeaudit estimate computes it; true rate = "
               "the expected rate; each record discloses a crime with probability = the crime "
               "share (from a project: records with an uncancelled linked crime / expected "
               "rate)")


@dataclass(frozen=True)
class SampleSizePlan:
    """The answer to "how many must we audit?" for one scope."""

    scope: str
    margin: float
    expected: float
    level: float
    z: float
    n_infinite: int
    n_crimes: int
    crime_share: float
    n_records: int
    population: int | None
    assurance: float = 0.8
    achieved: float = float("nan")
    reachable: bool = True
    formula: str = FORMULA
    assumptions: str = ASSUMPTIONS

    def summary(self) -> str:
        pop = f"N={self.population:,} records" if self.population else "N infinite"
        head = (
            f"{self.scope}: audit {self.n_records:,} records (~{self.n_crimes:,} that should be "
            f"crimes) for +/-{100 * self.margin:.1f} points at {100 * self.expected:.0f}% with "
            f"{100 * self.assurance:.0f}% assurance (achieved {100 * self.achieved:.1f}%; "
            f"{100 * self.level:.0f}% level, z={self.z:.3f}, n0={self.n_infinite:,}, {pop}, "
            f"crime share {self.crime_share:.2f})"
        )
        if not self.reachable:
            head += ("; the margin cannot be reached with this assurance even by auditing "
                     "every record of the scope")
        return head + f". Assumes: {self.assumptions}."

    def to_dict(self) -> dict:
        return asdict(self)


def wilson_half_width(x, m, level: float = 0.95):
    """Half the width of the interval ``estimate`` gives x of m (arrays): Wilson's, with Brown,
    Cai and DasGupta's bounds within 3 records of 0 or 1
    (:func:`crimeaudit.uncertainty.wilson_near_bounds`); 0.5 where m is 0.

    >>> round(float(wilson_half_width(850, 1000)), 4)
    0.0221
    >>> round(float(wilson_half_width(97, 100)), 4)  # Wilson's own: 0.0371
    0.0382
    """
    x, m = np.broadcast_arrays(np.asarray(x, float), np.asarray(m, float))
    z = normal_quantile(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / m
        half = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m)
    # Only counts within 3 of either end differ from Wilson's closed form: recompute those few
    # (the whole array through the general function is 20 times slower for plan's bisection).
    near = (m > 0) & ((x <= 3) | (m - x <= 3))
    if near.any():
        lo, hi = proportion_interval(x[near], m[near], level, "wilson")
        half = np.array(half, float)
        half[near] = (np.asarray(hi) - np.asarray(lo)) / 2
    return np.where(m > 0, half, 0.5)


def assurance_of(n: int, margin: float, expected: float, crime_share: float,
                 level: float = 0.95) -> float:
    """P(the Wilson half-width is at most ``margin``) when auditing ``n`` records.

    >>> round(assurance_of(1225, 0.02, 0.85, 1.0), 2)  # the textbook size: a coin toss
    0.5
    """
    if crime_share >= 1:
        ms, pm = np.array([n]), np.array([1.0])
    else:
        sd = math.sqrt(n * crime_share * (1 - crime_share))
        lo = max(0, int(n * crime_share - 8 * sd) - 1)
        hi = min(n, int(n * crime_share + 8 * sd) + 2)
        ms = np.arange(lo, hi + 1)
        pm = stats.binom.pmf(ms, n, crime_share)
    total = 0.0
    for m, w in zip(ms, pm, strict=True):
        if w < 1e-12 or m == 0:
            continue
        x = np.arange(m + 1)
        ok = wilson_half_width(x, m, level) <= margin + 1e-12
        total += w * float(stats.binom.pmf(x[ok], m, expected).sum())
    return float(total)


def plan_sample_size(
    margin: float = 0.02,
    expected: float = 0.85,
    level: float = 0.95,
    population: int | None = None,
    crime_share: float = 1.0,
    scope: str = "all",
    assurance: float = 0.8,
) -> SampleSizePlan:
    """Records to audit for a ``margin`` half-width at an ``expected`` rate with probability
    ``assurance`` (``population``: records in the scope, caps the answer)."""
    if not 0 < margin < 0.5:
        raise AuditError(f"margin must be between 0 and 0.5 (a proportion), not {margin}")
    if not 0 < expected < 1:
        raise AuditError(f"expected rate must be between 0 and 1, not {expected}")
    if not 0 < crime_share <= 1:
        raise AuditError(f"crime share must be in (0, 1], not {crime_share}")
    if not 0 < assurance < 1:
        raise AuditError(f"assurance must be between 0 and 1, not {assurance}")
    z = normal_quantile(level)
    n0 = z * z * expected * (1 - expected) / (margin * margin)
    cap = population if population else 10**7
    lo = max(1, int(0.5 * n0 / crime_share))
    hi = max(lo + 1, int(3 * n0 / crime_share) + 10)
    while hi < cap and assurance_of(hi, margin, expected, crime_share, level) < assurance:
        hi = min(cap, 2 * hi)
    hi = min(hi, cap)
    reachable = assurance_of(hi, margin, expected, crime_share, level) >= assurance
    if reachable:
        while hi - lo > 1:  # smallest n with assurance_of(n) >= assurance
            mid = (lo + hi) // 2
            if assurance_of(mid, margin, expected, crime_share, level) >= assurance:
                hi = mid
            else:
                lo = mid
    n_records = hi
    return SampleSizePlan(
        scope=scope, margin=margin, expected=expected, level=level, z=z,
        n_infinite=math.ceil(n0 - 1e-9), n_crimes=math.ceil(n_records * crime_share - 1e-9),
        crime_share=crime_share, n_records=n_records, population=population,
        assurance=assurance,
        achieved=assurance_of(n_records, margin, expected, crime_share, level),
        reachable=reachable,
    )


def crime_shares(project) -> pd.DataFrame:
    """Per call-type strand of the frame: records (N) and records with a linked crime that was
    not cancelled (``live``), counted in the engine.

    A record whose crimes were all cancelled is not counted as disclosing a crime: most
    cancellations are valid (no crime occurred), so counting them would overstate the share
    of crimes and plan too few records; where cancellations were wrong the share is understated
    and the plan errs towards more records.
    """
    from crimeaudit.audit.design import SampleDesign, sampling_frame
    from crimeaudit.linkage.pairs import linked_pairs

    eng = project.engine
    frame = sampling_frame(project, SampleDesign("stratified", size=1, strata_by=("strand",)))
    crimes = eng.table("crimes")
    live = crimes.filter(crimes.status == "recorded")
    pairs = linked_pairs(project)
    ids = pairs.join(live.select("crime_id"), "crime_id").select(
        record_id=pairs.incident_id.cast("string")).union(
        live.select(record_id=live.crime_id.cast("string"))).distinct()
    ids = ids.mutate(live=ibis.literal(1))
    t = frame.left_join(ids, "record_id")
    agg = t.group_by("strand").aggregate(N=t.count(), live=t.live.fill_null(0).sum())
    return eng.to_pandas(agg.order_by("strand")).reset_index(drop=True)


def plan_for_project(
    project, margin: float = 0.02, expected: float = 0.85, level: float | None = None,
    strands: tuple[str, ...] = ("all", "violence"), crime_share: float | None = None,
    assurance: float = 0.8,
) -> list[SampleSizePlan]:
    """One plan per strand, with populations and crime shares taken from the project's frame.

    A strand's records are the incidents whose call type maps to it (the ``strand`` column of
    ``incident_types.csv``) and crimes of that strand linked to no incident. The crime share
    is (share of the strand's records with a linked, uncancelled crime) / ``expected``, capped
    at 1 (:func:`crime_shares`), since recorded crimes are the fraction ``expected`` of those
    that should have been. Counted in the engine: one row per strand comes back.
    """
    codes = project.codes
    by_strand = crime_shares(project)
    level = level or project.config.confidence_level
    known = set(codes.strands)
    out = []
    for strand in strands:
        if strand not in known:
            raise AuditError(f"unknown strand {strand!r}; strands: {', '.join(sorted(known))}")
        inside = by_strand.strand.map(lambda s, strand=strand: strand in codes.ancestry(s))
        part = by_strand[inside]
        N = int(part.N.sum())
        if N == 0:
            raise AuditError(f"the frame holds no records of strand {strand!r}")
        share = crime_share or min(1.0, max(part.live.sum() / N / expected, 0.01))
        out.append(plan_sample_size(margin, expected, level, N, share, strand, assurance))
    return out
