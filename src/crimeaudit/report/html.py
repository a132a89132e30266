"""Render the figures document as one self-contained HTML inspection report.

CSS is inline and charts are inline SVG, so the file opens offline and can be mailed as is.
The body carries no time of its own: the same figures give the same bytes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jinja2

from crimeaudit.model.figures import dumps
from crimeaudit.report.charts import interval_svg, strand_order, svg_of
from crimeaudit.report.figures import collect, findings_of
from crimeaudit.report.headline import pct
from crimeaudit.report.public import by_area
from crimeaudit.report.sections import (
    delay_chart,
    is_strand_scope,
    scope_parts,
    strand_by_division,
)
from crimeaudit.store.files import write_text
from crimeaudit.store.project import project_verb

MEASURE_TITLES = {
    "recording_rate": "Recording rate",
    "timeliness": "Recorded within the time limit",
    "classification_accuracy": "Correctly classified",
    "cancellation_wrong": "Cancellations that were wrong",
    "victim_told": "Victims told of the cancellation",
    "unrecorded_per_year": "Unrecorded crimes a year",
}
STRAND_NAMES = {"all": "All crime", "violence": "Violence against the person",
                "sexual": "Sexual offences", "rape": "Rape", "robbery": "Robbery",
                "burglary": "Burglary", "theft": "Theft", "criminal_damage": "Criminal damage",
                "other": "Other crime"}
DESIGN_NAMES = {"srs": "simple random sample", "stratified": "stratified random sample",
                "pps": "unequal-probability sample (known inclusion probabilities)"}
# What each part of an estimator's method label means (labels from crimeaudit.audit).
METHOD_PARTS = {
    "wilson": "Wilson score interval (simple random sample)",
    "clopper-pearson": "Clopper-Pearson exact interval",
    "stratified-ratio": "combined ratio estimator over strata, design-weighted, with "
                        "finite-population correction",
    "ht-ratio": "Horvitz-Thompson ratio estimator with known inclusion probabilities and "
                "finite-population correction",
    "wilson-neff": "Wilson interval at the design's effective sample size",
    "clopper-pearson-neff": "Clopper-Pearson interval at the design's effective sample size",
    "linearised-t": "t interval on the linearised (Taylor) variance",
}
MAX_FINDING_CHARTS = 6


def _fmt(e: dict[str, Any], x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "unbounded"
    return pct(x) if e.get("unit", "proportion") == "proportion" else f"{x:,.0f}"


def _rows(doc: dict[str, Any], measure: str, strands: bool | None = True
          ) -> list[dict[str, Any]]:
    """A measure's figures as table rows: by strand (``strands``), by division and strand by
    division (``strands=False``), or every scope (``None``)."""
    rows = [e for e in doc["estimates"] if e["measure"] == measure
            and (strands is None or is_strand_scope(e["scope"]) == strands)]
    out = []
    for e in sorted(rows, key=lambda e: strand_order(e["scope"])):
        counts = ""
        if e.get("numerator") is not None and e.get("denominator") is not None:
            counts = f"{e['numerator']:g} of {e['denominator']:g}"
        parts = scope_parts(e["scope"])
        name = parts.get("division") or STRAND_NAMES.get(e["scope"], e["scope"])
        out.append(dict(e, name=name, division=parts.get("division"),
                        strand=parts.get("strand"),
                        est_text=_fmt(e, e["estimate"]),
                        ci_text=f"{_fmt(e, e['lower'])} to {_fmt(e, e['upper'])}",
                        counts=counts))
    return out


def _section(doc: dict[str, Any], measure: str) -> dict[str, Any]:
    rows = _rows(doc, measure)
    chart = ""
    if rows:
        chart = interval_svg(rows, MEASURE_TITLES[measure],
                             proportion=rows[0].get("unit", "proportion") == "proportion")
    return {"measure": measure, "title": MEASURE_TITLES[measure], "rows": rows, "chart": chart}


def _detection(doc: dict[str, Any], alpha: float = 0.05) -> dict[str, Any] | None:
    det = doc.get("detection")
    if det is None:
        return None
    findings = sorted(findings_of(doc), key=lambda f: (f.q_value, f.p_value, f.test, f.unit))
    significant = [f for f in findings if f.q_value < alpha]
    shown = []
    for i, f in enumerate(significant):
        chart = ""
        spec = f.extra.get("chart")
        if spec and i < MAX_FINDING_CHARTS:
            try:
                chart = svg_of(spec)
            except Exception as exc:  # a bad spec must not lose the report; say so instead
                chart = f"<p class='note'>Chart could not be drawn: {exc}</p>"
        shown.append({"f": f, "chart": chart})
    return {"summary": det.get("summary", {}), "significant": shown, "total": len(findings),
            "alpha": alpha}


def pvalue(p: float) -> str:
    """``= 0.032`` or ``< 0.001``: tiny p- and q-values are not printed as zero.

    >>> pvalue(0.0321), pvalue(1e-30)
    ('= 0.032', '< 0.001')
    """
    return "< 0.001" if p < 0.001 else f"= {p:.2g}"


def method_glossary(estimates: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Each method label used, explained part by part.

    >>> method_glossary([{"method": "stratified-ratio+wilson-neff"}])[0][1][:27]
    'combined ratio estimator ov'
    """
    out = {}
    for e in estimates:
        label = e.get("method", "")
        parts = [METHOD_PARTS.get(p) for p in label.split("+")]
        if label and all(parts):
            out[label] = "; ".join(parts)
    return sorted(out.items())


