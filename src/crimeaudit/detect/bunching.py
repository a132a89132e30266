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

Only the values between 0.3 and 2 times the threshold leave the engine. The bootstrap draws
from *all* the offence's values in ascending order (the ones outside the range only count
where they fall), so it is the same whatever order the engine returns rows in.
"""

from __future__ import annotations

import math

import numpy as np
import statsmodels.api as sm
from pydantic import Field
from scipy import stats

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.charts import bar_chart
from crimeaudit.detect.inputs import DetectInput, PropertyValues
from crimeaudit.model.figures import Finding

TEST = "bunching"
# (offence code, threshold): configurable; defaults mirror a low-value shoplifting line.
DEFAULT_THRESHOLDS: tuple[tuple[str, float], ...] = (("46", 200.0),)
# A cubic in log value: the log density of a log-normal value is quadratic in log value, and
# one more degree lets real, skewed value distributions bend without the wiggles of a
# high-degree polynomial in the value itself.
DEGREE = 3
# The values modelled: from 0.3 to 2 times the threshold (wide enough to fit the smooth curve,
# narrow enough that one cubic describes it).
RANGE = (0.3, 2.0)


class BunchingSettings(DetectorSettings):
    """Thresholds to test and the minimum data for each."""

    thresholds: tuple[tuple[str, float], ...] = Field(DEFAULT_THRESHOLDS, description=(
        "(offence code, value threshold) pairs to test; codes absent from the data are "
        "skipped."))
    min_values_near_threshold: int = Field(200, ge=1, description=(
        "Crimes of the offence with a property value between 0.3 and 2 times the threshold "
        "needed to test it."))
    window_share: float = Field(0.1, gt=0, lt=0.7, description=(
        "Width of the window just below the threshold, as a share of the threshold."))
    bootstrap_resamples: int = Field(100, ge=0, description=(
        "Bootstrap resamples for the interval (0: no interval; the p-value does not need "
        "it)."))
    seed: int = Field(0, description="Seed of the bootstrap.")


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
    data: DetectInput, thresholds=None, width_share: float | None = None,
    n_boot: int | None = None, seed: int | None = None,
    settings: BunchingSettings | None = None, skips: Skips | None = None,
) -> list[Finding]:
    """Excess mass just below each threshold, per offence code with property values.

    ``thresholds``, ``width_share``, ``n_boot`` and ``seed`` override the settings
    (``thresholds``, ``window_share``, ``bootstrap_resamples``, ``seed``).
    """
    settings = settings or BunchingSettings()
    skips = skips if skips is not None else Skips()
    thresholds = settings.thresholds if thresholds is None else thresholds
    width_share = settings.window_share if width_share is None else width_share
    n_boot = settings.bootstrap_resamples if n_boot is None else n_boot
    seed = settings.seed if seed is None else seed
    if not data.crime_has("property_value"):
        return []
    out = []
    rng = np.random.default_rng(seed)
    for code, threshold in thresholds:
        low, high = threshold * RANGE[0], threshold * RANGE[1]
        values = data.property_values(code, low, high)
        v = values.near
        width = threshold * width_share
        if skips.fewer(settings, "min_values_near_threshold", v.size,
                       f"crimes with property values near {threshold:g} "
                       f"(from {low:g} to {high:g})", unit=f"offence={code}"):
            continue
        obs, mu, var, centre, counts = _fit_excess(v, threshold, width)
        if mu <= 0:
            skips.note(f"offence={code}: the smooth fit predicts no values below {threshold:g}")
            continue
        z = (obs - mu) / math.sqrt(var)
        p = float(stats.norm.sf(z))
        boots = []
        for _ in range(n_boot):
            o, m, *_ = _fit_excess(_resample(values, rng), threshold, width)
            if m > 0:
                boots.append(o / m - 1)
        lo, hi = (np.quantile(boots, [(1 - data.level) / 2, (1 + data.level) / 2])
                  if boots else (np.nan, np.nan))
        effect = obs / mu - 1
        rows = [{"value": float(x), "records": int(n)} for x, n in zip(centre, counts,
                                                                        strict=True)]
        known = data.codes.offences.get(code)
        name = f"{known.description.lower()} ({code})" if known else f"offence {code}"
        out.append(Finding(
            test=TEST, unit=f"offence={code}: threshold {threshold:g}", effect=effect,
            lower=float(lo), upper=float(hi),
            effect_name=f"excess mass in [{threshold - width:g}, {threshold:g})",
            p_value=p, q_value=float("nan"),
            sentence=(
                f"{obs:,.0f} records of {name} had a value just below {threshold:g} "
                f"against {mu:,.0f} expected from a smooth density: {100 * effect:+.0f}% "
                f"({100 * data.level:.0f}% bootstrap CI {100 * lo:+.0f}% to {100 * hi:+.0f}%)."),
            level=data.level,
            method=f"Poisson GLM of binned counts, cubic in log value plus round-number (50, 100) "
                   f"bin levels, fitted excluding ±{width:g}; "
                   f"quasi-Poisson z; bootstrap ({n_boot}) interval; one-sided",
            n=values.n,
            extra={"observed": obs, "expected": mu, "threshold": threshold,
                   "area": "all", "scale": "relative",
                   "measure": f"values of {name} recorded just below {threshold:g}",
                   "chart": bar_chart(rows, "value", "records",
                                      f"Values of {name} near {threshold:g}",
                                      x_type="quantitative")},
        ))
    return out


def _resample(values: PropertyValues, rng: np.random.Generator) -> np.ndarray:
    """One bootstrap resample of all the offence's values, kept only where it is modelled.

    The same draw as ``rng.choice(all_values_sorted, n)``: positions ``below`` to
    ``below + len(near)`` of the sorted values are the ones near the threshold, so only
    they need to be known.

    >>> v = np.array([1.0, 5.0, 6.0, 7.0, 90.0])  # sorted; 5, 6 and 7 are "near"
    >>> a, b = np.random.default_rng(3), np.random.default_rng(3)
    >>> full = a.choice(v, v.size)
    >>> near = _resample(PropertyValues(5, 1, v[1:4]), b)
    >>> sorted(near.tolist()) == sorted(x for x in full.tolist() if 5 <= x <= 7)
    True
    """
    idx = rng.integers(0, values.n, values.n) - values.below
    return values.near[idx[(idx >= 0) & (idx < values.near.size)]]


def thresholds_from(data: DetectInput, thresholds=DEFAULT_THRESHOLDS
                    ) -> tuple[tuple[str, float], ...]:
    """The thresholds whose offence codes are present in the data."""
    if data.crimes is None:
        return ()
    present = set(data.crime_mix()["offence_code"].dropna())
    return tuple(t for t in thresholds if t[0] in present)


class Bunching(Detector):
    """Test 5 (see the module notes)."""

    name = TEST
    question = "Are recorded property values heaped just below a classification threshold?"
    needs = (("property_values",),)
    Settings = BunchingSettings

    def run(self, data: DetectInput, settings: BunchingSettings,
            skips: Skips | None = None) -> list[Finding]:
        skips = skips if skips is not None else Skips()
        present = thresholds_from(data, settings.thresholds)
        for code, threshold in settings.thresholds:
            if (code, threshold) not in present:
                skips.note(f"offence={code}: no crimes of this offence (threshold "
                           f"{threshold:g} not tested)")
        return bunching_tests(data, present, settings=settings, skips=skips)
