"""Small Vega-Lite chart specs (the JSON Altair produces) for findings.

Specs are built as plain dicts, not through Altair objects: a run may attach charts to
thousands of findings and building Altair objects costs milliseconds each. The report renders
them offline with ``vl-convert`` (``altair.Chart.from_dict(spec)`` also accepts them).

>>> spec = line_chart([{"t": "2020-01", "n": 3}], x="t", y="n", title="Counts")
>>> spec["mark"]["type"], spec["encoding"]["y"]["field"]
('line', 'n')
"""

from __future__ import annotations

import math
from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


def _clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # JSON has no NaN: missing values become null so the spec stays valid JSON.
    out = []
    for r in rows:
        out.append(
            {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in r.items()
            }
        )
    return out


def line_chart(
    rows: list[dict[str, Any]],
    x: str,
    y: str,
    title: str,
    color: str | None = None,
    x_type: str = "temporal",
    rule_x: Any = None,
    y_title: str | None = None,
    gaps: list[Any] | None = None,
) -> dict[str, Any]:
    """A line chart of ``y`` over ``x``, optionally one line per ``color``, a marked date
    (``rule_x``, red) and periods the source did not publish (``gaps``, grey bands).

    >>> spec = line_chart([{"t": "2020-01", "n": 3}], "t", "n", "Counts", gaps=["2020-02"])
    >>> [layer["mark"]["type"] for layer in spec["layer"]]
    ['line', 'rule']
    """
    enc: dict[str, Any] = {
        "x": {"field": x, "type": x_type},
        "y": {"field": y, "type": "quantitative", "title": y_title or y},
    }
    if color:
        enc["color"] = {"field": color, "type": "nominal"}
    line = {"mark": {"type": "line", "point": len(rows) < 60}, "encoding": enc}
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "title": title,
        "data": {"values": _clean(rows)},
        "width": 420,
        "height": 220,
    }
    if rule_x is None and not gaps:
        spec.update(line)
        return spec
    layers = [line]
    if gaps:
        layers.append({
            "data": {"values": [{x: g, "note": "not published"} for g in gaps]},
            "mark": {"type": "rule", "strokeWidth": 6, "opacity": 0.3, "color": "grey"},
            "encoding": {"x": {"field": x, "type": x_type},
                         "tooltip": [{"field": x}, {"field": "note"}]},
        })
    if rule_x is not None:
        layers.append({
            "data": {"values": [{x: rule_x}]},
            "mark": {"type": "rule", "strokeDash": [4, 3], "color": "firebrick"},
            "encoding": {"x": {"field": x, "type": x_type}},
        })
    spec["layer"] = layers
    return spec


def bar_chart(
    rows: list[dict[str, Any]], x: str, y: str, title: str, color: str | None = None,
    x_type: str = "ordinal",
) -> dict[str, Any]:
    """Bars of ``y`` by ``x`` (e.g. share of events by day before the period end)."""
    enc: dict[str, Any] = {
        "x": {"field": x, "type": x_type},
        "y": {"field": y, "type": "quantitative"},
    }
    if color:
        enc["color"] = {"field": color, "type": "nominal"}
    return {
        "$schema": SCHEMA,
        "title": title,
        "data": {"values": _clean(rows)},
        "mark": "bar",
        "encoding": enc,
        "width": 420,
        "height": 220,
    }


def funnel_chart(
    units: list[dict[str, Any]], limits: list[dict[str, Any]], title: str,
    highlight: str = "",
) -> dict[str, Any]:
    """A funnel plot: one point per unit (``n``, ``rate``) and the control limits by ``n``.

    ``limits`` rows carry ``n``, ``lower95``, ``upper95``, ``lower998``, ``upper998`` and the
    pooled ``target``. The unit named by the chart's ``highlight`` parameter is drawn in red:
    one chart serves every unit of the funnel (:func:`highlighted` sets it for one of them).

    >>> spec = funnel_chart([{"unit": "A", "n": 10, "rate": 0.1}],
    ...                     [{"n": 10, "target": 0.1, "lower95": 0, "upper95": 0.3,
    ...                       "lower998": 0, "upper998": 0.4}], "Rate")
    >>> highlighted(spec, "A")["params"][0]["value"], spec["params"][0]["value"]
    ('A', '')
    """
    base_x = {"field": "n", "type": "quantitative", "scale": {"type": "log"},
              "title": "records (denominator)"}
    layers: list[dict[str, Any]] = []
    for col, dash in (("lower95", [4, 3]), ("upper95", [4, 3]), ("lower998", []),
                      ("upper998", []), ("target", [1, 0])):
        layers.append(
            {
                "data": {"values": _clean(limits)},
                "mark": {"type": "line", "strokeDash": dash, "color": "grey"},
                "encoding": {"x": base_x, "y": {"field": col, "type": "quantitative"}},
            }
        )
    layers.append(
        {
            "data": {"values": _clean(units)},
            "mark": {"type": "point", "filled": True},
            "encoding": {
                "x": base_x,
                "y": {"field": "rate", "type": "quantitative", "title": "rate"},
                "color": {
                    "condition": {"test": "datum.unit === highlight", "value": "firebrick"},
                    "value": "steelblue",
                },
                "tooltip": [{"field": "unit"}, {"field": "n"}, {"field": "rate"}],
            },
        }
    )
    return {"$schema": SCHEMA, "title": title, "params": [{"name": "highlight",
                                                            "value": highlight}],
            "layer": layers, "width": 420, "height": 260}


def highlighted(spec: dict[str, Any], unit: str | None) -> dict[str, Any]:
    """A copy of a shared chart with its ``highlight`` parameter set to ``unit``."""
    if not unit or not any(p.get("name") == "highlight" for p in spec.get("params", [])):
        return spec
    params = [dict(p, value=unit) if p.get("name") == "highlight" else p
              for p in spec["params"]]
    return {**spec, "params": params}
