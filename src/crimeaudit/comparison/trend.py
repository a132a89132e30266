"""Several audits of one force over time: a trend with intervals, a test between consecutive
audits, a test of no change over them all, and a control chart.

* **Steps**: each audit against the one before (B minus A, see
  :mod:`crimeaudit.comparison.difference`), with its sentence.
* **No change at all**: Cochran's ``Q = sum w_i (y_i - ybar)^2`` with ``w_i = 1 / se_i^2``
  and ``ybar = sum w_i y_i / sum w_i``, referred to chi-squared on ``k - 1`` degrees of
  freedom (each audit's own design-based standard error).
* **p-chart** (a monthly programme, or any run of at least three audits): centre line
  ``pbar = sum y_i n_i / sum n_i`` and Shewhart 3-sigma limits
  ``pbar +/- 3 sqrt(pbar (1 - pbar) / n_i)``, ``n_i`` the audit's effective sample size; an
  audit outside its limits is flagged as a change worth looking into, not proof of one.

>>> from crimeaudit.comparison.audits import Audit
>>> from crimeaudit.model import Estimate
>>> from crimeaudit.uncertainty import wilson
>>> def month(m, x, n=120):
...     lo, hi = wilson(x, n)
...     e = Estimate("recording_rate", "all", x / n, lo, hi, 0.95, "wilson", n, x, n,
...                  se=(x / n * (1 - x / n) / n) ** 0.5, n_effective=n)
...     return Audit(f"2024-{m:02d}", (e,), design={"kind": "srs"},
...                  period_start=f"2024-{m:02d}-01", period_end=f"2024-{m:02d}-28")
>>> res = compare_trend([month(1, 100), month(2, 102), month(3, 99), month(4, 118)])
>>> [p["outside"] for p in res.control.points]
[False, False, False, True]
>>> res.steps[-1].significant
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crimeaudit.comparison.audits import Audit
from crimeaudit.comparison.definitions import definition_differences
from crimeaudit.comparison.difference import METHODS, Difference, rate_difference
from crimeaudit.comparison.errors import CompareError
from crimeaudit.comparison.sentences import change_sentence
from crimeaudit.model.figures import Estimate, dumps

#: A control chart needs at least this many audits.
MIN_CONTROL_POINTS = 3
SIGMAS = 3.0


@dataclass
class ControlChart:
    """A p-chart: centre line, and per audit its rate, limits and whether it is outside."""

    centre: float
    points: list[dict[str, Any]]
    sigmas: float = SIGMAS

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "p-chart", "centre": self.centre, "sigmas": self.sigmas,
                "points": self.points}


def _n_eff(e: Estimate) -> float:
    if e.n_effective:
        return float(e.n_effective)
    if e.se and 0 < e.estimate < 1:
        return e.estimate * (1 - e.estimate) / e.se ** 2
    return float(e.denominator or e.n)


def control_chart(labels: list[str], figures: list[Estimate]) -> ControlChart:
    """The p-chart of ``figures`` (see the module docstring)."""
    n = np.array([_n_eff(e) for e in figures])
    y = np.array([e.estimate for e in figures])
    centre = float((y * n).sum() / n.sum())
    points = []
    for label, e, m in zip(labels, figures, n, strict=True):
        sd = math.sqrt(centre * (1 - centre) / m) if m > 0 else float("inf")
        lo, hi = max(0.0, centre - SIGMAS * sd), min(1.0, centre + SIGMAS * sd)
        points.append({"audit": label, "rate": e.estimate, "n_effective": float(m),
                       "lower": lo, "upper": hi, "outside": bool(e.estimate < lo
                                                                 or e.estimate > hi)})
    return ControlChart(centre, points)


def homogeneity(figures: list[Estimate]) -> dict[str, float]:
    """Cochran's Q test that every audit has the same rate (see the module docstring)."""
    y = np.array([e.estimate for e in figures])
    se = np.array([e.se if e.se else math.sqrt(max(e.estimate * (1 - e.estimate), 1e-9)
                                               / _n_eff(e)) for e in figures])
    w = 1 / np.maximum(se, 1e-9) ** 2
    ybar = float((w * y).sum() / w.sum())
    q = float((w * (y - ybar) ** 2).sum())
    df = len(figures) - 1
    return {"q": q, "df": df, "p": float(stats.chi2.sf(q, df)), "pooled": ybar}


