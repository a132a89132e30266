"""Figures whose interval was measured to cover less than its level: flagged where they fall short.

``benchmarks/bench_pipeline_coverage.py`` runs a thousand replicate audits of simulated forces
through the code ``crimeaudit estimate`` runs and counts how often each figure's 95% interval
holds the force's true value. Where a figure covered less than 95% with the Monte-Carlo
interval of that share entirely below 95%, counting only the replicates in which the figure
carried no other warning (those already tell the reader to be careful), the benchmark lists it
in ``coverage_shortfalls.csv`` (shipped in ``crimeaudit/model/data``): the figure (``measure``,
``ppi:recording_rate`` for PPI++), the design (``srs``, ``prop`` or ``neyman`` stratified by
strand, ``pps``), the sample size, the scope, the simulated force, the replicates and the
coverage with its Monte-Carlo interval.

:func:`shortfall_warnings` gives a figure of the same measure, design and scope, from a sample
of between half and twice the benchmarked size, the warning a reader sees: what coverage was
measured, so the interval is read for what it is. Where the benchmark measured that figure at
several sizes in that range, the **nearest** measured size decides, force by force
(``coverage_measured.csv`` lists every measured measure, design, size, scope and simulated
force, short or not): a shortfall measured on a force at 800 does not flag a Neyman audit of
1,500 records when that force was measured at 1,500 and held there. Only audits at auditor
error 0 count for the uncorrected figures (auditor error is measured and warned about by the
double review, see :mod:`crimeaudit.audit.measures`); the corrected ``*_adjusted`` figures
count at every error rate. Division scopes carry the simulated force's division names, so
they match only audits of simulated forces.

>>> rows = [{"measure": "timeliness", "design": "neyman", "n": 1500, "scope": "all",
...          "scenario": "kent-2013", "reps": 1000, "coverage": 0.921, "mc_lower": 0.903,
...          "mc_upper": 0.936}]
>>> shortfall_warnings("timeliness", "all", "neyman", 1200, rows)[0][:61]
'in the pipeline coverage benchmark (simulated kent-2013 force'
>>> shortfall_warnings("timeliness", "all", "neyman", 400, rows)
[]
>>> held = [{"measure": "timeliness", "design": "neyman", "n": 1200, "scope": "all",
...          "scenario": "kent-2013"}]
>>> shortfall_warnings("timeliness", "all", "neyman", 1200, rows, held)  # measured, held
[]
>>> len(shortfall_warnings("timeliness", "all", "neyman", 1400, rows, held))  # 1,500 nearer
1
>>> elsewhere = [{**held[0], "scenario": "compliant"}]  # held on another force only
>>> len(shortfall_warnings("timeliness", "all", "neyman", 1200, rows, elsewhere))
1
"""

from __future__ import annotations

import csv
import functools
import io
from fractions import Fraction
from importlib import resources

FILE = "coverage_shortfalls.csv"
#: Every (measure, design, n, scope, scenario) the benchmark judged, short or not.
MEASURED_FILE = "coverage_measured.csv"
#: How every shortfall warning begins (the benchmark tells its own verdict from other warnings).
PREFIX = "in the pipeline coverage benchmark"
COLUMNS = ("measure", "design", "n", "scope", "scenario", "reps", "coverage", "mc_lower",
           "mc_upper")


def _shipped(name: str) -> list[dict]:
    path = resources.files("crimeaudit.model").joinpath(f"data/{name}")
    if not path.is_file():
        return []
    return [{**r, "n": int(r["n"])}
            for r in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))]


@functools.cache
def shortfalls() -> tuple[dict, ...]:
    """The benchmark's list of figures that fell short (empty if none shipped)."""
    return tuple({**r, "reps": int(r["reps"]),
                  **{k: float(r[k]) for k in ("coverage", "mc_lower", "mc_upper")}}
                 for r in _shipped(FILE))


@functools.cache
def measured() -> tuple[dict, ...]:
    """Every figure the benchmark judged (measure, design, n, scope, scenario), short or not."""
    return tuple(_shipped(MEASURED_FILE))


def design_key(design) -> str | None:
    """The benchmark's name of a sample design (``None`` for designs it did not run).

    >>> from crimeaudit.audit.design import SampleDesign
    >>> design_key(SampleDesign("stratified", strata_by=("strand",), allocation="neyman"))
    'neyman'
    >>> design_key(SampleDesign("stratified", strata_by=("division",))) is None
    True
    """
    if design.kind == "stratified":
        if tuple(design.strata_by) != ("strand",):
            return None
        return "prop" if design.allocation == "proportional" else "neyman"
    if design.kind == "pps":
        return "pps" if design.size_column == "call_type_priority" else None
    return design.kind


def unmeasured_note(design) -> str | None:
    """The note a figure carries when the benchmark never ran its design (else ``None``): a
    reader must know its coverage was not measured, not assume it was measured and held.

    >>> from crimeaudit.audit.design import SampleDesign
    >>> unmeasured_note(SampleDesign("stratified", strata_by=("division",)))[:48]
    'the pipeline coverage benchmark has not run this'
    >>> unmeasured_note(SampleDesign("srs")) is None
    True
    """
    if design_key(design) is not None:
        return None
    what = (f"stratified by {' and '.join(design.strata_by)}" if design.kind == "stratified"
            else f"{design.kind} on {design.size_column}")
    return (f"the pipeline coverage benchmark has not run this design ({what}): this "
            "interval's coverage was not measured (benchmarks/bench_pipeline_coverage.py)")


def shortfall_warnings(measure: str, scope: str, design: str | None, n: int,
                       rows=None, judged=None) -> list[str]:
    """The warning for a figure the benchmark found short of its level, else ``[]``.

    ``rows`` are the shortfalls and ``judged`` every measured figure (the shipped lists by
    default); a shortfall stands unless its force was measured at a size nearer ``n``.
    """
    if design is None:
        return []
    rows = shortfalls() if rows is None else rows
    judged = measured() if judged is None else judged

    def same(r) -> bool:
        return (r["measure"] == measure and r["scope"] == scope and r["design"] == design
                and r["n"] / 2 <= n <= 2 * r["n"])

    def far(m: int) -> Fraction:  # exact, so that equal distances tie exactly
        return Fraction(max(n, m), max(min(n, m), 1))

    # A shortfall measured on one simulated force stands unless that force was measured at a
    # size nearer this audit's and held there.
    hits = [r for r in rows if same(r)
            and not any(same(j) and j.get("scenario", r["scenario"]) == r["scenario"]
                        and far(j["n"]) < far(r["n"]) for j in judged)]
    if not hits:
        return []
    r = min(hits, key=lambda r: r["coverage"])
    return [f"{PREFIX} (simulated {r['scenario']} force, {design} "
            f"design, n={r['n']:,}, {r['reps']:,} audits) this figure's 95% interval held the "
            f"true value in {100 * r['coverage']:.1f}% of audits [Monte-Carlo 95% "
            f"{100 * r['mc_lower']:.1f}-{100 * r['mc_upper']:.1f}]: read it as about a "
            f"{100 * r['coverage']:.0f}% interval"]


__all__ = ["COLUMNS", "FILE", "MEASURED_FILE", "PREFIX", "design_key", "measured",
           "shortfall_warnings", "shortfalls", "unmeasured_note"]
