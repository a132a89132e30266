"""Two audits compared figure by figure: :func:`compare_pair` and its results object.

For every measure and scope both audits estimated (all crime, each strand, each division), the
two figures, the difference B minus A with its interval and a test of no change (see
:mod:`crimeaudit.comparison.difference`), and the sentence to quote; unrecorded crimes a year
the same way. What the two audits measured differently is listed in ``warnings``.

>>> from crimeaudit.comparison.audits import Audit
>>> from crimeaudit.model import Estimate
>>> from crimeaudit.uncertainty import wilson
>>> def audit(label, x, n):
...     lo, hi = wilson(x, n)
...     e = Estimate("recording_rate", "all", x / n, lo, hi, 0.95, "wilson", n, x, n)
...     return Audit(label, (e,), design={"kind": "srs"})
>>> res = compare_pair(audit("Kent 2017", 1254, 1500), audit("Kent 2018", 1449, 1500))
>>> print(res.get("recording_rate").sentence)  # doctest: +NORMALIZE_WHITESPACE
The recording rate rose from 83.6% (81.6-85.4) to 96.6% (95.6-97.4); a rise of 13.0 points
(95% CI 10.9 to 15.1).
>>> res.to_frame()[["measure", "difference", "method"]].round(3).values.tolist()
[['recording_rate', 0.13, 'newcombe']]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from crimeaudit.comparison.audits import Audit
from crimeaudit.comparison.definitions import definition_differences
from crimeaudit.comparison.difference import (
    METHODS,
    Difference,
    count_difference,
    rate_difference,
)
from crimeaudit.comparison.sentences import change_sentence
from crimeaudit.model.figures import dumps

MEASURE_ORDER = ("recording_rate", "unrecorded_per_year", "timeliness",
                 "classification_accuracy", "cancellation_wrong", "victim_told")
SCOPE_ORDER = ("all", "violence", "sexual", "rape", "robbery", "burglary", "theft",
               "criminal_damage", "other")

FRAME_COLUMNS = ("measure", "scope", "a", "b", "estimate_a", "lower_a", "upper_a", "n_a",
                 "estimate_b", "lower_b", "upper_b", "n_b", "difference", "lower", "upper",
                 "level", "p", "method", "sentence", "warnings")


def _order(key: tuple[str, str]) -> tuple:
    m, s = key
    mi = MEASURE_ORDER.index(m) if m in MEASURE_ORDER else len(MEASURE_ORDER)
    division = s.startswith("division=")
    si = SCOPE_ORDER.index(s) if s in SCOPE_ORDER else len(SCOPE_ORDER)
    return (mi, division, si, s)


@dataclass
class AuditComparison:
    """Audit A against audit B: one :class:`~crimeaudit.comparison.difference.Difference` per
    shared measure and scope (B minus A), with the definitions' warnings and notes."""

    a: Audit
    b: Audit
    differences: list[Difference]
    level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    between_areas: bool = False
    kind: str = "pair"

    def get(self, measure: str, scope: str = "all") -> Difference:
        for d in self.differences:
            if d.measure == measure and d.scope == scope:
                return d
        raise KeyError(f"no comparison of {measure} for {scope}")

    @property
    def sentences(self) -> list[str]:
        return [d.sentence for d in self.differences]

    def summary(self) -> str:
        """The comparison as text: what is compared, every difference, warnings, notes."""
        lines = [f"Comparison of {self.a.label} (A) with {self.b.label} (B): differences B "
                 f"minus A, {100 * self.level:.0f}% intervals"]
        lines += [d.summary() for d in self.differences]
        lines += [f"WARNING: {w}" for w in self.warnings]
        lines += [f"Note: {n}" for n in self.notes]
        used = sorted({d.method for d in self.differences})
        lines += [f"Method {m}: {METHODS[m]}." for m in used]
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row per measure and scope: both figures, the difference, p, method, sentence."""
        rows = []
        for d in self.differences:
            rows.append({
                "measure": d.measure, "scope": d.scope, "a": d.label_a, "b": d.label_b,
                "estimate_a": d.a.estimate, "lower_a": d.a.lower, "upper_a": d.a.upper,
                "n_a": d.a.n, "estimate_b": d.b.estimate, "lower_b": d.b.lower,
                "upper_b": d.b.upper, "n_b": d.b.n, "difference": d.difference,
                "lower": d.lower, "upper": d.upper, "level": d.level, "p": d.p_value,
                "method": d.method, "sentence": d.sentence,
                "warnings": "; ".join(d.warnings)})
        return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "level": self.level, "a": self.a.to_dict(),
                "b": self.b.to_dict(), "between_areas": self.between_areas,
                "differences": [d.to_dict() for d in self.differences],
                "warnings": list(self.warnings), "notes": list(self.notes),
                "methods": {m: METHODS[m] for m in sorted({d.method for d in self.differences})}}

    def to_json(self) -> str:
        return dumps(self.to_dict(), indent=2)

    def chart_spec(self, measure: str = "recording_rate") -> dict:
        """Vega-Lite spec: the difference and its interval per scope, with a line at zero."""
        from crimeaudit.comparison.charts import difference_spec

        return difference_spec([d for d in self.differences if d.measure == measure],
                               title=f"{self.b.label} minus {self.a.label}")


def _estimate_warnings(d_a, d_b, label_a: str, label_b: str) -> tuple[str, ...]:
    out = [f"{label_a}: {w}" for w in d_a.warnings]
    out += [f"{label_b}: {w}" for w in d_b.warnings]
    return tuple(dict.fromkeys(out))


def compare_pair(a: Audit, b: Audit, level: float = 0.95,
                 measures: tuple[str, ...] | list[str] | None = None,
                 scopes: tuple[str, ...] | list[str] | None = None,
                 between_areas: bool = False) -> AuditComparison:
    """Compare audit ``a`` with audit ``b`` on every measure and scope both estimated.

    ``measures`` and ``scopes`` keep only those; ``between_areas`` words the sentences as a
    comparison of two areas instead of a change over time.
    """
    keys_a = {(e.measure, e.scope): e for e in a.estimates}
    keys_b = {(e.measure, e.scope): e for e in b.estimates}
    shared = sorted(set(keys_a) & set(keys_b), key=_order)
    if measures:
        shared = [k for k in shared if k[0] in measures]
    if scopes:
        shared = [k for k in shared if k[1] in scopes]
    between = (a.label, b.label) if between_areas else None
    out: list[Difference] = []
    for key in shared:
        ea, eb = keys_a[key], keys_b[key]
        if ea.unit == "proportion":
            if not ea.n or not eb.n:
                continue
            d = rate_difference(ea, eb, a.design_kind(ea), b.design_kind(eb), level,
                                a.label, b.label)
        else:
            d = count_difference(ea, eb, level, a.label, b.label)
            if d is None:
                continue
        sentence = change_sentence(ea, eb, d.difference, d.lower, d.upper, level, between)
        out.append(replace(d, sentence=sentence,
                           warnings=_estimate_warnings(ea, eb, a.label, b.label)))
    warnings, notes = definition_differences(a, b)
    return AuditComparison(a=a, b=b, differences=out, level=level, warnings=warnings,
                           notes=notes, between_areas=between_areas)


__all__ = ["AuditComparison", "compare_pair"]
