"""The audit report's force sections: figures by division, strand by division, and the census
timeliness chart.

Estimates by division have the scope ``division=NAME``; strand by division (estimated ``--by
strand --by division``) ``division=NAME, strand=S``. A strand-by-division cell is shown where
the sample allows: at least :data:`MIN_CELL` decided records in its denominator; a smaller
cell shows its count and "too few" (its figure stays in ``report.json`` with its warning).

>>> scope_parts("division=North, strand=violence")
{'division': 'North', 'strand': 'violence'}
>>> scope_parts("violence")
{'strand': 'violence'}
"""

from __future__ import annotations

from typing import Any

import altair as alt

from crimeaudit.audit.estimators import SMALL_DOMAIN
from crimeaudit.report.charts import STRAND_ORDER, svg_of

#: Decided records a strand-by-division cell needs to be shown as a figure.
MIN_CELL = SMALL_DOMAIN


def scope_parts(scope: str) -> dict[str, str]:
    """A scope's division and strand (``all`` has neither)."""
    if scope == "all":
        return {}
    if "=" not in scope:
        return {"strand": scope}
    parts = dict(p.split("=", 1) for p in scope.split(", ") if "=" in p)
    # A division name holding ", " is kept whole: everything before ", strand=".
    if "division" in parts and "strand" not in parts and scope.startswith("division="):
        parts = {"division": scope[len("division="):]}
    return parts


def is_strand_scope(scope: str) -> bool:
    return "division" not in scope_parts(scope)


def strand_by_division(rows: list[dict[str, Any]], strand_names: dict[str, str]
                       ) -> dict[str, Any] | None:
    """The recording rate's strand-by-division grid (None when not estimated)."""
    cells = {}
    for r in rows:
        parts = scope_parts(r["scope"])
        if "division" in parts and "strand" in parts:
            cells[(parts["division"], parts["strand"])] = r
    if not cells:
        return None
    divisions = sorted({d for d, _ in cells})
    present = {s for _, s in cells}
    strands = [s for s in STRAND_ORDER if s in present] + sorted(present - set(STRAND_ORDER))
    grid = []
    for d in divisions:
        row = []
        for s in strands:
            r = cells.get((d, s))
            if r is None:
                row.append({"text": "", "shown": False})
            elif (r.get("denominator") or 0) < MIN_CELL:
                row.append({"text": f"too few ({r.get('denominator', 0):g})", "shown": False,
                            "warnings": r.get("warnings") or []})
            else:
                row.append({"text": f"{r['est_text']} ({r['ci_text']})", "shown": True,
                            "n": r["n"], "warnings": r.get("warnings") or []})
        grid.append({"division": d, "cells": row})
    return {"strands": [strand_names.get(s, s) for s in strands], "rows": grid,
            "min_cell": MIN_CELL}


def delay_chart(census: dict[str, Any]) -> str:
    """Bar chart of the census delay distribution (share of crimes per band)."""
    dist = census["overall"]["distribution"]
    data = [{"band": d["band"], "share": d["share"] or 0.0, "crimes": d["crimes"]}
            for d in dist]
    chart = alt.Chart(alt.Data(values=data)).mark_bar(color="#4c6a8a").encode(
        x=alt.X("share:Q", axis=alt.Axis(format=".0%"), title="Share of crimes",
                scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("band:N", sort=[d["band"] for d in data], title="Recorded after the report"),
        tooltip=["band:N", "crimes:Q"],
    ).properties(width=420, height=26 * len(data))
    try:
        return svg_of(chart.to_dict())
    except Exception as exc:  # a chart must not lose the report
        return f"<p class='note'>Chart could not be drawn: {exc}</p>"


__all__ = ["MIN_CELL", "delay_chart", "is_strand_scope", "scope_parts", "strand_by_division"]
