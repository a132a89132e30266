"""Comparison charts as Vega-Lite specs (Altair), rendered offline to inline SVG.

* :func:`difference_spec` - the difference B minus A per scope, interval bars, a line at zero;
* :func:`funnel_spec` - areas' rates against the records they rest on, with the pooled rate
  and the 95% and 99.8% limits;
* :func:`league_spec` - the league table's rates and intervals, highest first;
* :func:`trend_spec` - audits over time with intervals, and the p-chart's limits when there
  is one.

SVG comes from :func:`crimeaudit.report.charts.svg_of` (vl-convert, in-process, no network).

>>> from crimeaudit.comparison.areas import compare_areas, counts_area
>>> res = compare_areas([counts_area("A", 265, 388), counts_area("B", 67, 112),
...                      counts_area("C", 400, 500)])
>>> svg(res.funnel_spec()).lstrip().startswith("<svg")
True
"""

from __future__ import annotations

from typing import Any

import altair as alt

from crimeaudit.comparison.sentences import SCOPES

COLOURS = {"within": "#1b2a3a", "above 95%": "#2a7f3f", "above 99.8%": "#145a27",
           "below 95%": "#c0392b", "below 99.8%": "#7b1d12"}


def svg(spec: dict) -> str:
    """The chart as inline SVG (no XML prolog)."""
    from crimeaudit.report.charts import svg_of

    return svg_of(spec)


def _scope_name(scope: str) -> str:
    if scope == "all":
        return "All crime"
    if scope.startswith("division="):
        return f"Division {scope.split('=', 1)[1]}"
    name = SCOPES.get(scope, scope.replace("_", " "))
    return name[0].upper() + name[1:]


def difference_spec(differences: list, title: str) -> dict:
    """Per scope: the difference (points) and its interval (bars), in points."""
    data = [{"scope": _scope_name(d.scope), "difference": 100 * d.difference,
             "lower": 100 * d.lower, "upper": 100 * d.upper} for d in differences]
    order = [r["scope"] for r in data]
    base = alt.Chart(alt.Data(values=data)).encode(
        y=alt.Y("scope:N", sort=order, title=None))
    bars = base.mark_rule(strokeWidth=2, color="#4c6a8a").encode(
        x=alt.X("lower:Q", title=f"{title} (percentage points)"), x2="upper:Q")
    points = base.mark_point(filled=True, size=70, color="#1b2a3a").encode(x="difference:Q")
    labels = base.mark_text(align="left", dx=6, dy=-8, fontSize=10, color="#333").encode(
        x="difference:Q", text=alt.Text("difference:Q", format="+.1f"))
    zero = alt.Chart(alt.Data(values=[{"x": 0}])).mark_rule(
        color="#999", strokeDash=[4, 3]).encode(x="x:Q")
    chart = (zero + bars + points + labels).properties(width=420,
                                                        height=24 * max(len(data), 1) + 10)
    return chart.to_dict()


def funnel_spec(res) -> dict:
    """Funnel plot of an :class:`~crimeaudit.comparison.areas.AreaComparison`."""
    f = res.funnel
    ns = [a.n_effective for a in res.areas]
    limits = []
    for row in f.curve(min(ns), max(ns)):
        for key, name in (("lower95", "95% limits"), ("upper95", "95% limits"),
                          ("lower998", "99.8% limits"), ("upper998", "99.8% limits")):
            limits.append({"n": row["n"], "rate": row[key], "limit": name, "side": key})
    points = [{"area": a.area, "n": a.n_effective, "rate": a.estimate,
               "position": res.positions[a.area],
               "label": a.area if res.positions[a.area] != "within" or len(ns) <= 8 else ""}
              for a in res.areas]
    x = alt.X("n:Q", scale=alt.Scale(type="log", nice=False),
              title="Records the rate rests on (effective n, log scale)")
    y = alt.Y("rate:Q", axis=alt.Axis(format=".0%"), scale=alt.Scale(zero=False),
              title="Recording rate")
    lines = alt.Chart(alt.Data(values=limits)).mark_line(strokeWidth=1.2).encode(
        x=x, y=y, detail="side:N",
        color=alt.Color("limit:N", scale=alt.Scale(domain=["95% limits", "99.8% limits"],
                                                    range=["#9aa9b8", "#4c6a8a"]),
                        legend=alt.Legend(title=None, orient="bottom")),
        strokeDash=alt.StrokeDash("limit:N", legend=None,
                                  scale=alt.Scale(domain=["95% limits", "99.8% limits"],
                                                  range=[[5, 3], [1, 0]])))
    target = alt.Chart(alt.Data(values=[{"rate": f.target}])).mark_rule(
        color="#333", strokeWidth=1).encode(y="rate:Q")
    dots = alt.Chart(alt.Data(values=points)).mark_point(filled=True, size=60).encode(
        x=x, y=y, color=alt.Color("position:N", legend=None,
                                  scale=alt.Scale(domain=list(COLOURS),
                                                  range=list(COLOURS.values()))),
        tooltip=["area:N", "rate:Q", "n:Q"])
    text = alt.Chart(alt.Data(values=points)).mark_text(
        align="left", dx=6, dy=-6, fontSize=10, color="#333").encode(x=x, y=y, text="label:N")
    chart = (lines + target + dots + text).resolve_scale(color="independent").properties(
        width=520, height=340,
        title=f"Funnel plot: pooled rate {100 * f.target:.1f}%, {f.describe()}")
    return chart.to_dict()


