"""The difference between two independent audits' figures, its interval and a test of no change.

For a rate (a proportion) the difference is ``d = p_b - p_a`` (B minus A: "from A to B"):

* both samples simple random samples of records, with counts: **Newcombe's hybrid score
  interval** (Newcombe 1998, method 10) from the counts: MOVER on the two Wilson intervals,
  which are the audit figures' own (with Brown, Cai and DasGupta's Poisson bounds within 3
  records of 0 or 1); away from the ends it equals statsmodels'
  ``confint_proportions_2indep(method="newcomb")`` (:func:`newcombe`);
* otherwise (stratified or pps designs, PPI, published half-widths): **MOVER** (method of
  variance estimates recovery, Zou & Donner 2008) from each audit's own design-based interval
  at the comparison's level, ``L = d - sqrt((p_b - l_b)^2 + (u_a - p_a)^2)``,
  ``U = d + sqrt((u_b - p_b)^2 + (p_a - l_a)^2)``. With Wilson intervals it *is* Newcombe's
  interval; with symmetric intervals it is ``d +/- z sqrt(se_a^2 + se_b^2)``. Audit intervals
  of complex designs are Wilson intervals at the effective sample size, so the variance of
  each side is its design-based variance, on the scale of the Wilson interval, which stays
  inside [0, 1] near rates of 0 or 1.

The test of no change is the interval inverted (:func:`inverted_p`): p is ``2 Phi(-z*)``
where ``z*`` is the critical value at which the interval's edge reaches no change, so p < 0.05
exactly when the 95% interval excludes 0.

A count (unrecorded crimes a year) is compared as ``d = U_b - U_a`` with
``se = sqrt(se_a^2 + se_b^2)`` (each ``se`` from the delta method), a normal interval and test.

The published 2014 counts, Greater Manchester 265 of 388 and Hampshire 67 of 112:

>>> from crimeaudit.model import Estimate
>>> gm = Estimate("recording_rate", "all", 265 / 388, 0.635, 0.727, 0.95, "wilson", 388, 265, 388)
>>> ha = Estimate("recording_rate", "all", 67 / 112, 0.506, 0.683, 0.95, "wilson", 112, 67, 112)
>>> d = rate_difference(gm, ha, "srs", "srs")
>>> f"{100 * d.difference:.1f} ({100 * d.lower:.1f} to {100 * d.upper:.1f}), {d.method}"
'-8.5 (-18.7 to 1.4), newcombe'
>>> round(d.p_value, 3)
0.094
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats
from statsmodels.stats import proportion as sm_proportion

from crimeaudit.model.figures import Estimate, strict
from crimeaudit.uncertainty import normal_quantile, proportion_interval

#: The difference methods, as stated against every difference.
METHODS = {
    "newcombe": "Newcombe hybrid score interval from the counts (both simple random samples; "
                "Wilson with Poisson bounds near 0 and 1); p from the interval inverted",
    "mover": "MOVER (Zou-Donner) from each audit's design-based interval; "
             "p from the interval inverted",
    "normal": "normal interval and z test on sqrt(se_a^2 + se_b^2)",
}


@dataclass(frozen=True)
class Difference:
    """B minus A for one measure and scope, with its interval, p-value and method.

    ``p_value`` tests no change; ``p_adjusted`` is set when many differences are tested at
    once (pairs of areas). ``sentence`` is the quotable line, ``warnings`` what must be read
    beside it.
    """

    measure: str
    scope: str
    a: Estimate
    b: Estimate
    difference: float
    lower: float
    upper: float
    level: float
    p_value: float
    method: str
    se: float | None = None
    label_a: str = "A"
    label_b: str = "B"
    sentence: str = ""
    warnings: tuple[str, ...] = ()
    p_adjusted: float | None = None
    unit: str = "proportion"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def significant(self) -> bool:
        """The interval excludes no change."""
        return self.lower > 0 or self.upper < 0

    def summary(self) -> str:
        """One line: the difference, its interval, p and method (and the sentence)."""
        if self.unit == "proportion":
            d = (f"{100 * self.difference:+.1f} points ({100 * self.level:.0f}% CI "
                 f"{100 * self.lower:+.1f} to {100 * self.upper:+.1f})")
        else:
            d = (f"{self.difference:+,.0f} ({100 * self.level:.0f}% CI {self.lower:+,.0f} to "
                 f"{self.upper:+,.0f})")
        adj = "" if self.p_adjusted is None else f", adjusted p {_p(self.p_adjusted)}"
        head = (f"{self.measure} [{self.scope}] {self.label_a} -> {self.label_b}: {d}; "
                f"p {_p(self.p_value)}{adj}; {self.method}")
        lines = [head]
        if self.sentence:
            lines.append(f"  {self.sentence}")
        lines += [f"  WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain, strict-JSON-safe values: both figures, the difference and its test."""
        def side(e: Estimate) -> dict[str, Any]:
            return {"estimate": e.estimate, "lower": e.lower, "upper": e.upper, "n": e.n,
                    "numerator": e.numerator, "denominator": e.denominator, "se": e.se,
                    "method": e.method, "sample_id": e.sample_id}

        return strict({
            "measure": self.measure, "scope": self.scope, "a": self.label_a, "b": self.label_b,
            "estimate_a": side(self.a), "estimate_b": side(self.b),
            "difference": self.difference, "lower": self.lower, "upper": self.upper,
            "level": self.level, "se": self.se, "p": self.p_value,
            "p_adjusted": self.p_adjusted, "method": self.method, "unit": self.unit,
            "sentence": self.sentence, "warnings": list(self.warnings),
        })


