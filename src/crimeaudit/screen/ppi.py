"""Prediction-powered inference (PPI++) for the recording rate.

The audit reads a random sample of incidents and, for each, decides whether a crime should have
been recorded (``S``). Whether one *was* recorded (``R``) is known for every incident from the
linkage, and the screen gives every incident a prediction ``f`` = P(a crime should be recorded).
The recording rate is a ratio, ``theta = E[S R] / E[S]``; it solves ``E[S (R - theta)] = 0``,
so we estimate it as a PPI++ M-estimate (Angelopoulos, Duchi and Zrnic 2023):

    theta = (mean_n(S R) + lam (mean_N(f R) - mean_n(f R)))
            / (mean_n(S)   + lam (mean_N(f)   - mean_n(f)))

with the power-tuning ``lam`` that minimises the variance of the linearised estimating function
``(S - lam f)(R - theta)``. With ``lam = 0`` this is the classical ratio estimator from the sample
alone, so a useless model costs (almost) nothing; a good one shrinks the interval. Strata (the
audit's design) are estimated separately and combined with their population sizes.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> f = rng.uniform(size=20000); r = rng.uniform(size=20000) < 0.8
>>> s = rng.uniform(size=20000) < f
>>> idx = rng.choice(20000, 800, replace=False)
>>> res = ppi_ratio(s[idx], f[idx], r[idx], f, r)
>>> bool(res.lower < res.estimate < res.upper and res.half_width < 0.05)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

__all__ = ["PPIResult", "ppi_mean", "ppi_ratio", "ppi_stratified_ratio", "estimate_ppi"]


@dataclass
class PPIResult:
    """A PPI estimate with its interval, tuning and sizes."""

    estimate: float
    lower: float
    upper: float
    se: float
    lam: float | dict
    n: int
    N: int
    level: float
    extra: dict = field(default_factory=dict)

    @property
    def half_width(self) -> float:
        return (self.upper - self.lower) / 2


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def _arr(a) -> np.ndarray:
    return np.asarray(a, dtype=float)


def ppi_mean(y, yhat, yhat_unlabeled, level: float = 0.95, lam: float | None = None) -> PPIResult:
    """PPI++ mean with power-tuned ``lam`` (``ppi_py.ppi_mean_ci`` with ``lam=None``).

    >>> r = ppi_mean([1, 0, 1, 1], [0.9, 0.2, 0.8, 0.7], [0.9, 0.1, 0.6, 0.8, 0.3])
    >>> bool(0 < r.estimate < 1)
    True
    """
    y, f, fu = _arr(y), _arr(yhat), _arr(yhat_unlabeled)
    n, N = len(y), len(fu)
    if n < 2:
        raise ValueError("PPI needs at least two labelled records")
    if lam is None:
        # Minimises Var(mean_n(y - lam f)) + lam^2 Var(mean_N(f)) over lam (PPI++ eq. for means).
        fall = np.concatenate([f, fu])
        var_f = fall.var(ddof=1) if len(fall) > 1 else 0.0
        cov = np.cov(y, f, ddof=1)[0, 1]
        lam = float(np.clip(cov / ((1 + n / N) * var_f), 0, 1)) if var_f > 0 else 0.0
    est = fu.mean() * lam + (y - lam * f).mean()
    var = (y - lam * f).var(ddof=1) / n + lam**2 * fu.var(ddof=1) / N
    se = float(np.sqrt(var))
    z = _z(level)
    return PPIResult(float(est), float(est - z * se), float(est + z * se), se, lam, n, N, level)


def _ratio_parts(s, f, r, fu, ru, rp, lam):
    """Numerator and denominator (means) of the PPI ratio for one stratum."""
    num = (s * r).mean() + lam * ((fu * ru).mean() - (f * rp).mean())
    den = s.mean() + lam * (fu.mean() - f.mean())
    return num, den


def _ratio_var(s, f, r, fu, ru, rp, lam, theta):
    """Variance of the linearised numerator ``num - theta den`` (per-record means)."""
    g_lab = s * (r - theta) - lam * f * (rp - theta)
    g_unl = fu * (ru - theta)
    return g_lab.var(ddof=1) / len(s) + lam**2 * g_unl.var(ddof=1) / len(fu)


def _tune(s, f, r, fu, ru, rp, theta) -> float:
    """The lam minimising the linearised variance (PPI++ power tuning for the ratio)."""
    a = s * (r - theta)
    b = f * (rp - theta)
    bu = fu * (ru - theta)
    n, N = len(s), len(fu)
    vb = np.concatenate([b, bu]).var(ddof=1)
    if not np.isfinite(vb) or vb <= 0:
        return 0.0
    cov = np.cov(a, b, ddof=1)[0, 1]
    return float(np.clip(cov / ((1 + n / N) * vb), 0.0, 1.0))


def ppi_stratified_ratio(strata: dict, level: float = 0.95, lam: float | None = None) -> PPIResult:
    """Stratified PPI++ recording rate.

    ``strata`` maps a stratum name to ``(s, f, r, f_population, r_population[, r_linked])``:
    labels, predictions and recorded flags on the sample, predictions and recorded flags on
    every incident of the stratum. ``r_linked`` (default ``r``) is the recorded flag the
    population side uses (from linkage) on the sampled records, when the auditor's ``r``
    differs from it: the rectifier must compare like with like. Strata are combined with
    weights ``N_h`` (population sizes).
    """
    prepared = {}
    for h, parts in strata.items():
        s, f, r, fu, ru = map(_arr, parts[:5])
        rp = _arr(parts[5]) if len(parts) > 5 else r
        if len(s) < 2:
            raise ValueError(f"stratum {h!r}: PPI needs at least two audited records")
        prepared[h] = (s, f, r, fu, ru, rp)
    # Start from the classical ratio, tune lam at it, then re-estimate (one Newton-like pass).
    lams = {h: 0.0 for h in prepared}
    theta = _combine(prepared, lams)[0]
    for _ in range(2):
        lams = {h: (_tune(*p, theta) if lam is None else lam) for h, p in prepared.items()}
        theta = _combine(prepared, lams)[0]
    theta, den_total = _combine(prepared, lams)
    var = sum(len(p[3]) ** 2 * _ratio_var(*p, lams[h], theta) for h, p in prepared.items())
    se = float(np.sqrt(var)) / den_total if den_total > 0 else float("nan")
    z = _z(level)
    n = sum(len(p[0]) for p in prepared.values())
    N = sum(len(p[3]) for p in prepared.values())
    lam_out: float | dict = lams[next(iter(lams))] if len(lams) == 1 else lams
    return PPIResult(theta, max(0.0, theta - z * se), min(1.0, theta + z * se), se, lam_out, n, N,
                     level, {"strata": len(prepared)})


def _combine(prepared, lams):
    num_t = den_t = 0.0
    for h, p in prepared.items():
        num, den = _ratio_parts(*p, lams[h])
        num_t += len(p[3]) * num
        den_t += len(p[3]) * den
    return (num_t / den_t if den_t > 0 else float("nan")), den_t


def ppi_ratio(s, f, r, f_population, r_population, level: float = 0.95,
              lam: float | None = None) -> PPIResult:
    """Unstratified PPI++ recording rate (see the module docstring)."""
    return ppi_stratified_ratio({"all": (s, f, r, f_population, r_population)}, level, lam)


def estimate_ppi(project, level: float = 0.95, by=None, sample_id: str | None = None):
    """The recording rate by PPI++ from the audit's decisions and the screen's scores.

    Reads ``audit_samples`` / ``audit_decisions`` (incident records, ``should_record`` yes/no),
    ``screen_scores`` (``p_crime`` for every incident) and ``links`` (whether each incident has a
    crime record). Stratified by the sample's strata; ``by`` (e.g. ``"division"``) gives one
    estimate per group as well. Returns a list of :class:`crimeaudit.model.Estimate`.
    """
    from crimeaudit.screen.ppi_project import estimate_from_project

    return estimate_from_project(project, level=level, by=by, sample_id=sample_id)
