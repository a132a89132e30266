"""Interval charts rendered offline to inline SVG (no JavaScript, no network).

Altair builds the Vega-Lite spec; ``vl_convert`` renders it to SVG in-process, so the report
opens in a browser without a connection.

>>> svg = interval_svg([{"scope": "all", "estimate": 0.9, "lower": 0.88, "upper": 0.92,
...                      "n": 1500}], title="Recording rate")
>>> svg.lstrip().startswith("<svg") and "http" not in svg.split(">", 1)[0].replace(
...     "http://www.w3.org", "")
True
"""

from __future__ import annotations

import re
from typing import Any

import altair as alt
import vl_convert as vlc

STRAND_ORDER = ("all", "violence", "sexual", "rape", "robbery", "burglary", "theft",
                "criminal_damage", "other")


def strand_order(scope: str) -> tuple[int, str]:
    return (STRAND_ORDER.index(scope) if scope in STRAND_ORDER else len(STRAND_ORDER), scope)


def interval_spec(rows: list[dict[str, Any]], title: str, proportion: bool = True) -> dict:
    """Point and interval bar per scope (strand), in the rows' order: the Vega-Lite spec.

    A row's ``name`` (e.g. "Violence against the person") labels it when present.
    """
    data = [{"scope": r.get("name", r["scope"]), "estimate": r["estimate"], "lower": r["lower"],
             "upper": r["upper"] if r["upper"] is not None else r["estimate"],
             "n": r["n"]} for r in rows]
    fmt = ".0%" if proportion else ",.0f"
    scale = alt.Scale(domain=[0, 1]) if proportion else alt.Scale(zero=True)
    base = alt.Chart(alt.Data(values=data)).encode(
        y=alt.Y("scope:N", sort=[d["scope"] for d in data], title=None),
    )
    bars = base.mark_rule(strokeWidth=2, color="#4c6a8a").encode(
        x=alt.X("lower:Q", scale=scale, axis=alt.Axis(format=fmt), title=title),
        x2="upper:Q",
    )
    points = base.mark_point(filled=True, size=70, color="#1b2a3a").encode(x="estimate:Q")
    labels = base.mark_text(align="left", dx=6, dy=-8, fontSize=10, color="#333").encode(
        x="estimate:Q", text=alt.Text("estimate:Q", format=".1%" if proportion else ",.0f"))
    chart = (bars + points + labels).properties(width=420, height=24 * len(data) + 10)
    return chart.to_dict()


def svg_of(spec: dict) -> str:
    """Render a Vega-Lite spec to SVG, without the XML prolog (it is inlined in HTML)."""
    svg = vlc.vegalite_to_svg(spec)
    return re.sub(r"^<\?xml[^>]*>\s*", "", svg)


def interval_svg(rows: list[dict[str, Any]], title: str, proportion: bool = True) -> str:
    return svg_of(interval_spec(rows, title, proportion))