def _p(p: float) -> str:
    if p != p:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def counts_of(e: Estimate, design_kind: str) -> tuple[int, int] | None:
    """``(recorded, should have been)`` when ``e`` is a plain share of a simple random
    sample's counts, else None (a weighted, model-assisted or published figure).

    >>> e = Estimate("recording_rate", "all", 0.75, 0.6, 0.85, 0.95, "wilson", 40, 30, 40)
    >>> counts_of(e, "srs"), counts_of(e, "stratified")
    ((30, 40), None)
    """
    if design_kind != "srs" or e.numerator is None or not e.denominator:
        return None
    if "ppi" in e.method or not math.isclose(e.estimate, e.numerator / e.denominator,
                                             rel_tol=1e-9, abs_tol=1e-12):
        return None
    return int(round(e.numerator)), int(round(e.denominator))


def newcombe(x_a: int, n_a: int, x_b: int, n_b: int, level: float = 0.95
             ) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``x_b / n_b - x_a / n_a`` (statsmodels).

    >>> [round(v, 4) for v in newcombe(67, 112, 265, 388)]
    [-0.0137, 0.1874]
    """
    lo, hi = sm_proportion.confint_proportions_2indep(x_b, n_b, x_a, n_a, method="newcomb",
                                        alpha=1 - level)
    return float(lo), float(hi)


def score_p(x_a: int, n_a: int, x_b: int, n_b: int) -> float:
    """Two-sided p-value of the score test of equal proportions (statsmodels).

    Where both shares are 0 or both are 1 the test has no variance: the shares are equal,
    so p is 1.

    >>> round(score_p(67, 112, 265, 388), 4), score_p(10, 10, 20, 20)
    (0.0946, 1.0)
    """
    pooled = (x_a + x_b) / (n_a + n_b)
    if pooled in (0.0, 1.0):
        return 1.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sm_proportion.test_proportions_2indep(x_b, n_b, x_a, n_a, method="score")
    return float(res.pvalue)


def mover(p_a: float, ci_a: tuple[float, float], p_b: float, ci_b: tuple[float, float]
          ) -> tuple[float, float]:
    """MOVER interval of ``p_b - p_a`` from each figure's own interval (Zou & Donner 2008).

    >>> [round(v, 3) for v in mover(0.5, (0.4, 0.6), 0.7, (0.62, 0.77))]
    [0.072, 0.322]
    """
    d = p_b - p_a
    lo = d - math.sqrt((p_b - ci_b[0]) ** 2 + (ci_a[1] - p_a) ** 2)
    hi = d + math.sqrt((ci_b[1] - p_b) ** 2 + (p_a - ci_a[0]) ** 2)
    return lo, hi


def z_p(d: float, se: float | None) -> float:
    """Two-sided normal p-value of ``d / se``; 1 when there is no difference and no variance.

    >>> round(z_p(0.0392, 0.02), 3), z_p(0.0, 0.0)
    (0.05, 1.0)
    """
    if se is None or not math.isfinite(se):
        return float("nan")
    if se <= 0:
        return 1.0 if d == 0 else 0.0
    return float(2 * stats.norm.sf(abs(d) / se))


def _se(e: Estimate) -> float | None:
    """The figure's standard error, or one read off its interval when it has none."""
    if e.se is not None and math.isfinite(e.se):
        return float(e.se)
    if math.isfinite(e.lower) and math.isfinite(e.upper):
        return (e.upper - e.lower) / (2 * normal_quantile(e.level))
    return None


def _interval(e: Estimate, level: float) -> tuple[float, float]:
    if e.n_effective is None and e.denominator and "wilson" in e.method:
        e = e.with_(n_effective=float(e.denominator))  # a plain share of its counts
    try:
        return e.conf_int(level)
    except ValueError:
        # No method to recompute it from: a symmetric interval from the standard error.
        se = _se(e) or 0.0
        z = normal_quantile(level)
        return max(e.estimate - z * se, 0.0), min(e.estimate + z * se, 1.0)


#: Beyond this many standard deviations the interval cannot be recomputed (the level rounds
#: to 1): the p-value is then below ``2 * Phi(-Z_MAX)`` and is taken from the z test.
Z_MAX = 8.0


