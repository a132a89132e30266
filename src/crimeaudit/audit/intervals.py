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
