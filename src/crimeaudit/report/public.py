"""What the public-data report shows of detection: findings by area, with their charts.

Areas come in the order of their best-ranked finding; within an area, significant findings
(q < 0.05 over every test of the run) first, each with its sentence, effect, interval, p, q,
method and n, and the first :data:`MAX_CHARTS` of them with their chart drawn (a funnel chart
shared by many areas is drawn with the area in red). Findings that are not significant are
counted, not listed, except in a one-area report (``--area``), where the first
:data:`SHOWN_NOT_SIGNIFICANT` are listed too: a reader asking about one area sees what was
tested there.

>>> from crimeaudit.model.figures import Finding
>>> a = Finding("breaks", "Kent: robbery", 0.35, 0.1, 0.6, "step", 1e-6, 1e-4, "Kent step.",
...             extra={"area": "Kent", "rank": 1})
>>> b = Finding("breaks", "Essex: robbery", 0.1, -0.1, 0.3, "step", 0.3, 0.6, "Essex.",
...             extra={"area": "Essex", "rank": 2})
>>> [(g["area"], len(g["significant"]), g["not_significant"]) for g in by_area([a, b])]
[('Kent', 1, 0), ('Essex', 0, 1)]
"""

from __future__ import annotations

import math
from typing import Any

from crimeaudit.detect.charts import highlighted
from crimeaudit.detect.reading import ALPHA, area_of
from crimeaudit.model.figures import Finding
from crimeaudit.report.charts import svg_of

#: Charts drawn in a whole-project report (the rest are in charts.json) and in a one-area one.
MAX_CHARTS = 12
MAX_CHARTS_ONE_AREA = 24
SHOWN_NOT_SIGNIFICANT = 5


def _significant(f: Finding, alpha: float = ALPHA) -> bool:
    return f.q_value is not None and math.isfinite(f.q_value) and f.q_value < alpha


def _rank(f: Finding) -> float:
    r = f.extra.get("rank")
    return float(r) if r is not None else math.inf


def by_area(findings: list[Finding], one_area: bool = False,
            max_charts: int | None = None) -> list[dict[str, Any]]:
    """Findings grouped by area, best-ranked area first (see the module notes)."""
    max_charts = max_charts if max_charts is not None else (
        MAX_CHARTS_ONE_AREA if one_area else MAX_CHARTS)
    groups: dict[str, dict[str, Any]] = {}
    for f in sorted(findings, key=_rank):
        g = groups.setdefault(area_of(f), {"area": area_of(f), "significant": [],
                                           "not_significant": 0, "listed_quiet": []})
        if _significant(f):
            g["significant"].append({"f": f, "chart": ""})
        else:
            g["not_significant"] += 1
            if one_area and len(g["listed_quiet"]) < SHOWN_NOT_SIGNIFICANT:
                g["listed_quiet"].append({"f": f, "chart": ""})
    drawn = 0
    for g in groups.values():
        for item in g["significant"]:
            if drawn >= max_charts:
                break
            spec = item["f"].extra.get("chart")
            if isinstance(spec, dict):
                item["chart"] = chart_svg(spec, item["f"].extra.get("highlight"))
                drawn += 1
    return list(groups.values())


def chart_svg(spec: dict[str, Any], highlight: str | None = None) -> str:
    """The chart as SVG, the finding's unit in red; a chart that cannot be drawn says so
    instead of losing the report."""
    try:
        return svg_of(highlighted(spec, highlight))
    except Exception as exc:  # a bad spec must not lose the report
        return f"<p class='note'>Chart could not be drawn: {exc}</p>"


__all__ = ["MAX_CHARTS", "by_area", "chart_svg"]
