"""The ``compare`` verb: what to compare is read from what it is given.

* two audits (two projects, or a project holding two samples, or ``DIR@SAMPLE`` specs)
  give an :class:`~crimeaudit.comparison.pair.AuditComparison`, figure by figure;
* three or more audits of one force (one project with several samples, or projects of the
  same name) give a :class:`~crimeaudit.comparison.trend.TrendComparison`;
* three or more forces, or a CSV of published figures (``counts``), give an
  :class:`~crimeaudit.comparison.areas.AreaComparison`: league table, funnel, pairs.

``kind`` forces one of ``pair``, ``trend`` or ``areas``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crimeaudit.audit.results import AuditEstimates
from crimeaudit.comparison.areas import audit_area, compare_areas, read_counts
from crimeaudit.comparison.audits import (
    Audit,
    audit_from_run,
    lead_audit,
    sample_audits,
    split_spec,
)
from crimeaudit.comparison.errors import CompareError
from crimeaudit.comparison.pair import compare_pair
from crimeaudit.comparison.trend import compare_trend
from crimeaudit.store.project import Project, ProjectError

KINDS = ("auto", "pair", "trend", "areas")


def _from_project(project: Project, sample: str | None, samples: Sequence[str] | None,
                  expand: bool, method: str | None) -> list[Audit]:
    if sample:
        return sample_audits(project, [sample], method)
    if samples:
        return sample_audits(project, list(samples), method)
    if expand:
        per_sample = sample_audits(project, method=method)
        if len(per_sample) >= 2:
            return per_sample
    return [lead_audit(project, method)]


def read_audits(inputs: Sequence[Any], samples: Sequence[str] | None = None,
                method: str | None = None, expand: bool = True) -> list[Audit]:
    """The audits named by ``inputs``: :class:`Audit`, ``AuditEstimates``, open projects,
    project folders or ``DIR@SAMPLE`` specs. A single project holding several samples of
    incidents gives one audit per sample when ``expand`` (or ``samples`` names them)."""
    single_project = len(inputs) == 1
    if samples and not single_project:
        raise CompareError("samples name the samples of one project; with several projects "
                           "use DIR@SAMPLE for each")
    out: list[Audit] = []
    for item in inputs:
        if isinstance(item, Audit):
            out.append(item)
        elif isinstance(item, AuditEstimates):
            out.append(audit_from_run(item))
        elif isinstance(item, Project):
            out += _from_project(item, None, samples if single_project else None,
                                 expand and single_project, method)
        elif isinstance(item, str | os.PathLike):
            folder, sample = split_spec(item)
            try:
                with Project.open(folder) as project:
                    out += _from_project(project, sample,
                                         samples if single_project else None,
                                         expand and single_project, method)
            except ProjectError as exc:
                raise CompareError(str(exc)) from None
        else:
            raise CompareError(f"cannot compare a {type(item).__name__}: give project folders, "
                               "projects or AuditEstimates")
    _unique_labels(out)
    return out


def _unique_labels(audits: list[Audit]) -> None:
    for a in audits:
        if [x.label for x in audits].count(a.label) > 1 and a.source:
            a.label = f"{a.label} ({Path(a.source).name})"
    seen: dict[str, int] = {}
    for a in audits:
        seen[a.label] = seen.get(a.label, 0) + 1
        if seen[a.label] > 1:
            a.label = f"{a.label} #{seen[a.label]}"


def _one_force(audits: list[Audit]) -> bool:
    sources = {a.source for a in audits}
    forces = {a.force for a in audits}
    return (len(sources) == 1 and None not in sources) or (len(forces) == 1
                                                         and None not in forces)


def _between_areas(a: Audit, b: Audit) -> bool:
    """Two different forces over the same time: compared as areas, not as a change."""
    if _one_force([a, b]):
        return False
    if None in (a.period_start, a.period_end, b.period_start, b.period_end):
        return False
    return a.period_start <= b.period_end and b.period_start <= a.period_end


def compare(*audits: Any, counts: str | os.PathLike | None = None,
            samples: Sequence[str] | None = None, kind: str = "auto",
            measure: str | None = None, scope: str | None = None, level: float = 0.95,
            pairs: bool = False, adjust: str = "holm", dispersion: str = "additive",
            method: str | None = None, labels: Sequence[str] | None = None):
    """Compare audits, forces or published figures; returns a results object with
    ``summary()``, ``to_frame()``, ``to_dict()`` and ``to_json()``.

    ``audits``: project folders (``DIR`` or ``DIR@SAMPLE``), open projects or
    ``AuditEstimates``; ``counts``: a CSV of published figures (``area, recorded,
    should_have_been`` or ``area, rate, half_width, n``). ``measure`` and ``scope`` pick the
    figure of a trend or league table (default the recording rate for all crime; a pair
    compares every shared figure unless they are given). ``pairs`` adds every pair of areas
    with ``adjust`` (``holm`` or ``bh``) adjusted p-values; ``dispersion`` is the funnel's
    over-dispersion model (``additive``, ``multiplicative`` or ``none``); ``method`` picks the
    stored estimates of that method (default ``auto``, else the latest); ``labels`` renames
    the audits in order.

    Two audits of a simulated force before and after its reform, from one project:

    >>> import datetime as dt, tempfile
    >>> from pathlib import Path
    >>> import crimeaudit as ca
    >>> work = Path(tempfile.mkdtemp())
    >>> _ = ca.simulate("reform", seed=5, n_incidents=3000, out_dir=work / "force")
    >>> project = ca.Project.init(work / "audit")
    >>> _ = ca.ingest(project, "canonical", sorted((work / "force").glob("*.parquet")))
    >>> _ = ca.link(project, ca.LinkSettings(probabilistic=False))
    >>> for start, end in ((dt.date(2014, 4, 1), dt.date(2015, 3, 31)),
    ...                    (dt.date(2015, 4, 1), dt.date(2016, 3, 31))):
    ...     s = ca.draw_sample(project, kind="srs", size=500, seed=1, period_start=start,
    ...                        period_end=end)
    ...     _ = ca.oracle_review(project, s.sample_id)
    ...     _ = ca.estimate(project, s.sample_id)
    >>> res = ca.compare(project)
    >>> d = res.get("recording_rate")
    >>> d.method, d.difference > 0, d.lower < d.difference < d.upper
    ('newcombe', True, True)
    >>> res.get("recording_rate").sentence.startswith("The recording rate rose from")
    True
    >>> project.close()
    """
    if kind not in KINDS:
        raise CompareError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if not 0.5 < level < 1:
        raise CompareError(f"level must be between 0.5 and 1, not {level}")
    found = read_audits(list(audits), samples, method, expand=counts is None)
    if labels:
        if len(labels) != len(found):
            raise CompareError(f"{len(labels)} labels for {len(found)} audits")
        for a, label in zip(found, labels, strict=True):
            a.label = label
    if counts is not None or kind == "areas":
        areas = [audit_area(a, measure or "recording_rate", scope or "all") for a in found]
        if counts is not None:
            areas += read_counts(counts)
        names = [a.area for a in areas]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise CompareError(f"area {dup!r} appears twice")
        return compare_areas(areas, pairs=pairs, level=level, adjust=adjust,
                             dispersion=dispersion, audits=found or None,
                             measure=measure or "recording_rate", scope=scope or "all")
    if len(found) < 2:
        raise CompareError("only one audit to compare: give another project, a project with "
                           "two estimated samples, DIR@SAMPLE specs, or --counts FILE")
    if kind == "auto":
        kind = "pair" if len(found) == 2 else ("trend" if _one_force(found) else "areas")
    if kind == "pair":
        if len(found) != 2:
            raise CompareError(f"a pair comparison takes two audits, not {len(found)}")
        return compare_pair(found[0], found[1], level,
                            measures=[measure] if measure else None,
                            scopes=[scope] if scope else None,
                            between_areas=_between_areas(*found))
    if kind == "trend":
        found = sorted(found, key=Audit.sort_key)
        return compare_trend(found, measure or "recording_rate", scope or "all", level)
    areas = [audit_area(a, measure or "recording_rate", scope or "all") for a in found]
    return compare_areas(areas, pairs=pairs, level=level, adjust=adjust,
                         dispersion=dispersion, audits=found,
                         measure=measure or "recording_rate", scope=scope or "all")


__all__ = ["KINDS", "compare", "read_audits"]
