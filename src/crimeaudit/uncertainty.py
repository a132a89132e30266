"""crimeaudit's one statistics module: intervals, quantiles and multiplicity control.

Where statsmodels has the method, it does the arithmetic and this module only fixes the edges
callers rely on (see ``docs/decisions.md``, "Statistics: statsmodels first"):

* :func:`wilson`, :func:`clopper_pearson` (statsmodels ``proportion_confint``, methods
  ``"wilson"`` and ``"beta"``), :func:`wilson_near_bounds` (Wilson with Brown, Cai and
  DasGupta's Poisson bounds within 3 records of 0 or 1, the audit figures' interval) and
  :func:`proportion_interval` choosing between them;
* :func:`bh_adjust`, Benjamini-Hochberg q-values (statsmodels ``multipletests``, ``"fdr_bh"``).

Quantiles (:func:`normal_quantile`, :func:`t_quantile`) come from scipy, and the PPI++ logit
interval (:func:`logit_interval`) and :func:`interval_for` are our own.

The intervals take a count ``x`` of successes out of ``n`` trials, or, for complex designs, an
*effective* count and sample size (``x = p * n_eff``, so fractional counts are allowed), and
work elementwise on numpy arrays so the coverage benchmark can evaluate thousands of samples at
once; scalars in give Python floats out. ``n = 0`` gives the whole range [0, 1], ``x = 0`` a
lower end of exactly 0 and ``x = n`` an upper end of exactly 1.

The published 2014 Greater Manchester figure, 265 of 388 recorded:

>>> lo, hi = wilson(265, 388, 0.95)
>>> f"{lo:.3f}-{hi:.3f}"
'0.635-0.727'
>>> lo, hi = clopper_pearson(265, 388, 0.95)
>>> f"{lo:.3f}-{hi:.3f}"
'0.634-0.729'
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

METHODS = ("wilson", "clopper-pearson")


# -- quantiles ---------------------------------------------------------------------------------


def normal_quantile(level: float) -> float:
    """Two-sided critical value of the standard normal for a ``level`` interval.

    >>> round(normal_quantile(0.95), 4)
    1.96
    """
    _check_level(level)
    return float(stats.norm.ppf(0.5 + level / 2))


def t_quantile(level: float, df):
    """Two-sided critical value of Student's t on ``df`` degrees of freedom (may be an array).

    >>> round(t_quantile(0.95, 10), 4)
    2.2281
    >>> t_quantile(0.95, [10, 1e9]).round(4).tolist()
    [2.2281, 1.96]
    """
    _check_level(level)
    return _out(np.asarray(stats.t.ppf(0.5 + level / 2, df)))


# -- proportions -------------------------------------------------------------------------------


def wilson(x, n, level: float = 0.95):
    """Wilson score interval for ``x`` successes in ``n`` trials (both may be arrays).

    Where ``n`` is 0 the interval is the whole range [0, 1].

    >>> wilson(0, 10)[0], wilson(10, 10)[1]
    (0.0, 1.0)
    >>> wilson(3, 0)
    (0.0, 1.0)
    >>> lo, hi = wilson([0, 2.5], [10, 10])
    >>> lo.round(4).tolist(), hi.round(4).tolist()
    ([0.0, 0.0809], [0.2775, 0.5578])
    """
    x, n, lo, hi = _confint(x, n, level, "wilson")
    # Exact endpoints where they are known: statsmodels' formula leaves rounding residue there.
    lo = np.where(x <= 0, 0.0, lo)
    hi = np.where((x >= n) & (n > 0), 1.0, hi)
    return _out(lo), _out(hi)


def wilson_near_bounds(x, n, level: float = 0.95):
    """Wilson's interval with Brown, Cai and DasGupta's modification near 0 and 1.

    Wilson's coverage dips well below its level when the true rate is within a few records of
    0 or 1 (Brown, Cai & DasGupta 2001, "Interval estimation for a binomial proportion",
    Statistical Science 16, section 4.1.1): with 1 to 3 records on the near side (1 or 2
    when ``n`` is 50 or less) its bound on that side is replaced by the Poisson bound
    ``chi2_{2x, alpha} / (2 n)`` (``alpha = 1 - level``), and by ``1 - chi2_{2(n - x),
    alpha} / (2 n)`` at the other end, where that is wider. Elsewhere it is Wilson's.
    Fractional (effective) counts take the rule as they are: an effective count of 2.4
    failures is "within 3 of 1". Measured through the pipeline, classification accuracy near
    99% in a domain of about 70 effective records covered 93.0% with Wilson and 97.3% with
    this (``benchmarks/results/pipeline_coverage.md``, section ``nearbounds``).

    >>> lo, hi = wilson_near_bounds(72, 75)  # 3 failures: the upper end is the Poisson one
    >>> round(hi, 4), round(wilson(72, 75)[1], 4)
    (0.9891, 0.9863)
    >>> wilson_near_bounds(30, 75) == wilson(30, 75)
    True
    """
    x, n = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(n, dtype=float))
    lo, hi = (np.asarray(v, float) for v in wilson(x, n, level))
    alpha = 1 - level
    # A count rounding pushed just outside [0, n] is the end itself; a subnormal one is 0.
    with np.errstate(invalid="ignore"):
        x = np.clip(x, 0.0, np.maximum(n, 0.0))
    x = np.where(x < np.finfo(float).tiny, 0.0, x)
    x = np.where(np.maximum(n, 0.0) - x < np.finfo(float).tiny, np.maximum(n, 0.0), x)
    near = np.where(n > 50, 3.0, 2.0)
    at, bound = _poisson_end(x, n, near, alpha)
    lo = np.where(at, np.minimum(lo, bound), lo)
    at, bound = _poisson_end(n - x, n, near, alpha)
    hi = np.where(at, np.maximum(hi, 1 - bound), hi)
    return _out(lo), _out(hi)


def _poisson_end(k, n, near, alpha: float):
    """Where ``0 < k <= near`` (records on one side of a rate ``k / n``): that mask, and the
    one-sided Poisson bound ``chi2_{2k, alpha} / (2 n)`` on the rate of that side."""
    at = (k > 0) & (k <= near) & (n > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = stats.chi2.ppf(alpha, 2 * np.where(at, k, 1.0)) / (2 * np.where(at, n, 1.0))
    return at, np.nan_to_num(bound)


def clopper_pearson(x, n, level: float = 0.95):
    """Clopper-Pearson ("exact") interval from the beta distribution; ``x`` may be fractional.

    >>> lo, hi = clopper_pearson(0, 20)
    >>> lo, round(hi, 4)
    (0.0, 0.1684)
    >>> clopper_pearson(20, 20)[1], clopper_pearson(3, 0)
    (1.0, (0.0, 1.0))
    """
    # scipy's beta quantile (Boost) raises OverflowError when the count, its first shape, is
    # subnormal (below ~2.2e-308). Such a count is 0 to double precision: round it to 0 first.
    x = np.asarray(x, dtype=float)
    x = np.where((x > 0) & (x < np.finfo(float).tiny), 0.0, x)
    x, n, lo, hi = _confint(x, n, level, "beta")
    # statsmodels pins the ends only where x / n is exactly 0 or 1; below 0 or above n (a count
    # that rounding pushed out of range) its beta quantiles are NaN, so pin them here as before.
    lo = np.where(x > 0, lo, 0.0)
    hi = np.where(x < n, hi, 1.0)
    lo = np.where(n > 0, np.nan_to_num(lo, nan=0.0), 0.0)
    hi = np.where(n > 0, np.nan_to_num(hi, nan=1.0), 1.0)
    return _out(lo), _out(hi)


def proportion_interval(x, n, level: float = 0.95, method: str = "wilson"):
    """The interval of ``method`` (``wilson``, which is :func:`wilson_near_bounds`, or
    ``clopper-pearson``): the one every audit figure takes.

    >>> [round(v, 3) for v in proportion_interval(265, 388, method="clopper-pearson")]
    [0.634, 0.729]
    """
    if method == "wilson":
        return wilson_near_bounds(x, n, level)
    if method == "clopper-pearson":
        return clopper_pearson(x, n, level)
    raise ValueError(f"unknown interval method {method!r}; use one of {', '.join(METHODS)}")


def _confint(x, n, level: float, method: str):
    """Broadcast ``x`` and ``n`` and call statsmodels where ``n > 0``; [0, 1] elsewhere.

    statsmodels divides by ``n`` with no guard (a warning and NaN or inf at ``n = 0``), so
    those entries never reach it. Fractional counts need no help: ``"wilson"`` is a closed
    formula and ``"beta"`` passes them straight to the beta quantiles, which take real shapes.
    """
    _check_level(level)
    x, n = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(n, dtype=float))
    lo, hi = np.zeros(x.shape), np.ones(x.shape)
    ok = n > 0
    if ok.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            lo[ok], hi[ok] = proportion_confint(x[ok], n[ok], alpha=1 - level, method=method)
    return x, n, lo, hi


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, not {level!r}")


def _out(a: np.ndarray):
    return float(a) if a.ndim == 0 else a


def logit_interval(p: float, se_logit: float, level: float = 0.95) -> tuple[float, float]:
    """An interval built on the logit scale, ``expit(logit(p) +/- z se)``.

    >>> [round(v, 3) for v in logit_interval(0.9, 0.2)]
    [0.859, 0.93]
    >>> logit_interval(1.0, 0.2)
    (1.0, 1.0)
    """
    z = normal_quantile(level)
    if not 0 < p < 1:
        return (0.0, 1.0) if p != p else (float(p), float(p))
    centre = np.log(p / (1 - p))
    lo, hi = centre - z * se_logit, centre + z * se_logit
    return float(1 / (1 + np.exp(-lo))), float(1 / (1 + np.exp(-hi)))


def interval_for(estimate, level: float) -> tuple[float, float]:
    """The interval of an :class:`~crimeaudit.model.Estimate` recomputed at another ``level``.

    Follows the estimate's method label: Wilson or Clopper-Pearson at the effective sample
    size, a logit-scale interval (PPI++) from ``se`` mapped to the logit scale by the delta
    method, else ``estimate +/- z se`` clipped to [0, 1] for proportions.

    >>> from crimeaudit.model import Estimate
    >>> e = Estimate("recording_rate", "all", 0.683, 0.635, 0.727, 0.95, "wilson", 388,
    ...              265, 388, se=0.0236, n_effective=388)
    >>> [round(x, 3) for x in interval_for(e, 0.95)]
    [0.635, 0.727]
    """
    method, p = estimate.method, estimate.estimate
    if estimate.measure == "unrecorded_per_year" or estimate.unit != "proportion":
        raise ValueError(f"the interval of {estimate.measure} is derived from another "
                         "estimate's interval; it is available only at its own level")
    neff = estimate.n_effective
    if ("wilson" in method or "clopper" in method) and neff:
        kind = "clopper-pearson" if "clopper" in method else "wilson"
        lo, hi = proportion_interval(p * neff, neff, level, kind)
        return float(lo), float(hi)
    if estimate.se is None:
        raise ValueError(f"{estimate.measure} [{estimate.scope}] has no standard error")
    if "logit" in method and 0 < p < 1:
        return logit_interval(p, estimate.se / (p * (1 - p)), level)
    z = normal_quantile(level)
    return float(max(p - z * estimate.se, 0.0)), float(min(p + z * estimate.se, 1.0))


# -- multiplicity ------------------------------------------------------------------------------


def bh_adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg q-values, in the order given; NaN p-values stay NaN and are not counted.

    A detection run tests hundreds of units (divisions, officers, series). Reporting raw
    p-values would flag about 5% of honest units by chance; the BH step-up procedure turns
    p-values into q-values so that, among findings with ``q < 0.05``, at most about 5% are
    expected to be false.

    >>> [round(q, 3) for q in bh_adjust([0.01, 0.04, 0.03, 0.5])]
    [0.04, 0.053, 0.053, 0.5]
    >>> [round(q, 3) for q in bh_adjust([0.01, float("nan"), 0.04])]
    [0.02, nan, 0.04]
    >>> bh_adjust([])
    []
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        # NaN is a test that could not be run. multipletests would count it in m and its
        # step-up minimum would turn every q-value into NaN, so it sees only the real p-values.
        q[ok] = multipletests(np.clip(p[ok], 0.0, 1.0), method="fdr_bh")[1]
    # Rounded to 12 places, as the hand-written version was, so stored q-values do not change.
    return [round(float(v), 12) if not math.isnan(v) else float("nan") for v in q]
