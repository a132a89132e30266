"""Confidence intervals for a proportion: Wilson score and Clopper-Pearson (exact).

Both take a count ``x`` of successes out of ``n`` trials, or, for complex designs, an
*effective* count and sample size (``x = p * n_eff``), and work elementwise on numpy arrays so
the coverage benchmark can evaluate thousands of samples at once.

The published 2014 Greater Manchester figure, 265 of 388 recorded:

>>> lo, hi = wilson(265, 388, 0.95)
>>> f"{lo:.3f}-{hi:.3f}"
'0.635-0.727'
>>> lo, hi = clopper_pearson(265, 388, 0.95)
>>> f"{lo:.3f}-{hi:.3f}"
'0.634-0.729'
"""

from __future__ import annotations

import numpy as np
from scipy import stats

METHODS = ("wilson", "clopper-pearson")


def normal_quantile(level: float) -> float:
    """Two-sided critical value of the standard normal for a ``level`` interval."""
    _check_level(level)
    return float(stats.norm.ppf(0.5 + level / 2))


def wilson(x, n, level: float = 0.95):
    """Wilson score interval for ``x`` successes in ``n`` trials (both may be arrays).

    Where ``n`` is 0 the interval is the whole range [0, 1].

    >>> wilson(0, 10)[0], round(float(wilson(10, 10)[1]), 6)
    (0.0, 1.0)
    """
    z = normal_quantile(level)
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, x / n, 0.0)
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
        hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    # Exact endpoints where they are known, free of rounding.
    lo = np.where(x <= 0, 0.0, lo)
    hi = np.where((x >= n) & (n > 0), 1.0, hi)
    return _out(lo), _out(hi)


def clopper_pearson(x, n, level: float = 0.95):
    """Clopper-Pearson ("exact") interval from the beta distribution; ``x`` may be fractional.

    >>> lo, hi = clopper_pearson(0, 20)
    >>> lo, round(float(hi), 4)
    (0.0, 0.1684)
    """
    _check_level(level)
    alpha = 1 - level
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(x > 0, stats.beta.ppf(alpha / 2, np.maximum(x, 1e-12), n - x + 1), 0.0)
        hi = np.where(
            x < n, stats.beta.ppf(1 - alpha / 2, x + 1, np.maximum(n - x, 1e-12)), 1.0
        )
    lo = np.where(n > 0, np.nan_to_num(lo, nan=0.0), 0.0)
    hi = np.where(n > 0, np.nan_to_num(hi, nan=1.0), 1.0)
    return _out(lo), _out(hi)


def proportion_interval(x, n, level: float = 0.95, method: str = "wilson"):
    """The interval of ``method`` (``wilson`` or ``clopper-pearson``)."""
    if method == "wilson":
        return wilson(x, n, level)
    if method == "clopper-pearson":
        return clopper_pearson(x, n, level)
    raise ValueError(f"unknown interval method {method!r}; use one of {', '.join(METHODS)}")


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, not {level!r}")


def _out(a: np.ndarray):
    return float(a) if a.ndim == 0 else a


def logit_interval(p: float, se_logit: float, level: float = 0.95) -> tuple[float, float]:
    """An interval built on the logit scale, ``expit(logit(p) +/- z se)``."""
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