def _input_files(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Every input file once, by the path the run log gives, with its SHA-256."""
    seen: dict[str, str] = {}
    for r in runs:
        for i in r.get("inputs", []):
            seen.setdefault(i["path"], i["sha256"])
    return sorted(seen.items())


def _oracle_error_rate(runs: list[dict[str, Any]]) -> float | None:
    for r in reversed(runs):
        p = r.get("params") or {}
        if "oracle_error_rate" in p:
            return p["oracle_error_rate"]
    return None


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("crimeaudit.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["pct"] = pct
    env.filters["pvalue"] = pvalue
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, sort_keys=True, default=str)
    return env


def render(doc: dict[str, Any]) -> str:
    """The report's HTML for a figures document (the public-data report for a project with no
    audit)."""
    if doc.get("kind") == "public":
        return render_public(doc)
    sections = {m: _section(doc, m) for m in MEASURE_TITLES}
    rate_rows = {r["scope"]: r for r in sections["recording_rate"]["rows"]}
    unrec_rows = {r["scope"]: r for r in sections["unrecorded_per_year"]["rows"]}
    strand_table = [dict(r, unrecorded=unrec_rows.get(s)) for s, r in rate_rows.items()]
    return _env().get_template("report.html.j2").render(
        doc=doc, s=sections, strand_table=strand_table, detection=_detection(doc),
        oracle_error_rate=_oracle_error_rate(doc["runs"]), strand_names=STRAND_NAMES,
        project=doc["project"], input_files=_input_files(doc["runs"]),
        design_names=DESIGN_NAMES, glossary=method_glossary(doc["estimates"]),
        comparison=_comparison(doc), divisions=_divisions(doc),
        census=_census(doc), n100=doc.get("n100"), quality=doc.get("data_quality"),
    )


def _divisions(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The division section: each measure by division, unrecorded crimes by division, the
    recording rate's chart by division, and strand by division where the sample allows."""
    by_measure = {m: [r for r in _rows(doc, m, strands=False) if not r.get("strand")]
                  for m in MEASURE_TITLES}
    rates = by_measure["recording_rate"]
    if not rates:
        return None
    unrec = {r["division"]: r for r in by_measure["unrecorded_per_year"]}
    timely = {r["division"]: r for r in by_measure["timeliness"]}
    classed = {r["division"]: r for r in by_measure["classification_accuracy"]}
    table = [dict(r, unrecorded=unrec.get(r["division"]), timeliness=timely.get(r["division"]),
                  classification=classed.get(r["division"])) for r in rates]
    chart = interval_svg(rates, "Recording rate by division")
    grid = strand_by_division(_rows(doc, "recording_rate", strands=False), STRAND_NAMES)
    return {"table": table, "chart": chart, "grid": grid}


