"""A comparison as one self-contained HTML page (``crimeaudit compare ... --out DIR``).

As the inspection report: CSS inline, charts inline SVG, no JavaScript and nothing fetched, so
the page opens offline and can be mailed as it is. ``compare.json`` beside it holds the same
figures.

>>> import tempfile
>>> from pathlib import Path
>>> from crimeaudit.comparison.areas import compare_areas, counts_area
>>> res = compare_areas([counts_area("Greater Manchester", 265, 388),
...                      counts_area("Hampshire", 67, 112)])
>>> paths = write_page(res, Path(tempfile.mkdtemp()))
>>> html = paths["html"].read_text(encoding="utf-8")
>>> "<script" in html, "Greater Manchester" in html, html.count("<svg") >= 2
(False, True, True)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jinja2

from crimeaudit.comparison.charts import svg
from crimeaudit.model.figures import dumps
from crimeaudit.store.files import write_text

HEADLINE = ("recording_rate", "unrecorded_per_year")

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: Georgia, "Times New Roman", serif; color: #1d1d1d; max-width: 960px;
       margin: 2em auto; padding: 0 1.2em; line-height: 1.45; }
h1 { font-size: 1.6em; }
h2 { border-bottom: 2px solid #1b2a3a; padding-bottom: 0.15em; margin-top: 1.8em; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0 1em; font-size: 0.9em;
        font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
th, td { border-bottom: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left;
         vertical-align: top; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.sentence { font-size: 1.1em; background: #eef2f6; border-left: 6px solid #1b2a3a;
            padding: 0.6em 1em; }
.warning { color: #7b1d12; }
.note { color: #555; font-size: 0.9em; }
.chart svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
{% if warnings %}
<h2>Warnings</h2>
<ul id="warnings">
{% for w in warnings %}<li class="warning">{{ w }}</li>
{% endfor %}
</ul>
{% endif %}
{% if kind == "pair" %}
<h2>What changed</h2>
{% for d in rows if d.headline %}<p class="sentence">{{ d.sentence }}</p>
{% endfor %}
<div class="chart" id="chart-difference">{{ charts.difference|safe }}</div>
<table id="differences">
<thead><tr><th>Measure</th><th>Scope</th><th class="num">{{ a }}</th>
<th class="num">{{ b }}</th><th class="num">Difference (B &minus; A)</th>
<th class="num">{{ level_pct }}% interval</th><th class="num">p</th><th>Method</th></tr></thead>
<tbody>
{% for d in rows %}
<tr><td>{{ d.measure|replace("_", " ") }}</td><td>{{ d.scope }}</td>
<td class="num">{{ d.fig_a }}</td><td class="num">{{ d.fig_b }}</td>
<td class="num">{{ d.diff }}</td><td class="num">{{ d.ci }}</td>
<td class="num">{{ d.p }}</td><td>{{ d.method }}</td></tr>
{% endfor %}
</tbody>
</table>
{% elif kind == "areas" %}
<h2>Funnel plot</h2>
<div class="chart" id="chart-funnel">{{ charts.funnel|safe }}</div>
<p id="outside">Outside the 95% limits: {{ outside95|join(", ") or "none" }}.
Outside the 99.8% limits: {{ outside998|join(", ") or "none" }}.</p>
<h2>League table</h2>
<div class="chart" id="chart-league">{{ charts.league|safe }}</div>
<table id="league">
<thead><tr><th class="num">Rank</th><th>Area</th><th class="num">Rate</th>
<th class="num">{{ level_pct }}% interval</th><th class="num">n</th><th>Funnel</th>
<th>Method</th></tr></thead>
<tbody>
{% for r in rows %}
<tr><td class="num">{{ r.rank }}</td><td>{{ r.area }}</td><td class="num">{{ r.rate }}</td>
<td class="num">{{ r.ci }}</td><td class="num">{{ r.n }}</td><td>{{ r.funnel }}</td>
<td>{{ r.method }}</td></tr>
{% endfor %}
</tbody>
</table>
{% if pairs %}
<h2>Pairs</h2>
<table id="pairs">
<thead><tr><th>A</th><th>B</th><th class="num">B &minus; A</th>
<th class="num">{{ level_pct }}% interval</th><th class="num">p</th>
<th class="num">adjusted p</th></tr></thead>
<tbody>
{% for d in pairs %}
<tr><td>{{ d.a }}</td><td>{{ d.b }}</td><td class="num">{{ d.diff }}</td>
<td class="num">{{ d.ci }}</td><td class="num">{{ d.p }}</td><td class="num">{{ d.q }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% else %}
<h2>Trend</h2>
<div class="chart" id="chart-trend">{{ charts.trend|safe }}</div>
<table id="trend">
<thead><tr><th>Audit</th><th class="num">Rate</th><th class="num">{{ level_pct }}% interval</th>
<th class="num">n</th><th>Method</th></tr></thead>
<tbody>
{% for r in rows %}
<tr><td>{{ r.audit }}</td><td class="num">{{ r.rate }}</td><td class="num">{{ r.ci }}</td>
<td class="num">{{ r.n }}</td><td>{{ r.method }}</td></tr>
{% endfor %}
</tbody>
</table>
{% for s in steps %}<p class="sentence">{{ s }}</p>
{% endfor %}
{% endif %}
{% if notes %}
<h2>Method notes</h2>
<ul id="notes">
{% for n in notes %}<li class="note">{{ n }}</li>
{% endfor %}
</ul>
{% endif %}
<p class="note">The same figures are in <code>compare.json</code> beside this file.</p>
</body>
</html>
"""


