"""The report's comparison section: this audit against others, or the project's audits over time.

:func:`report_section` is what ``crimeaudit report DIR [--compare OTHER]`` adds to the figures
document (``report.json``, key ``comparison``): with ``others``, the project's audit against
theirs (earlier audits first); without, when the project holds estimates of two or more
samples of incidents, those audits in time order. Two audits give a comparison figure by
figure; three or more a trend. The section is plain JSON (sentences, rows, warnings, notes)
with the Vega-Lite spec of its chart, which the HTML renders as inline SVG.

>>> import tempfile
>>> from crimeaudit.store import Project
>>> with Project.init(tempfile.mkdtemp()) as p:
...     report_section(p) is None   # nothing estimated: nothing to compare
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from crimeaudit.comparison.audits import Audit, lead_audit, sample_audits
from crimeaudit.comparison.errors import CompareError
from crimeaudit.comparison.pair import compare_pair
from crimeaudit.comparison.trend import compare_trend
from crimeaudit.comparison.verb import read_audits
from crimeaudit.model.figures import strict
from crimeaudit.store.project import Project

#: Figures the report's comparison table shows.
SHOWN = ("recording_rate", "unrecorded_per_year")


def _audits(project: Project, others: Sequence[str | os.PathLike]) -> list[Audit]:
    if others:
        try:
            this = lead_audit(project)
        except CompareError:
            return []
        found = [this, *read_audits(list(others), expand=False)]
        labels = [a.label for a in found]
        if len(set(labels)) < len(labels):
            for a in found:
                a.label = f"{a.label} ({a.period_label})"
        return sorted(found, key=Audit.sort_key)
    return sample_audits(project)


def report_section(project: Project, others: Sequence[str | os.PathLike] = (),
                   level: float = 0.95) -> dict[str, Any] | None:
    """The comparison section of ``project``'s report, or None when there is nothing to
    compare (see the module docstring). A named other audit that cannot be read is an error."""
    audits = _audits(project, others)
    if len(audits) < 2:
        return None
    if len(audits) == 2:
        res = compare_pair(audits[0], audits[1], level)
        rows = [d.to_dict() for d in res.differences if d.measure in SHOWN]
        if not rows:
            return None
        return strict({
            "kind": "pair", "a": res.a.to_dict(), "b": res.b.to_dict(), "level": level,
            "sentences": [d.sentence for d in res.differences
                          if d.scope == "all" and d.measure in SHOWN],
            "rows": rows, "warnings": res.warnings, "notes": res.notes,
            "chart": res.chart_spec() if any(d.measure == "recording_rate"
                                             for d in res.differences) else None})
    try:
        res = compare_trend(audits, level=level)
    except CompareError:
        return None
    out = res.to_dict()
    out.update(sentences=[d.sentence for d in res.steps], chart=res.chart_spec())
    return strict(out)


__all__ = ["report_section"]