def _census(doc: dict[str, Any]) -> dict[str, Any] | None:
    census = doc.get("census_timeliness")
    if not census or not census["overall"]["timed"]:
        return census
    return dict(census, chart=delay_chart(census))


def render_public(doc: dict[str, Any]) -> str:
    """The public-data report: what was loaded, findings by area, release differences and
    methods; no audit sections."""
    det = doc.get("detection")
    areas = None
    if det is not None:
        areas = by_area(findings_of(doc), one_area=doc.get("area") is not None)
    return _env().get_template("public.html.j2").render(
        doc=doc, project=doc["project"], quality=doc.get("data_quality"), detection=det,
        areas=areas, releases=doc.get("releases"), input_files=_input_files(doc["runs"]),
        tables=doc.get("tables") or {})


def _comparison(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The comparison section's figures as text, and its chart as SVG."""
    sec = doc.get("comparison")
    if not sec:
        return None
    rows = []
    for d in sec.get("rows", []):
        prop = d.get("unit", "proportion") == "proportion"

        def fig(e: dict[str, Any], prop: bool = prop) -> str:
            if prop:
                return f"{pct(e['estimate'])} ({pct(e['lower'])[:-1]}-{pct(e['upper'])})"
            return f"{e['estimate']:,.0f}"

        k = 100 if prop else 1
        fmt = "{:+.1f}" if prop else "{:+,.0f}"
        rows.append({"measure": MEASURE_TITLES.get(d["measure"], d["measure"]),
                     "scope": STRAND_NAMES.get(d["scope"], d["scope"]),
                     "a": fig(d["estimate_a"]), "b": fig(d["estimate_b"]),
                     "diff": fmt.format(k * d["difference"]),
                     "ci": f"{fmt.format(k * d['lower'])} to {fmt.format(k * d['upper'])}",
                     "p": pvalue(d["p"]) if d.get("p") is not None else "n/a",
                     "method": d["method"]})
    chart = ""
    if sec.get("chart"):
        try:
            chart = svg_of(sec["chart"])
        except Exception as exc:  # a bad spec must not lose the report; say so instead
            chart = f"<p class='note'>Chart could not be drawn: {exc}</p>"
    return dict(sec, table=rows, chart_svg=chart)


@project_verb
def write_report(project, out: str | Path | None = None,
                 compare: tuple[str | Path, ...] | list[str | Path] = (),
                 area: str | None = None) -> dict[str, Path]:
    """``crimeaudit report DIR``: write ``report.html`` and ``report.json`` beside it.

    ``project`` is an open :class:`~crimeaudit.store.Project` or a project folder's path.
    Returns the two paths. Default: ``DIR/reports/report.html`` (``report-<area>.html`` for
    one area). ``compare`` names other audits' project folders for the comparison section
    (``--compare OTHER``); ``area`` writes one area's report (``--area NAME``). A project with
    no audit estimates gets the public-data report.
    """
    doc = collect(project, compare=compare, area=area)
    name = "report.html" if area is None else f"report-{_slug(area)}.html"
    html_path = Path(out) if out else project.folder("reports") / name
    html_path.parent.mkdir(parents=True, exist_ok=True)
    json_path = html_path.with_suffix(".json")
    # Never through a link planted in a shared project folder, never half-written.
    write_text(html_path, render(doc))
    write_text(json_path, dumps(_without_chart_specs(doc), indent=1) + "\n")
    return {"html": html_path, "json": json_path}


def _slug(text: str) -> str:
    """A file-name-safe form of an area's name.

    >>> _slug("Tower Hamlets 027B"), _slug("../x")
    ('tower-hamlets-027b', 'x')
    """
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "area"


def _without_chart_specs(doc: dict[str, Any]) -> dict[str, Any]:
    """Detection chart specs carry their data (megabytes); they stay in findings.json."""
    det = doc.get("detection")
    if not det:
        return doc
    findings = [dict(f, extra={k: v for k, v in (f.get("extra") or {}).items() if k != "chart"})
                for f in det.get("findings", [])]
    return dict(doc, detection=dict(det, findings=findings))
