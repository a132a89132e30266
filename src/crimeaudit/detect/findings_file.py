"""``reports/findings.json`` and ``reports/charts.json``: the findings as a reader gets them.

Each finding is one line of ``findings.json``::

    {"rank": 3, "test": "breaks", "area": "Kent", "measure": "share of national Robbery",
     "date": "2013-12-31", "effect": {"value": 0.35, "lower": 0.12, "upper": 0.62,
     "level": 0.95, "name": "...", "scale": "relative"}, "p": 1e-5, "q": 0.001,
     "significant": true, "sentence": "...", "unit": "...", "method": "...", "n": 41,
     "chart": "9f2c...", "highlight": null, "details": {...}}

Charts are written once, in ``charts.json`` (``{"charts": {id: Vega-Lite spec}}``), and a
finding names its chart by ``id`` (a hash of the spec: many findings share one, e.g. every
unit of a funnel, with ``highlight`` naming the unit to draw in red). Before, each finding
embedded its chart: 12.9 MB of findings on the ONS file, 24 MB on the MPS files.

>>> from crimeaudit.model.figures import Finding
>>> chart = {"mark": "point", "data": {"values": [{"n": 1}]}}
>>> f = Finding("downgrading", "x: A", 0.1, 0.0, 0.2, "excess", 0.01, 0.04, "A.",
...             extra={"area": "A", "measure": "share", "rank": 1, "chart": chart,
...                    "highlight": "A", "rate": 0.3})
>>> ids = chart_ids([f])
>>> d = finding_json(f, ids)
>>> d["area"], d["effect"]["lower"], d["q"], d["chart"] == chart_id(chart), d["details"]
('A', 0.0, 0.04, True, {'rate': 0.3})
>>> back = finding_from_json(d, {d["chart"]: chart})
>>> back.extra["chart"] == chart and back.q_value == 0.04
True
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import IO, Any

from crimeaudit.detect.reading import ALPHA, area_of, date_of, measure_of
from crimeaudit.model.figures import Finding

#: Keys of ``extra`` that become top-level fields of a finding's JSON.
READER_KEYS = ("area", "measure", "date", "rank", "scale", "chart", "highlight", "significant")
CHARTS_FILE = "charts.json"


def chart_id(spec: dict[str, Any]) -> str:
    """A chart's id: the first 16 hex digits of the SHA-256 of its canonical JSON."""
    text = json.dumps(spec, sort_keys=True, default=str, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def chart_ids(findings: list[Finding]) -> dict[int, str]:
    """``id(spec) -> chart id`` for every chart the findings carry (each spec hashed once:
    findings of one funnel share one object)."""
    out: dict[int, str] = {}
    for f in findings:
        spec = f.extra.get("chart")
        if isinstance(spec, dict) and id(spec) not in out:
            out[id(spec)] = chart_id(spec)
    return out


def _short(x):
    """Floats to 6 significant digits (a reader's precision; the store keeps them whole)."""
    if isinstance(x, float) and math.isfinite(x):
        return float(f"{x:.6g}")
    if isinstance(x, dict):
        return {k: _short(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_short(v) for v in x]
    return x


def _finite(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def finding_json(f: Finding, ids: dict[int, str] | None = None) -> dict[str, Any]:
    """One finding in the reader's form (see the module notes)."""
    spec = f.extra.get("chart")
    cid = None
    if isinstance(spec, dict):
        cid = (ids or {}).get(id(spec)) or chart_id(spec)
    elif isinstance(spec, str):
        cid = spec
    q = f.q_value
    return {
        "rank": f.extra.get("rank"), "test": f.test, "area": area_of(f),
        "measure": measure_of(f), "date": date_of(f),
        "effect": {"value": f.effect, "lower": f.lower, "upper": f.upper, "level": f.level,
                   "name": f.effect_name, "scale": f.extra.get("scale")},
        "p": f.p_value, "q": q,
        "significant": bool(q is not None and math.isfinite(q) and q < ALPHA),
        "sentence": f.sentence, "unit": f.unit, "method": f.method, "n": f.n,
        "chart": cid, "highlight": f.extra.get("highlight"),
        "details": {k: v for k, v in f.extra.items() if k not in READER_KEYS},
    }


def finding_from_json(d: dict[str, Any], charts: dict[str, Any] | None = None) -> Finding:
    """A :class:`Finding` back from its JSON form (its chart from ``charts`` when given)."""
    eff = d.get("effect") or {}
    extra = dict(d.get("details") or {})
    for k in ("area", "measure", "date", "rank", "highlight", "significant"):
        if d.get(k) is not None:
            extra[k] = d[k]
    if eff.get("scale") is not None:
        extra["scale"] = eff["scale"]
    if d.get("chart") is not None:
        extra["chart"] = (charts or {}).get(d["chart"], d["chart"])

    def num(x):
        return math.nan if x is None else float(x)

    return Finding(
        test=d["test"], unit=d.get("unit", ""), effect=num(eff.get("value")),
        lower=num(eff.get("lower")), upper=num(eff.get("upper")),
        effect_name=eff.get("name", ""), p_value=num(d.get("p")), q_value=num(d.get("q")),
        sentence=d.get("sentence", ""), level=float(eff.get("level") or 0.95),
        method=d.get("method", ""), n=int(d.get("n") or 0), extra=extra)


def write_findings(findings: list[Finding], head: dict[str, Any], fp: IO[str], *,
                   strict: bool = True, ids: dict[int, str] | None = None) -> None:
    """``{"findings": [...], <head>}``: one finding a line, written as it goes; the head
    (summary, groups, ranking rule, exclusions) indented for people. Numbers are given to six
    significant digits (the store's table keeps them whole). ``strict``: non-finite numbers
    become ``null`` (standard JSON); otherwise they are written as ``NaN``."""
    options = {"allow_nan": False} if strict else {"default": str}
    ids = ids if ids is not None else chart_ids(findings)
    fp.write('{"findings": [')
    for i, f in enumerate(findings):
        d = _short(finding_json(f, ids))
        fp.write(("," if i else "") + "\n"
                 + json.dumps(_finite(d) if strict else d, sort_keys=True, default=str,
                              **{k: v for k, v in options.items() if k != "default"}))
    fp.write("\n]")
    for key, value in head.items():
        fp.write(f",\n{json.dumps(key)}: "
                 + json.dumps(_finite(value) if strict else value, indent=1, sort_keys=True,
                              default=str,
                              **{k: v for k, v in options.items() if k != "default"}))
    fp.write("}\n")


def write_charts(findings: list[Finding], fp: IO[str],
                 ids: dict[int, str] | None = None) -> int:
    """``{"charts": {id: spec}}``, each chart once; returns how many were written."""
    ids = ids if ids is not None else chart_ids(findings)
    seen: set[str] = set()
    fp.write('{"charts": {')
    for f in findings:
        spec = f.extra.get("chart")
        if not isinstance(spec, dict):
            continue
        cid = ids.get(id(spec)) or chart_id(spec)
        if cid in seen:
            continue
        fp.write(("," if seen else "") + "\n" + json.dumps(cid) + ": "
                 + json.dumps(_finite(spec), sort_keys=True, allow_nan=False, default=str))
        seen.add(cid)
    fp.write("\n}}\n")
    return len(seen)


def read_findings(path: str | Path, with_charts: bool = True) -> list[Finding]:
    """The findings of a ``findings.json`` (charts joined back from ``charts.json`` beside
    it when ``with_charts``), in rank order."""
    path = Path(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    charts = None
    chart_file = path.with_name(CHARTS_FILE)
    if with_charts and chart_file.exists():
        charts = json.loads(chart_file.read_text(encoding="utf-8")).get("charts", {})
    return [finding_from_json(d, charts) for d in doc.get("findings", [])]


__all__ = ["CHARTS_FILE", "chart_id", "chart_ids", "finding_from_json", "finding_json",
           "read_findings", "write_charts", "write_findings"]
