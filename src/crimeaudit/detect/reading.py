"""What a reader sees of a finding: its area, measure and date, its rank, and its verdict.

Every detector puts into a finding's ``extra`` the ``area`` it is about (a force, borough,
division; ``all`` for the whole force or source), the ``measure`` in words (names, never
codes), the ``date`` of a change over time, and the ``scale`` of its effect (``ratio``: a rate
or odds ratio; ``relative``: a relative change such as +35%; ``difference``: a difference of
proportions, with the ``rate`` and ``comparison_rate`` it comes from).

**The ranking rule** (:data:`RANKING_RULE`). Findings with q < 0.05 come first, ordered by
the *effect shrunk by the evidence*: ``|log effect| x (1 - z(0.05) / z(q))``, where ``log
effect`` is the effect on a common relative scale (log rate ratio; log of 1 + a relative
change; the log odds ratio of a unit's rate against its comparison rate) and ``z(x)`` the
standard normal quantile of ``1 - x``. It is the lower end of a one-sided interval whose
width the finding's own q-value implies: a large effect barely significant and a tiny effect
overwhelmingly significant both rank below a large, clear one. The rest follow in order of q.
The rank never changes a p- or q-value.

>>> from crimeaudit.model.figures import Finding
>>> big = Finding("breaks", "Kent: robbery", 0.35, 0.1, 0.6, "step", 1e-6, 1e-4, "Step.",
...               extra={"scale": "relative", "area": "Kent"})
>>> tiny = Finding("breaks", "Essex: robbery", 0.02, 0.01, 0.03, "step", 1e-12, 1e-10,
...                "Step.", extra={"scale": "relative", "area": "Essex"})
>>> weak = Finding("breaks", "Surrey: robbery", 0.9, -0.1, 2.0, "step", 0.2, 0.43, "Step.",
...                extra={"scale": "relative", "area": "Surrey", "date": "2013-12-31"})
>>> [f.extra["area"] for f in rank_findings([tiny, weak, big])]
['Kent', 'Essex', 'Surrey']
>>> verdict(weak, 1039)
' Not significant once all 1,039 tests of the run count (q = 0.43): not evidence of a change.'
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from scipy import stats

from crimeaudit.detect.errors import DetectError
from crimeaudit.model.figures import Finding

ALPHA = 0.05
ALL = "all"
RANKING_RULE = (
    "Findings with q < 0.05 first, ordered by the effect shrunk by the evidence, "
    "|log effect| x (1 - z(0.05)/z(q)) (log rate ratio, log(1 + relative change), or log "
    "odds ratio of a unit's rate against its comparison rate; z(x) the normal quantile of "
    "1 - x): the lower end of a one-sided interval whose width the q-value implies. The "
    "rest in order of q. Ranks never change p or q.")


def scope_fields(unit: str, what: str, strands: Mapping[str, str] | None = None
                 ) -> dict[str, str]:
    """Area and measure of a record-level unit (``all``, ``strand=violence``,
    ``division=North``, ``strand=violence, division=North``).

    >>> scope_fields("strand=violence, division=North", "cancellations",
    ...              {"violence": "Violence against the person"})
    {'area': 'North', 'measure': 'cancellations, violence against the person'}
    """
    parts = dict(p.split("=", 1) for p in unit.split(", ") if "=" in p)
    measure = what
    if "strand" in parts:
        text = (strands or {}).get(parts["strand"], parts["strand"])
        text = text[0].lower() + text[1:] if text[:2] != text[:2].upper() else text
        measure = f"{what}, {text}"
    return {"area": parts.get("division", ALL), "measure": measure}


def area_of(f: Finding) -> str:
    return str(f.extra.get("area", ALL))


def measure_of(f: Finding) -> str:
    return str(f.extra.get("measure") or f"{f.effect_name}: {f.unit}")


def date_of(f: Finding) -> str | None:
    d = f.extra.get("date")
    return None if d is None else str(d)


def _logit(p: float, n: float) -> float:
    eps = 0.5 / max(n, 1.0)
    p = min(max(p, eps), 1 - eps)
    return math.log(p / (1 - p))


def log_effect(f: Finding) -> float:
    """The effect on a common relative scale (see the module notes); NaN when unknown."""
    scale = f.extra.get("scale")
    e = f.effect
    if e is None or not math.isfinite(e):
        return math.nan
    if scale == "ratio":
        return math.log(e) if e > 0 else math.nan
    if scale == "relative":
        return math.log1p(e) if e > -1 else math.nan
    if scale == "difference":
        rate, base = f.extra.get("rate"), f.extra.get("comparison_rate")
        if rate is None or base is None:
            return math.nan
        return _logit(rate, f.n) - _logit(base, f.n)
    return math.nan


def strength(f: Finding, alpha: float = ALPHA) -> float:
    """The effect shrunk by the evidence (0 unless q < ``alpha``); see the module notes."""
    q = f.q_value
    if q is None or not math.isfinite(q) or q >= alpha:
        return 0.0
    size = abs(log_effect(f))
    if not math.isfinite(size):
        size = 0.0
    z = float(stats.norm.isf(max(q, 1e-300)))
    return size * max(0.0, 1 - float(stats.norm.isf(alpha)) / z)


def rank_findings(findings: list[Finding], alpha: float = ALPHA) -> list[Finding]:
    """Findings sorted by :data:`RANKING_RULE`, each with ``extra["rank"]`` (1 = first)."""
    def key(f: Finding):
        q = f.q_value if f.q_value is not None and math.isfinite(f.q_value) else 2.0
        p = f.p_value if f.p_value is not None and math.isfinite(f.p_value) else 2.0
        return (not q < alpha, -strength(f, alpha), q, p, f.test, f.unit)

    ordered = sorted(findings, key=key)
    return [replace(f, extra={**f.extra, "rank": i}) for i, f in enumerate(ordered, start=1)]


def q_words(q: float) -> str:
    """``q = 0.43``, ``q = 0.0012``, ``q < 0.0001``: a q-value as a sentence gives it."""
    return "q < 0.0001" if q < 1e-4 else f"q = {q:.2g}"


def verdict(f: Finding, n_tests: int, alpha: float = ALPHA) -> str:
    """The sentence's last words: significant or not once every test of the run counts."""
    q = f.q_value
    if q is None or not math.isfinite(q):
        return " No q-value: the test gave no p-value."
    tests = f"all {n_tests:,} tests of the run"
    if q < alpha:
        return f" Significant after allowing for {tests} ({q_words(q)})."
    what = "a change" if date_of(f) is not None else "a difference"
    return f" Not significant once {tests} count ({q_words(q)}): not evidence of {what}."