def _pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "unbounded"
    return f"{100 * x:.1f}%"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _p(p: float | None) -> str:
    if p is None or p != p:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _fig(e) -> str:
    if e.unit == "proportion":
        return f"{_pct(e.estimate)} ({_pct(e.lower)[:-1]}-{_pct(e.upper)})"
    return f"{e.estimate:,.0f} ({e.lower:,.0f}-{e.upper:,.0f})"


def _diff(d) -> tuple[str, str]:
    if d.unit == "proportion":
        return f"{_pts(d.difference)} points", f"{_pts(d.lower)} to {_pts(d.upper)}"
    return f"{d.difference:+,.0f}", f"{d.lower:+,.0f} to {d.upper:+,.0f}"


def context(res) -> dict[str, Any]:
    """What the template needs from a results object (pair, areas or trend)."""
    ctx: dict[str, Any] = {"kind": res.kind, "warnings": res.warnings, "notes": res.notes,
                           "level_pct": f"{100 * res.level:.0f}", "charts": {}}
    if res.kind == "pair":
        ctx["title"] = f"Comparison: {res.a.label} and {res.b.label}"
        ctx.update(a=res.a.label, b=res.b.label)
        ctx["rows"] = [{"measure": d.measure, "scope": d.scope, "sentence": d.sentence,
                        "headline": d.scope == "all" and d.measure in HEADLINE,
                        "fig_a": _fig(d.a), "fig_b": _fig(d.b), "diff": _diff(d)[0],
                        "ci": _diff(d)[1], "p": _p(d.p_value), "method": d.method}
                       for d in res.differences]
        if any(d.measure == "recording_rate" for d in res.differences):
            ctx["charts"]["difference"] = svg(res.chart_spec())
    elif res.kind == "areas":
        ctx["title"] = f"Comparison of {len(res.areas)} areas: {res.measure.replace('_', ' ')}"
        ctx["rows"] = [{"rank": i, "area": a.area, "rate": _pct(a.estimate),
                        "ci": f"{_pct(a.lower)[:-1]}-{_pct(a.upper)}", "n": f"{a.n:,}",
                        "funnel": res.positions[a.area], "method": a.figure.method}
                       for i, a in enumerate(res.areas, start=1)]
        ctx["outside95"], ctx["outside998"] = res.outside(0.95), res.outside(0.998)
        ctx["pairs"] = [{"a": d.label_a, "b": d.label_b, "diff": _diff(d)[0],
                         "ci": _diff(d)[1], "p": _p(d.p_value), "q": _p(d.p_adjusted)}
                        for d in res.pairs or []]
        ctx["charts"]["funnel"] = svg(res.funnel_spec())
        ctx["charts"]["league"] = svg(res.league_spec())
    else:
        ctx["title"] = f"Trend over {len(res.audits)} audits: {res.measure.replace('_', ' ')}"
        ctx["rows"] = [{"audit": a.label, "rate": _pct(e.estimate),
                        "ci": f"{_pct(e.lower)[:-1]}-{_pct(e.upper)}", "n": f"{e.n:,}",
                        "method": e.method} for a, e in zip(res.audits, res.figures,
                                                            strict=True)]
        ctx["steps"] = [d.sentence for d in res.steps]
        ctx["charts"]["trend"] = svg(res.chart_spec())
    return ctx


def render(res) -> str:
    """The page's HTML for a comparison results object."""
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    return env.from_string(TEMPLATE).render(**context(res))


def write_page(res, out_dir: str | Path) -> dict[str, Path]:
    """Write ``compare.html`` and ``compare.json`` into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html, js = out / "compare.html", out / "compare.json"
    write_text(html, render(res))
    write_text(js, dumps(res.to_dict(), indent=2) + "\n")
    return {"html": html, "json": js}


__all__ = ["render", "write_page"]
