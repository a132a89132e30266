"""Test 5, threshold bunching: recorded property values heaping just below a threshold.

Where a classification or a target depends on a value threshold, values can be nudged just
under it. The counterfactual is a smooth density: values are binned, and a Poisson regression
of the bin counts on a cubic in log value (a log-normal density is quadratic there), with one
level for bins holding a multiple of 100 and one for bins holding another multiple of 50 (round
sums people report), is fitted on the bins *outside* a window around the threshold; the excess
in the window just below the threshold is ``observed / predicted - 1``. The p-value comes from
the fitted prediction's variance plus Poisson (over-dispersed) noise; the interval from a
bootstrap of the records. The window is ``[threshold - width, threshold)``, so a heap *at* a
round threshold is not counted, but heaps at 150 or 190 would be.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from crimeaudit.detect.charts import bar_chart
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding

TEST = "bunching"
# (offence code, threshold): configurable; defaults mirror a low-value shoplifting line.
DEFAULT_THRESHOLDS: tuple[tuple[str, float], ...] = (("46", 200.0),)
# A cubic in log value: the log density of a log-normal value is quadratic in log value, and
# one more degree lets real, skewed value distributions bend without the wiggles of a
# high-degree polynomial in the value itself.
DEGREE = 3


def _design(centre: np.ndarray, threshold: float, width: float, degree: int) -> np.ndarray:
    """Smooth terms in log value, plus one level per kind of round-number bin."""
    u = np.log(centre / threshold)
    cols = [u**k for k in range(degree + 1)]
    # Bins holding a multiple of 100 (or of 50) collect round sums people report: a natural
    # heap, not bunching, which a smooth curve would otherwise chase.
    left, right = centre - width / 4, centre + width / 4

    def holds(step: float) -> np.ndarray:
        return np.ceil(left / step - 1e-9) * step < right - 1e-9

    cols += [holds(100.0).astype(float), (holds(50.0) & ~holds(100.0)).astype(float)]
    return np.column_stack(cols)


def _fit_excess(values: np.ndarray, threshold: float, width: float, degree: int = DEGREE):
    lo, hi = threshold * 0.3, threshold * 2.0
    v = values[(values >= lo) & (values < hi)]
    edges = np.arange(lo, hi + width / 2, width / 2)
    counts, _ = np.histogram(v, bins=edges)
    centre = (edges[:-1] + edges[1:]) / 2
    window = (centre >= threshold - width) & (centre < threshold)
    excl = (centre >= threshold - width) & (centre < threshold + width)
    X = _design(centre, threshold, width, degree)
    # Round-number levels with no bin left outside the excluded window carry no information.
    X = X[:, np.any(X[~excl] != 0, axis=0)]
    res = sm.GLM(counts[~excl], X[~excl], family=sm.families.Poisson()).fit(scale="X2")
    mu_bins = np.exp(X[window] @ res.params)
    mu = float(mu_bins.sum())
    # Variance of the window total: prediction (via the fit's covariance) + over-dispersed noise.
    grad = (X[window] * mu_bins[:, None]).sum(axis=0)
    var_pred = float(grad @ res.cov_params() @ grad)
    obs = float(counts[window].sum())
    return obs, mu, var_pred + max(res.scale, 1.0) * mu, centre, counts


def bunching_tests(
    data: DetectInput, thresholds=DEFAULT_THRESHOLDS, width_share: float = 0.1,
    n_boot: int = 100, seed: int = 0,
) -> list[Finding]:
    """Excess mass just below each threshold, per offence code with property values."""
    c = data.crimes
    if c is None or "property_value" not in c:
        return []
    out = []
    rng = np.random.default_rng(seed)
    for code, threshold in thresholds:
        v = c.loc[(c["offence_code"] == code) & c["property_value"].notna(), "property_value"]
        v = v.to_numpy(float)
        width = threshold * width_share
        if ((v >= threshold * 0.3) & (v < threshold * 2)).sum() < 200:
            continue
        obs, mu, var, centre, counts = _fit_excess(v, threshold, width)
        if mu <= 0:
            continue
        z = (obs - mu) / math.sqrt(var)
        p = float(stats.norm.sf(z))
        boots = []
        for _ in range(n_boot):
            o, m, *_ = _fit_excess(rng.choice(v, v.size), threshold, width)
            if m > 0:
                boots.append(o / m - 1)
        lo, hi = (np.quantile(boots, [(1 - data.level) / 2, (1 + data.level) / 2])
                  if boots else (np.nan, np.nan))
        effect = obs / mu - 1
        rows = [{"value": float(x), "records": int(n)} for x, n in zip(centre, counts,
                                                                        strict=True)]
        out.append(Finding(
            test=TEST, unit=f"offence={code}: threshold {threshold:g}", effect=effect,
            lower=float(lo), upper=float(hi),
            effect_name=f"excess mass in [{threshold - width:g}, {threshold:g})",
            p_value=p, q_value=float("nan"),
            sentence=(
                f"{obs:,.0f} offence {code} records had a value just below {threshold:g} "
                f"against {mu:,.0f} expected from a smooth density: {100 * effect:+.0f}% "
                f"({100 * data.level:.0f}% bootstrap CI {100 * lo:+.0f}% to {100 * hi:+.0f}%)."),
            level=data.level,
            method=f"Poisson GLM of binned counts, cubic in log value plus round-number (50, 100) "
                   f"bin levels, fitted excluding ±{width:g}; "
                   f"quasi-Poisson z; bootstrap ({n_boot}) interval; one-sided",
            n=int(v.size),
            extra={"observed": obs, "expected": mu, "threshold": threshold,
                   "chart": bar_chart(rows, "value", "records",
                                      f"Values of offence {code} near {threshold:g}",
                                      x_type="quantitative")},
        ))
    return out


def thresholds_from(data: DetectInput) -> tuple[tuple[str, float], ...]:
    """Default thresholds for offence codes present in the data."""
    if data.crimes is None:
        return ()
    present = set(pd.unique(data.crimes["offence_code"]))
    return tuple(t for t in DEFAULT_THRESHOLDS if t[0] in present)