@dataclass
class TrendComparison:
    """Audits of one force in time order, each figure with its interval, the steps between
    consecutive audits, the test of no change over all of them and the p-chart."""

    audits: list[Audit]
    figures: list[Estimate]
    steps: list[Difference]
    homogeneity: dict[str, float]
    control: ControlChart | None
    measure: str = "recording_rate"
    scope: str = "all"
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kind: str = "trend"

    def to_frame(self) -> pd.DataFrame:
        """One row per audit: label, period, estimate, interval, n, and the control limits."""
        rows = []
        for i, (a, e) in enumerate(zip(self.audits, self.figures, strict=True)):
            c = self.control.points[i] if self.control else {}
            rows.append({"audit": a.label, "period_start": a.period_start,
                         "period_end": a.period_end, "estimate": e.estimate,
                         "lower": e.lower, "upper": e.upper, "n": e.n,
                         "method": e.method, "control_lower": c.get("lower"),
                         "control_upper": c.get("upper"), "outside": c.get("outside")})
        return pd.DataFrame(rows)

    def steps_frame(self) -> pd.DataFrame:
        rows = [{"a": d.label_a, "b": d.label_b, "difference": d.difference,
                 "lower": d.lower, "upper": d.upper, "p": d.p_value, "method": d.method,
                 "sentence": d.sentence} for d in self.steps]
        return pd.DataFrame(rows, columns=["a", "b", "difference", "lower", "upper", "p",
                                           "method", "sentence"])

    def summary(self) -> str:
        pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
        lines = [f"Trend of {self.measure} [{self.scope}] over {len(self.audits)} audits, "
                 f"{100 * self.level:.0f}% intervals"]
        for a, e in zip(self.audits, self.figures, strict=True):
            lines.append(f"  {a.label}: {pct(e.estimate)} ({pct(e.lower)}-{pct(e.upper)}), "
                         f"n={e.n:,}, {e.method}")
        lines += [d.sentence + f" (p {d.p_value:.3g}, {d.method})" for d in self.steps]
        h = self.homogeneity
        lines.append(f"No change over all audits: Q = {h['q']:.2f} on {h['df']} df, "
                     f"p = {h['p']:.3g}.")
        if self.control:
            out = [p["audit"] for p in self.control.points if p["outside"]]
            lines.append(f"p-chart: centre {pct(self.control.centre)}, 3-sigma limits; "
                         f"outside: {', '.join(out) or 'none'}.")
        lines += [f"WARNING: {w}" for w in self.warnings]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "measure": self.measure, "scope": self.scope,
                "level": self.level,
                "points": [dict(a.to_dict(), estimate=e.estimate, lower=e.lower,
                                upper=e.upper, n=e.n, method=e.method)
                           for a, e in zip(self.audits, self.figures, strict=True)],
                "steps": [d.to_dict() for d in self.steps],
                "homogeneity": self.homogeneity,
                "control": self.control.to_dict() if self.control else None,
                "warnings": list(self.warnings), "notes": list(self.notes)}

    def to_json(self) -> str:
        return dumps(self.to_dict(), indent=2)

    def chart_spec(self) -> dict:
        from crimeaudit.comparison.charts import trend_spec

        return trend_spec(self)


def compare_trend(audits: list[Audit], measure: str = "recording_rate", scope: str = "all",
                  level: float = 0.95) -> TrendComparison:
    """The trend of ``measure`` for ``scope`` over ``audits`` (taken in the order given)."""
    kept, figures, warnings = [], [], []
    for a in audits:
        e = a.get(measure, scope)
        if e is None or not e.n:
            warnings.append(f"{a.label} has no estimate of {measure} for {scope}: left out")
            continue
        if abs(e.level - level) > 1e-9:
            lo, hi = e.conf_int(level)
            e = e.with_(lower=lo, upper=hi, level=level)
        kept.append(a)
        figures.append(e)
    if len(kept) < 2:
        raise CompareError(f"a trend needs at least two audits with {measure} for {scope}")
    steps, notes = [], []
    for i in range(1, len(kept)):
        a, b, ea, eb = kept[i - 1], kept[i], figures[i - 1], figures[i]
        d = rate_difference(ea, eb, a.design_kind(ea), b.design_kind(eb), level, a.label,
                            b.label)
        steps.append(replace(d, sentence=change_sentence(ea, eb, d.difference, d.lower,
                                                         d.upper, level)))
        w, n = definition_differences(a, b)
        warnings += [x for x in w if x not in warnings]
        notes += [x for x in n if x not in notes and not x.startswith("periods:")]
    control = (control_chart([a.label for a in kept], figures)
               if len(kept) >= MIN_CONTROL_POINTS else None)
    notes.append("steps: each audit against the one before; " + "; ".join(
        f"{m}: {METHODS[m]}" for m in sorted({d.method for d in steps})))
    notes.append("no change over all audits: Cochran's Q on each audit's standard error")
    if control is None:
        notes.append(f"no p-chart: it needs at least {MIN_CONTROL_POINTS} audits")
    return TrendComparison(audits=kept, figures=figures, steps=steps,
                           homogeneity=homogeneity(figures), control=control, measure=measure,
                           scope=scope, level=level, warnings=warnings, notes=notes)


__all__ = ["ControlChart", "TrendComparison", "compare_trend", "control_chart", "homogeneity"]
