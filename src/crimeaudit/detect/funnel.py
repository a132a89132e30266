"""Funnel-plot comparison of units' rates with over-dispersion (Spiegelhalter 2005).

Each unit (division, officer, strand) has ``events`` out of ``n`` records. Under the null it
shares the rate of the other units, give or take the ordinary spread between units. Binomial
noise alone understates that spread for real organisations, so large units would be flagged
for trivial differences; Spiegelhalter's remedy is to estimate the over-dispersion from the
units themselves, after winsorising the most extreme 10% at each end of the z-scores, and to
widen the limits by an additive random-effects variance ``tau2``.

Two refinements keep an outlying unit from hiding itself: the comparison rate and ``tau2`` are
estimated *leaving the tested unit out*, and the variance of that comparison rate is added.

>>> import pandas as pd
>>> units = pd.DataFrame({"unit": list("ABCDEFGH"), "events": [50, 52, 48, 51, 49, 50, 53, 110],
...                       "n": [1000] * 8})
>>> res = funnel_test(units)
>>> p = res.set_index("unit")["p_value"]
>>> bool(p["H"] < 0.001), bool(p["A"] > 0.2)
(True, True)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def unit_counts(frame: pd.DataFrame, key: str, flag: str) -> pd.DataFrame:
    """Events (rows where ``flag`` is true) and totals per ``key``, as funnel units.

    >>> unit_counts(pd.DataFrame({"d": ["a", "a", "b"], "x": [True, False, True]}), "d", "x")
      unit  events  n
    0    a       1  2
    1    b       1  1
    """
    units = frame.groupby(key).agg(events=(flag, "sum"), n=(flag, "size"))
    return units.reset_index().rename(columns={key: "unit"})


def _winsorised_phi(z: np.ndarray) -> float:
    if z.size < 3:
        return 1.0
    lo, hi = np.quantile(z, [0.1, 0.9])
    zw = np.clip(z, lo, hi)
    return float(np.mean(zw**2))


def _tau2(y: np.ndarray, n: np.ndarray, p0: float) -> float:
    """Additive over-dispersion (DerSimonian-Laird form on winsorised z), 0 if none."""
    k = y.size
    if k < 3 or p0 <= 0 or p0 >= 1:
        return 0.0
    s2 = p0 * (1 - p0) / n
    z = (y - p0) / np.sqrt(s2)
    phi = _winsorised_phi(z)
    if k * phi <= k - 1:
        return 0.0
    w = 1 / s2
    return float(max(0.0, (k * phi - (k - 1)) / (w.sum() - (w**2).sum() / w.sum())))


def _beta_binomial_p(x: float, m: float, p0: float, var: float, alternative: str) -> float:
    """Exact tail of the unit's count when its true rate varies around ``p0`` with ``var``.

    The rate is Beta with mean ``p0`` and variance ``var`` (the rest's sampling error plus the
    between-unit spread), so small counts get exact, not normal-approximation, p-values.
    """
    var = min(max(var, 1e-12), p0 * (1 - p0) * 0.999)
    conc = p0 * (1 - p0) / var - 1
    dist = stats.betabinom(int(m), p0 * conc, (1 - p0) * conc)
    upper = float(dist.sf(x - 1))
    lower = float(dist.cdf(x))
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    return min(1.0, 2 * min(upper, lower))


def funnel_test(
    units: pd.DataFrame,
    alternative: str = "greater",
    level: float = 0.95,
    min_n: int = 1,
) -> pd.DataFrame:
    """Test each unit's rate ``events / n`` against the rest, allowing for over-dispersion.

    ``units`` has columns ``unit``, ``events``, ``n``. Returns one row per unit with the rate,
    the comparison rate of the other units (``p0``), the difference and its interval (binomial
    error of both rates, without ``tau2``: the interval describes this unit), the z-score
    against the over-dispersed null and its p-value (``alternative`` = greater, less or
    two-sided).
    """
    df = units[units["n"] >= min_n].reset_index(drop=True).copy()
    y = (df["events"] / df["n"]).to_numpy(float)
    r = df["events"].to_numpy(float)
    n = df["n"].to_numpy(float)
    zcrit = stats.norm.ppf(0.5 + level / 2)
    rows = []
    for i in range(len(df)):
        keep = np.arange(len(df)) != i
        n_rest = n[keep].sum()
        if n_rest <= 0:
            rows.append((np.nan,) * 7)
            continue
        p0 = r[keep].sum() / n_rest
        tau2 = _tau2(y[keep], n[keep], p0)
        # Floor the binomial variance at one event so a zero rate still has a finite SE.
        pv = min(max(p0, 0.5 / n_rest), 1 - 0.5 / n_rest)
        s_unit = pv * (1 - pv) / n[i]
        s_rest = pv * (1 - pv) / n_rest
        sd_null = np.sqrt(s_unit + s_rest + tau2)
        z = (y[i] - p0) / sd_null
        p = _beta_binomial_p(r[i], n[i], pv, s_rest + tau2, alternative)
        se_diff = np.sqrt(max(y[i] * (1 - y[i]), pv * (1 - pv)) / n[i] + s_rest)
        d = y[i] - p0
        rows.append((p0, tau2, d, d - zcrit * se_diff, d + zcrit * se_diff, z, p))
    out = pd.DataFrame(rows, columns=["p0", "tau2", "diff", "lower", "upper", "z", "p_value"])
    df["rate"] = y
    return pd.concat([df, out], axis=1)


def funnel_limits(
    p0: float, tau2: float, n_min: float, n_max: float, points: int = 40
) -> list[dict[str, float]]:
    """Control limits (95% and 99.8%) over a range of denominators, for the funnel chart."""
    ns = np.unique(np.geomspace(max(n_min, 1.0), max(n_max, n_min + 1.0), points))
    out = []
    for m in ns:
        sd = np.sqrt(p0 * (1 - p0) / m + tau2)
        out.append(
            {
                "n": float(m),
                "target": p0,
                "lower95": max(0.0, p0 - 1.96 * sd),
                "upper95": min(1.0, p0 + 1.96 * sd),
                "lower998": max(0.0, p0 - 3.09 * sd),
                "upper998": min(1.0, p0 + 3.09 * sd),
            }
        )
    return out