def matches_area(area: str, name: str) -> bool:
    """``name`` is the area (case ignored), or the start of a word-boundary prefix of it
    (``Tower Hamlets`` matches ``Tower Hamlets 027B``)."""
    a, n = area.casefold().strip(), name.casefold().strip()
    return a == n or a.startswith(n + " ") or a.startswith(n + ",")


def select_area(findings: list[Finding], name: str) -> list[Finding]:
    """The findings of one area (see :func:`matches_area`), in rank order; an unknown name is
    a :class:`DetectError` naming the closest areas."""
    chosen = [f for f in findings if matches_area(area_of(f), name)]
    if chosen:
        return chosen
    areas = sorted({area_of(f) for f in findings} - {ALL})
    close = difflib.get_close_matches(name, areas, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else (
        f"; areas: {', '.join(areas[:8])}{', ...' if len(areas) > 8 else ''}" if areas else
        "; no finding of this run is about an area")
    raise DetectError(f"--area {name!r}: no finding is about that area{hint}")


def groups(findings: list[Finding], alpha: float = ALPHA) -> list[dict[str, Any]]:
    """Findings grouped by area and test, in the order of each group's best rank."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for f in findings:
        g = out.setdefault((area_of(f), f.test), {
            "area": area_of(f), "test": f.test, "findings": 0, "significant": 0,
            "best_rank": f.extra.get("rank")})
        g["findings"] += 1
        g["significant"] += int(f.q_value < alpha) if math.isfinite(f.q_value) else 0
        r = f.extra.get("rank")
        if r is not None and (g["best_rank"] is None or r < g["best_rank"]):
            g["best_rank"] = r
    return sorted(out.values(), key=lambda g: (g["best_rank"] is None, g["best_rank"] or 0))


__all__ = ["ALL", "RANKING_RULE", "area_of", "date_of", "groups", "log_effect",
           "matches_area", "measure_of", "rank_findings", "scope_fields", "select_area",
           "strength", "verdict"]
