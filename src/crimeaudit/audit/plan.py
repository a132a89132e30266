"""How many records to audit for a given margin of error.

For a rate ``p`` expected around ``p0``, a two-sided interval at level ``1 - alpha`` and a
half-width (margin) ``e``::

    n0 = z^2 * p0 * (1 - p0) / e^2                 (z = normal quantile, 1.96 at 95%)
    n  = n0 / (1 + (n0 - 1) / N)                   (finite-population correction, Cochran)

``n`` counts records that *should have been recorded as crimes* (the rate's denominator); ``N``
is how many such records the population holds. Only a share ``c`` of audited incidents disclose
a crime, so the number of records to draw is ``ceil(n / c)`` and ``N = c * records in frame``.
From a project, ``c`` is estimated as (share of records with a linked crime) / ``p0``, because
recorded crimes are the fraction ``p0`` of disclosed ones.

>>> p = plan_sample_size(margin=0.02, expected=0.85)
>>> p.n_infinite, p.n_crimes
(1225, 1225)
>>> plan_sample_size(margin=0.02, expected=0.85, population=5000).n_crimes
984
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from crimeaudit.audit.errors import AuditError
from crimeaudit.uncertainty import normal_quantile

FORMULA = "n0 = z^2 p(1-p) / e^2;  n = n0 / (1 + (n0 - 1)/N);  records = ceil(n / c)"


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
    formula: str = FORMULA

    def summary(self) -> str:
        pop = f"N={self.population:,} records" if self.population else "N infinite"
        return (
            f"{self.scope}: audit {self.n_records:,} records (~{self.n_crimes:,} that should be "
            f"crimes) for +/-{100 * self.margin:.1f} points at {100 * self.expected:.0f}% "
            f"({100 * self.level:.0f}% level, z={self.z:.3f}, n0={self.n_infinite:,}, {pop}, "
            f"crime share {self.crime_share:.2f})"
        )

    def to_dict(self) -> dict:
        return asdict(self)


def plan_sample_size(
    margin: float = 0.02,
    expected: float = 0.85,
    level: float = 0.95,
    population: int | None = None,
    crime_share: float = 1.0,
    scope: str = "all",
) -> SampleSizePlan:
    """Sample size for a ``margin`` half-width at an ``expected`` rate (population: records)."""
    if not 0 < margin < 0.5:
        raise AuditError(f"margin must be between 0 and 0.5 (a proportion), not {margin}")
    if not 0 < expected < 1:
        raise AuditError(f"expected rate must be between 0 and 1, not {expected}")
    if not 0 < crime_share <= 1:
        raise AuditError(f"crime share must be in (0, 1], not {crime_share}")
    z = normal_quantile(level)
    n0 = z * z * expected * (1 - expected) / (margin * margin)
    n = n0
    crimes_pop = None
    if population:
        crimes_pop = max(population * crime_share, 1.0)
        n = n0 / (1 + (n0 - 1) / crimes_pop)
        n = min(n, crimes_pop)
    n_crimes = math.ceil(n - 1e-9)
    n_records = math.ceil(n_crimes / crime_share - 1e-9)
    if population:
        n_records = min(n_records, population)
    return SampleSizePlan(
        scope=scope, margin=margin, expected=expected, level=level, z=z,
        n_infinite=math.ceil(n0 - 1e-9), n_crimes=n_crimes, crime_share=crime_share,
        n_records=n_records, population=population,
    )


def plan_for_project(
    project, margin: float = 0.02, expected: float = 0.85, level: float | None = None,
    strands: tuple[str, ...] = ("all", "violence"), crime_share: float | None = None,
) -> list[SampleSizePlan]:
    """One plan per strand, with populations and crime shares taken from the project's frame.

    A strand's records are the incidents whose call type maps to it (the ``strand`` column of
    ``incident_types.csv``) and crimes of that strand linked to no incident. Counted in the
    engine: one row per strand comes back.
    """
    from crimeaudit.audit.design import SampleDesign, frame_summary

    codes = project.codes
    by_strand = frame_summary(project, SampleDesign("stratified", size=1, strata_by=("strand",)))
    by_strand["linked"] = by_strand.N * by_strand.crime_share
    level = level or project.config.confidence_level
    known = set(codes.strands)
    out = []
    for strand in strands:
        if strand not in known:
            raise AuditError(f"unknown strand {strand!r}; strands: {', '.join(sorted(known))}")
        inside = by_strand.stratum.map(lambda s, strand=strand: strand in codes.ancestry(s))
        part = by_strand[inside]
        N = int(part.N.sum())
        if N == 0:
            raise AuditError(f"the frame holds no records of strand {strand!r}")
        share = crime_share or min(1.0, max(part.linked.sum() / N / expected, 0.01))
        out.append(plan_sample_size(margin, expected, level, N, share, strand))
    return out