def _side(e: Estimate, counts: tuple[int, int] | None, level: float) -> tuple[float, float]:
    """A figure's interval at ``level``: from its counts when it is a plain share (Newcombe's
    ingredient, the audit's Wilson interval), else recomputed by its own method."""
    if counts is not None:
        lo, hi = proportion_interval(counts[0], counts[1], level, "wilson")
        return float(lo), float(hi)
    return _interval(e, level)


def _mover_at(a: Estimate, b: Estimate, z: float, counts=(None, None)) -> tuple[float, float]:
    level = 1 - 2 * float(stats.norm.sf(z))
    return mover(a.estimate, _side(a, counts[0], level), b.estimate, _side(b, counts[1], level))


def inverted_p(a: Estimate, b: Estimate, d: float, se: float | None,
               counts=(None, None)) -> float:
    """The p-value of no change that agrees with the interval: ``2 * Phi(-z*)`` where ``z*``
    is the critical value at which the MOVER interval (Newcombe's, for two simple random
    samples) has no change at its edge. So p < 0.05 exactly when the 95% interval excludes no
    change, and the p-value of a pair of tiny or boundary samples is never smaller than its
    interval allows.

    >>> from crimeaudit.uncertainty import wilson
    >>> def rate(x, n):
    ...     lo, hi = wilson(x, n)
    ...     return Estimate("recording_rate", "all", x / n, lo, hi, 0.95, "wilson", n, x, n,
    ...                     n_effective=n)
    >>> a, b = rate(67, 112), rate(265, 388)
    >>> d = b.estimate - a.estimate
    >>> p = inverted_p(a, b, d, None)
    >>> lo, hi = mover(a.estimate, a.conf_int(1 - p), b.estimate, b.conf_int(1 - p))
    >>> round(p, 4), abs(lo) < 1e-6
    (0.0937, True)
    """
    if d == 0:
        return 1.0

    def edge(z: float) -> float:
        lo, hi = _mover_at(a, b, z, counts)
        return lo if d > 0 else -hi

    if edge(1e-6) <= 0:
        return 1.0
    if edge(Z_MAX) > 0:
        p = z_p(d, se)
        return min(p, float(2 * stats.norm.sf(Z_MAX))) if p == p else float(
            2 * stats.norm.sf(Z_MAX))
    z = optimize.brentq(edge, 1e-6, Z_MAX, xtol=1e-6)
    return float(2 * stats.norm.sf(z))


def rate_difference(a: Estimate, b: Estimate, design_a: str, design_b: str,
                    level: float = 0.95, label_a: str = "A", label_b: str = "B") -> Difference:
    """``b - a`` for two proportions from independent audits (see the module docstring)."""
    ca, cb = counts_of(a, design_a), counts_of(b, design_b)
    d = b.estimate - a.estimate
    se_a, se_b = _se(a), _se(b)
    se = math.sqrt(se_a ** 2 + se_b ** 2) if se_a is not None and se_b is not None else None
    # Newcombe's interval is MOVER on the two Wilson intervals of the counts; built from the
    # figures' own intervals (with their Poisson bounds near 0 and 1, see
    # crimeaudit.uncertainty.wilson_near_bounds) it agrees with the p-value inverted from them.
    counts = (ca, cb) if ca and cb else (None, None)
    lo, hi = mover(a.estimate, _side(a, counts[0], level), b.estimate,
                   _side(b, counts[1], level))
    method = "newcombe" if ca and cb else "mover"
    p = inverted_p(a, b, d, se, counts)
    return Difference(measure=a.measure, scope=a.scope, a=a, b=b, difference=d,
                      lower=float(lo), upper=float(hi), level=level, p_value=p,
                      method=method, se=se, label_a=label_a, label_b=label_b)


def count_difference(a: Estimate, b: Estimate, level: float = 0.95, label_a: str = "A",
                     label_b: str = "B") -> Difference | None:
    """``b - a`` for two counts (unrecorded crimes a year) from their standard errors; None
    when either has no finite standard error (a rate of 0 gives an unbounded count)."""
    if a.se is None or b.se is None or not (math.isfinite(a.se) and math.isfinite(b.se)):
        return None
    if not (math.isfinite(a.estimate) and math.isfinite(b.estimate)):
        return None
    d = b.estimate - a.estimate
    se = math.sqrt(a.se ** 2 + b.se ** 2)
    z = normal_quantile(level)
    return Difference(measure=a.measure, scope=a.scope, a=a, b=b, difference=d,
                      lower=d - z * se, upper=d + z * se, level=level, p_value=z_p(d, se),
                      method="normal", se=se, label_a=label_a, label_b=label_b,
                      unit=a.unit)


__all__ = ["METHODS", "Difference", "count_difference", "counts_of", "mover", "newcombe",
           "rate_difference", "score_p", "z_p"]