def league_spec(res) -> dict:
    """The league table as interval bars, highest rate first."""
    data = [{"area": a.area, "estimate": a.estimate, "lower": a.lower, "upper": a.upper,
             "position": res.positions[a.area]} for a in res.areas]
    order = [r["area"] for r in data]
    base = alt.Chart(alt.Data(values=data)).encode(y=alt.Y("area:N", sort=order, title=None))
    bars = base.mark_rule(strokeWidth=2, color="#4c6a8a").encode(
        x=alt.X("lower:Q", axis=alt.Axis(format=".0%"), scale=alt.Scale(zero=False),
                title=f"Recording rate ({100 * res.level:.0f}% interval)"), x2="upper:Q")
    points = base.mark_point(filled=True, size=60).encode(
        x="estimate:Q", color=alt.Color("position:N", legend=None,
                                        scale=alt.Scale(domain=list(COLOURS),
                                                        range=list(COLOURS.values()))))
    target = alt.Chart(alt.Data(values=[{"x": res.funnel.target}])).mark_rule(
        color="#999", strokeDash=[4, 3]).encode(x="x:Q")
    chart = (target + bars + points).properties(width=420, height=20 * len(data) + 10)
    return chart.to_dict()


def trend_spec(res) -> dict:
    """Audits over time: estimates with intervals, and the p-chart's limits if any."""
    rows: list[dict[str, Any]] = []
    for i, (a, e) in enumerate(zip(res.audits, res.figures, strict=True)):
        row = {"audit": a.label, "order": i, "estimate": e.estimate, "lower": e.lower,
               "upper": e.upper}
        if res.control:
            c = res.control.points[i]
            row.update(control_lower=c["lower"], control_upper=c["upper"],
                       centre=res.control.centre, outside=c["outside"])
        rows.append(row)
    order = [r["audit"] for r in rows]
    x = alt.X("audit:N", sort=order, title=None, axis=alt.Axis(labelAngle=-30))
    base = alt.Chart(alt.Data(values=rows))
    layers = []
    if res.control:
        layers.append(base.mark_line(color="#c0392b", strokeDash=[4, 3], interpolate="step")
                      .encode(x=x, y="control_lower:Q"))
        layers.append(base.mark_line(color="#c0392b", strokeDash=[4, 3], interpolate="step")
                      .encode(x=x, y="control_upper:Q"))
        layers.append(base.mark_line(color="#999").encode(x=x, y="centre:Q"))
    layers.append(base.mark_rule(strokeWidth=2, color="#4c6a8a").encode(
        x=x, y=alt.Y("lower:Q", axis=alt.Axis(format=".0%"), scale=alt.Scale(zero=False),
                     title=f"Recording rate ({100 * res.level:.0f}% interval)"),
        y2="upper:Q"))
    layers.append(base.mark_line(color="#1b2a3a").encode(x=x, y="estimate:Q"))
    layers.append(base.mark_point(filled=True, size=60, color="#1b2a3a").encode(
        x=x, y="estimate:Q"))
    title = "Trend with intervals" + (" and p-chart 3-sigma limits (dashed)"
                                      if res.control else "")
    chart = alt.layer(*layers).properties(width=480, height=280, title=title)
    return chart.to_dict()


__all__ = ["difference_spec", "funnel_spec", "league_spec", "svg", "trend_spec"]
