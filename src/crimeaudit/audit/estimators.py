"""Design-based ratio estimators of a rate and their intervals.

Every audit measure is a ratio ``R = Y / Z`` of two population totals: ``z`` marks the records in
the measure's denominator (e.g. "a crime should have been recorded") and ``y`` those also in the
numerator ("... and it was"). The estimators here take the per-record ``y``, ``z`` and the
design, or, for the coverage benchmark, pre-computed sums over many samples at once.

* :func:`srs_ratio` - simple random sample: ``x / m`` with a Wilson or Clopper-Pearson interval.
* :func:`stratified_ratio` - stratified random sample: combined ratio estimator
  ``R = sum_h N_h ybar_h / sum_h N_h zbar_h`` with the linearisation (Taylor) variance and the
  finite-population correction ``1 - n_h / N_h``.
* :func:`ht_ratio` - Poisson (unequal-probability) sample with known inclusion probabilities:
  Horvitz-Thompson ratio ``sum y/pi / sum z/pi``, variance ``sum (1 - pi) e^2 / pi^2`` with
  ``e = y - R z`` (the ``1 - pi`` factor is the finite-population correction).

The design-based variance turns into an interval in one of two ways (see ``docs/audit.md``):
``wilson`` / ``clopper-pearson`` with the *effective sample size* ``n_eff = R (1 - R) / V``
(Kish; Korn & Graubard 1998), the default because it stays inside [0, 1] and keeps its coverage
near rates of 0 or 1; or ``linearised``, the textbook ``R +/- t_{df} sqrt(V)``. Wilson here is
:func:`crimeaudit.uncertainty.wilson_near_bounds`: within 3 effective records of 0 or 1 its
bound on that side is Brown, Cai and DasGupta's Poisson one, where Wilson's coverage dips.

Degrees of freedom are the domain's, as R's ``survey`` counts them for a subset of the design:
``df = m - H_d``, the records in the figure's denominator less the strata they fall in (``m - 1``
for SRS and pps). The effective sample size gets Korn and Graubard's correction
``n_eff * (t_{m-1} / t_df)^2`` (``svyciprop(method="beta")`` applies the same), which matters
for small domains spread over many strata. When the estimated variance is 0 (every record in
the denominator agreed) ``n_eff`` is Kish's weighted count ``(sum w)^2 / sum w^2`` over the
denominator's records, never the unweighted count, which overstates it under unequal weights.

**Kish's cap.** For every figure of a pps sample and every domain (strand, division) of a
stratified one, the effective sample size is at most Kish's weighted count of the figure's
records, ``(sum w)^2 / sum w^2``: the design effect of unequal weights (Kish 1965) is a floor on
the design effect, as the NCHS standard for proportions floors it at 1. A linearised variance
resting on a few records of a heavily weighted stratum is itself noisy, and when it comes out
small it claims more records than were read: without the cap the strand "other" of a
national-2014 force under Neyman allocation covered 88.3%, with it 94.4%
(``benchmarks/results/pipeline_coverage.md``, section ``kish``). The whole frame of a
stratified sample is not capped: its stratification was designed for it, and its variance rests
on every stratum's records.

>>> import numpy as np
>>> y = np.array([1, 1, 0, 1, 0, 0]); z = np.array([1, 1, 1, 1, 0, 1])
>>> r = stratified_ratio(y, z, strata=np.array(list("aaabbb")), population={"a": 30, "b": 60})
>>> round(r.estimate, 3), r.n, r.denominator
(0.571, 6, 5)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crimeaudit.uncertainty import (
    clopper_pearson,
    proportion_interval,
    t_quantile,
    wilson_near_bounds,
)

INTERVALS = ("wilson", "clopper-pearson", "linearised")
#: Below this many records in a figure's denominator, or this effective sample size, a figure
#: is flagged: its interval rests on very few decisions (and a design-based variance of 0 is
#: then common).
SMALL_DOMAIN = 30


@dataclass(frozen=True)
class RatioResult:
    """A ratio estimate with its interval and the numbers behind it."""

    estimate: float
    lower: float
    upper: float
    method: str
    n: int
    numerator: int
    denominator: int
    variance: float | None = None
    n_effective: float | None = None
    extra: dict = field(default_factory=dict)
    df: float | None = None
    n_kish: float | None = None

    @property
    def se(self) -> float | None:
        """Design-based standard error of the estimate (square root of ``variance``)."""
        return None if self.variance is None else float(np.sqrt(max(self.variance, 0.0)))


def srs_ratio(y, z, level: float = 0.95, interval: str = "wilson") -> RatioResult:
    """Simple random sample: the share of ``z`` records that are also ``y``.

    >>> r = srs_ratio([1] * 265 + [0] * 123, [1] * 388)
    >>> f"{r.estimate:.3f} {r.lower:.3f}-{r.upper:.3f} {r.method}"
    '0.683 0.635-0.727 wilson'
    """
    y, z = _binary(y), _binary(z)
    m, x = int(z.sum()), int((y * z).sum())
    if interval == "linearised":
        p = x / m if m else float("nan")
        lo, hi = _linearised(p, p * (1 - p) / max(m - 1, 1), max(m - 1, 1), level)
    else:
        lo, hi = proportion_interval(x, m, level, interval)
    p = x / m if m else float("nan")
    # The design-based (linearised) variance of the ratio, as for the other designs and R's
    # survey: n/(n-1) p(1-p)/m over the n sampled records; the interval uses the counts.
    n = len(z)
    return RatioResult(
        estimate=p, lower=float(lo), upper=float(hi),
        method=interval, n=n, numerator=x, denominator=m,
        variance=n / max(n - 1, 1) * p * (1 - p) / m if m else None, n_effective=float(m),
        df=float(max(m - 1, 1)), n_kish=float(m),
    )


def stratified_ratio(
    y, z, strata, population: dict, level: float = 0.95, interval: str = "wilson",
    domain: bool = False,
) -> RatioResult:
    """Stratified random sample: combined ratio estimator with FPC (``population`` = N_h).

    ``y`` and ``z`` may be any numbers (not only 0/1): the linearisation holds for any ratio of
    totals. Strata are the labels present in ``strata``; a stratum of ``population`` with no
    record here is not in the estimate (the caller must say so: see
    :func:`crimeaudit.audit.measures.estimate`). ``domain=True`` says the figure is for a domain
    (a strand, a division: ``y`` and ``z`` are 0 outside it), whose effective sample size is
    then at most Kish's weighted count of its records (Kish's cap, see the module's docstring).
    """
    y, z = _binary(y), _binary(z)
    strata = np.asarray(strata).astype(str)
    labels, inv = np.unique(strata, return_inverse=True)
    missing = [h for h in labels if h not in population]
    if missing:
        raise ValueError(f"stratum {missing[0]!r} has no population size")
    H = len(labels)
    N = np.array([population[h] for h in labels], dtype=float)[None, :]
    n_h = np.bincount(inv, minlength=H).astype(float)[None, :]
    stat = np.stack([np.bincount(inv, weights=v, minlength=H)
                     for v in (y, z, y * y, z * z, y * z)], axis=-1)[None, ...]
    est, var, _ = stratified_totals(N, n_h, stat)
    inside = z != 0
    m = int(inside.sum())
    df = max(m - len(np.unique(inv[inside])), 1)
    w = (N[0] / n_h[0])[inv]
    kish = kish_n(w[inside])
    res = finish_ratio(est, var, np.array([df]), level, interval, m=np.array([m]),
                       n_kish=np.array([kish]), cap=domain)
    return RatioResult(
        estimate=float(res[0][0]), lower=float(res[1][0]), upper=float(res[2][0]),
        method=f"stratified-ratio+{_label(interval)}", n=len(z),
        numerator=int((y * z).sum()), denominator=int(z.sum()),
        variance=float(var[0]), n_effective=float(res[3][0]), df=float(df), n_kish=kish,
        extra={"n_eff_capped": True} if res[4][0] else {},
    )


def ht_ratio(y, z, pi, level: float = 0.95, interval: str = "wilson") -> RatioResult:
    """Poisson sample with inclusion probabilities ``pi``: Horvitz-Thompson ratio with FPC.

    >>> r = ht_ratio([1, 0, 1, 1], [1, 1, 1, 1], [0.5, 0.5, 0.1, 0.1])
    >>> round(r.estimate, 3), round(r.n_kish, 2)
    (0.917, 2.77)
    """
    y, z = _binary(y), _binary(z)
    pi = np.asarray(pi, dtype=float)
    if np.any((pi <= 0) | (pi > 1)):
        raise ValueError("inclusion probabilities must be in (0, 1]")
    sums = ht_sums(y[None, :], z[None, :], pi)
    est, var = ht_totals(sums)
    inside = z != 0
    m = int(inside.sum())
    kish = kish_n(1 / pi[inside])
    res = finish_ratio(est, var, np.array([max(m - 1, 1)]), level, interval,
                       m=np.array([m]), n_kish=np.array([kish]), cap=True)
    return RatioResult(
        estimate=float(res[0][0]), lower=float(res[1][0]), upper=float(res[2][0]),
        method=f"ht-ratio+{_label(interval)}", n=len(z),
        numerator=int((y * z).sum()), denominator=int(z.sum()),
        variance=float(var[0]), n_effective=float(res[3][0]), df=float(max(m - 1, 1)),
        n_kish=kish, extra={"n_eff_capped": True} if res[4][0] else {},
    )


def small_sample_warnings(r: RatioResult) -> list[str]:
    """The warning a reader must see beside a figure resting on few decisions.

    >>> small_sample_warnings(srs_ratio([1] * 12, [1] * 12))[0][:40]
    "only 12 decided records in this figure's"
    """
    if r.denominator < SMALL_DOMAIN:
        return [f"only {r.denominator} decided records in this figure's denominator (fewer "
                f"than {SMALL_DOMAIN}): read it as an indication, not a measurement"]
    if r.n_effective is not None and r.n_effective < SMALL_DOMAIN:
        return [f"effective sample size {r.n_effective:.1f} (fewer than {SMALL_DOMAIN}, from "
                f"{r.denominator} decided records and the design's weights): read it as an "
                "indication, not a measurement"]
    return []


def kish_n(weights) -> float:
    """Kish's effective number of records for unequally weighted ones: (sum w)^2 / sum w^2.

    >>> kish_n([1, 1, 1, 1]), round(kish_n([1, 1, 1, 9]), 2)
    (4.0, 1.71)
    """
    w = np.asarray(weights, float)
    ss = float((w * w).sum())
    return float(w.sum() ** 2 / ss) if ss > 0 else 0.0


# -- vectorised cores (shared with benchmarks/bench_coverage.py) --------------------------------


def stratified_totals(N, n_h, stat):
    """Ratio and linearised variance from per-stratum sums, for many samples at once.

    ``N``, ``n_h``: arrays (samples, strata); ``stat``: (samples, strata, 5) holding the sums of
    y, z, y*y, z*z, y*z in each stratum's sample. Returns (ratio, variance, degrees of freedom).
    """
    N, n_h = np.asarray(N, float), np.asarray(n_h, float)
    sy, sz, syy, szz, syz = (stat[..., k] for k in range(5))
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n_h > 0, N / n_h, 0.0)
        Y, Z = (w * sy).sum(-1), (w * sz).sum(-1)
        R = Y / Z
        # Sample (co)variances within strata, n_h - 1 divisor.
        dn = np.maximum(n_h - 1, 1)
        vyy = (syy - sy * sy / np.maximum(n_h, 1)) / dn
        vzz = (szz - sz * sz / np.maximum(n_h, 1)) / dn
        vyz = (syz - sy * sz / np.maximum(n_h, 1)) / dn
        fpc = np.where(N > 0, 1 - n_h / N, 0.0)
        k = np.where(n_h > 1, N * N * fpc / np.maximum(n_h, 1), 0.0)
        Ryy, Rzz, Ryz = (k * vyy).sum(-1), (k * vzz).sum(-1), (k * vyz).sum(-1)
        var = (Ryy - 2 * R * Ryz + R * R * Rzz) / (Z * Z)
    df = np.maximum(n_h.sum(-1) - (n_h > 0).sum(-1), 1)
    return R, np.maximum(var, 0.0), df


def ht_sums(y, z, pi):
    """Per-sample HT sums for Poisson sampling: y, z as (samples, units) 0/1 arrays (0 = unsampled).

    Returns (samples, 5): sum y/pi, sum z/pi, and sum (1-pi)/pi^2 times y*y, z*z, y*z.
    """
    pi = np.asarray(pi, float)
    a, b = 1 / pi, (1 - pi) / (pi * pi)
    y, z = np.asarray(y, float), np.asarray(z, float)
    return np.stack([y @ a, z @ a, (y * y) @ b, (z * z) @ b, (y * z) @ b], axis=-1)


def ht_totals(sums):
    """Ratio and linearised variance from :func:`ht_sums`."""
    Y, Z, vyy, vzz, vyz = (sums[..., k] for k in range(5))
    with np.errstate(divide="ignore", invalid="ignore"):
        R = Y / Z
        var = (vyy - 2 * R * vyz + R * R * vzz) / (Z * Z)
    return R, np.maximum(var, 0.0)


def finish_ratio(R, var, df, level: float, interval: str, m, n_kish=None, cap=False):
    """Turn (ratio, variance) into an interval; returns (R, lower, upper, n_eff, capped) arrays.

    ``m`` is the unweighted number of sampled records in the denominator and ``df`` the
    degrees of freedom of the figure's domain (``m - H_d``). The effective sample size is
    ``R (1 - R) / V`` times Korn and Graubard's ``(t_{m-1} / t_df)^2``; when the variance is 0
    (every record agreed) it is ``n_kish`` (Kish's weighted count; ``m`` if not given) times the
    same factor. With ``cap`` true it is first limited to ``n_kish`` (Kish's cap, see the
    module's docstring); ``capped`` says where that limit bound.

    >>> R, lo, hi, n_eff, capped = finish_ratio(0.9, 0.0009, 10, 0.95, "wilson", 100)
    >>> round(float(n_eff[0]), 1)  # 100 records in 90 strata: 10 degrees of freedom
    79.3
    """
    R, var = np.atleast_1d(np.asarray(R, float)), np.atleast_1d(np.asarray(var, float))
    m = np.atleast_1d(np.asarray(m, float))
    df = np.atleast_1d(np.asarray(df, float))
    fallback = m if n_kish is None else np.atleast_1d(np.asarray(n_kish, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = np.where(var > 0, R * (1 - R) / var, fallback)
        capped = np.asarray(cap, bool) & (n_kish is not None) & (n_eff > fallback)
        n_eff = np.where(capped, fallback, n_eff)
        kg = (t_quantile(level, np.maximum(m - 1, 1)) / t_quantile(level, np.maximum(df, 1)))
        n_eff = n_eff * np.asarray(kg, float) ** 2
    n_eff = np.where(np.isfinite(n_eff), n_eff, 0.0)
    if interval == "linearised":
        lo, hi = _linearised(R, var, df, level)
    elif interval == "wilson":
        lo, hi = wilson_near_bounds(R * n_eff, n_eff, level)
    elif interval == "clopper-pearson":
        lo, hi = clopper_pearson(R * n_eff, n_eff, level)
    else:
        raise ValueError(f"unknown interval {interval!r}; use one of {', '.join(INTERVALS)}")
    return R, np.atleast_1d(lo), np.atleast_1d(hi), n_eff, np.broadcast_to(capped, n_eff.shape)


def _linearised(p, var, df, level: float):
    t = t_quantile(level, df)
    half = t * np.sqrt(var)
    return np.clip(p - half, 0, 1), np.clip(p + half, 0, 1)


def _label(interval: str) -> str:
    return {"wilson": "wilson-neff", "clopper-pearson": "clopper-pearson-neff"}.get(
        interval, "linearised-t"
    )


def _binary(a) -> np.ndarray:
    return np.asarray(a, dtype=float)
