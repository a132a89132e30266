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

Three choices make the interval hold at audit-sized samples (``benchmarks/results/ppi.md``):

* **cross-fitted lam** (default ``tuning="cross-fit"``): the sample is split into ``folds``
  parts and each record's ``lam`` is tuned on the other parts. Tuning ``lam`` on the same records
  it is applied to makes it track the few records where the screen and the auditor disagree,
  which made the interval too narrow (91-92% coverage at 300-400 records, very good screen);
* **logit interval** (default ``interval="logit"``): the delta-method interval is built for
  ``log(theta / (1 - theta))`` and mapped back, because a rate near 0.9 has a skewed sampling
  distribution (the same reason Wilson beats Wald for a plain proportion);
* **the variance's own degrees of freedom**: the interval uses Student's t with the degrees of
  freedom of the estimated variance (:func:`variance_df`: about ``2 n / (kappa - 1)`` per
  stratum from the kurtosis of the linearised terms, combined by Satterthwaite), not the normal
  quantile. With a good screen the rectifier's variance rests on the few records where the
  screen and the auditor disagree, and a normal quantile then left PPI++ about one point short
  of its level through the pipeline (94.1% pooled on kent-2013, 92.6-93.5% with Neyman
  allocation).

The target is this force's own rate, so the variance is the design-based one
(``variance="finite-population"``): only the sample varies, with the finite-population
correction ``1 - n/N``. PPI++'s own variance (``variance="superpopulation"``) treats the
incidents as a draw from a larger population and adds ``lam^2 Var_N(f (R - theta)) / N``; it is
a little conservative here (96.1-96.4% coverage at 1,000-1,300 records on kent-2013).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> f = rng.uniform(size=20000); r = rng.uniform(size=20000) < 0.8
>>> s = rng.uniform(size=20000) < f
>>> idx = rng.choice(20000, 800, replace=False)
>>> res = ppi_ratio(s[idx], f[idx], r[idx], f, r)
>>> bool(res.lower < res.estimate < res.upper and res.half_width < 0.05)
True
>>> res.extra["tuning"], res.extra["interval"]
('cross-fit', 'logit')
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crimeaudit.uncertainty import normal_quantile, t_quantile, wilson

__all__ = ["PPIResult", "PPIStratum", "ppi_mean", "ppi_ratio", "ppi_stratified_ratio",
           "coverage_warnings", "MIN_AUDITED", "MIN_SHOULD_RECORD", "MIN_DISCORDANT"]

TUNINGS = ("cross-fit", "same-sample")
INTERVALS = ("logit", "linear")
VARIANCES = ("finite-population", "superpopulation")

# Sizes at which benchmarks/bench_ppi.py measured 94-96% coverage on kent-2013 (with a screen of
# ROC AUC 0.999 and a deliberately poor one of AUC about 0.7): below them the interval is
# reported with a warning, because coverage there was not shown (see docs/ppi.md).
MIN_AUDITED = 300
# About 41% of kent-2013 incidents should have been recorded: 300 audited gave about 120.
MIN_SHOULD_RECORD = 120
# Records where the auditor's decision and the screen (p_crime >= 0.5) disagree: the only
# records that move the rectifier. On kent-2013 coverage held from about 3 of them, but in the
# benchmark's synthetic stress test (near-binary screen wrong on 1%) samples with fewer than 10
# covered 70-94%: below 10 the interval is flagged.
MIN_DISCORDANT = 10


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


def _arr(a) -> np.ndarray:
    return np.asarray(a, dtype=float)


def ppi_mean(y, yhat, yhat_unlabeled, level: float = 0.95, lam: float | None = None) -> PPIResult:
    """PPI++ mean with power-tuned ``lam`` (``ppi_py.ppi_mean_ci`` with ``lam=None``).

    Same-sample tuning and a normal interval, exactly as ``ppi-python`` does, so that the
    building block can be cross-checked against it.

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
    z = normal_quantile(level)
    return PPIResult(float(est), float(est - z * se), float(est + z * se), se, lam, n, N, level)


@dataclass
class PPIStratum:
    """One stratum's audited records and the sums of its population that PPI needs.

    Only five sums of the population enter the estimator, so a caller with the population in
    a database computes them there (see :mod:`crimeaudit.audit.ppi_project`) and never loads it.
    """

    s: np.ndarray   # should have been recorded (auditor), sample
    f: np.ndarray   # screen's P(crime), sample
    r: np.ndarray   # recorded (auditor's answer where given), sample
    rp: np.ndarray  # recorded as the population side sees it (linkage), sample
    N: int
    sum_f: float
    sum_fr: float
    sum_f2r: float   # sum f^2 over recorded
    sum_f2nr: float  # sum f^2 over not recorded

    @classmethod
    def of(cls, s, f, r, fu, ru, rp=None) -> PPIStratum:
        fu, ru = _arr(fu), _arr(ru)
        return cls(_arr(s), _arr(f), _arr(r), _arr(r if rp is None else rp), len(fu),
                   float(fu.sum()), float((fu * ru).sum()), float((fu * fu * ru).sum()),
                   float((fu * fu * (1 - ru)).sum()))

    def subset(self, idx) -> PPIStratum:
        return PPIStratum(self.s[idx], self.f[idx], self.r[idx], self.rp[idx], self.N, self.sum_f,
                        self.sum_fr, self.sum_f2r, self.sum_f2nr)

    def population_moments(self, theta: float) -> tuple[float, float, float]:
        """Mean, mean square and variance of ``f (R - theta)`` over the stratum's population."""
        m = (self.sum_fr - theta * self.sum_f) / self.N
        m2 = (self.sum_f2r * (1 - theta) ** 2 + self.sum_f2nr * theta**2) / self.N
        return m, m2, max(m2 - m * m, 0.0) * self.N / max(self.N - 1, 1)

    def parts(self, lams: np.ndarray) -> tuple[float, float]:
        """PPI means of the numerator ``S R`` and denominator ``S`` with per-record ``lam``."""
        lbar = float(lams.mean())
        num = (self.s * self.r).mean() + lbar * self.sum_fr / self.N - (lams * self.f * self.rp
                                                                        ).mean()
        den = self.s.mean() + lbar * self.sum_f / self.N - (lams * self.f).mean()
        return float(num), float(den)

    def variance(self, lams: np.ndarray, theta: float, finite: bool) -> float:
        """Variance of the stratum's linearised ``num - theta den`` (per-record means).

        ``finite``: the target is this population's own rate, so its mean of ``f (R - theta)``
        is a constant and only the sample varies (with the finite-population correction).
        Otherwise the population is treated as a draw from a larger one (PPI++'s variance).
        """
        g = self.linearised(lams, theta)
        n = len(self.s)
        if finite:
            return float(g.var(ddof=1)) / n * max(0.0, 1 - n / self.N)
        lbar = float(lams.mean())
        return float(g.var(ddof=1)) / n + lbar**2 * self.population_moments(theta)[2] / self.N

    def linearised(self, lams: np.ndarray, theta: float) -> np.ndarray:
        """Each audited record's term of the linearised ``num - theta den``."""
        return self.s * (self.r - theta) - lams * self.f * (self.rp - theta)

    def tuned_lambda(self, theta: float) -> float:
        """The lam minimising the linearised variance (PPI++ power tuning for the ratio)."""
        a = self.s * (self.r - theta)
        b = self.f * (self.rp - theta)
        n = len(a)
        if n < 2:
            return 0.0
        m, m2, _ = self.population_moments(theta)
        # Var(b) over sample and population together, from sums (no pass over the population).
        tot = n + self.N
        mean_b = (b.sum() + self.N * m) / tot
        vb = ((b * b).sum() + self.N * m2 - tot * mean_b**2) / (tot - 1)
        if not np.isfinite(vb) or vb <= 0:
            return 0.0
        cov = np.cov(a, b, ddof=1)[0, 1]
        return float(np.clip(cov / ((1 + n / self.N) * vb), 0.0, 1.0))


def _combine(strata: dict, lams: dict) -> tuple[float, float]:
    num_t = den_t = 0.0
    for h, st in strata.items():
        num, den = st.parts(lams[h])
        num_t += st.N * num
        den_t += st.N * den
    return (num_t / den_t if den_t > 0 else float("nan")), den_t


def _same_sample_lambdas(strata: dict) -> dict:
    """Per-stratum lam tuned on the whole sample (classical ratio first, then two passes)."""
    lams = {h: np.zeros(len(st.s)) for h, st in strata.items()}
    theta = _combine(strata, lams)[0]
    for _ in range(2):
        lams = {h: np.full(len(st.s), st.tuned_lambda(theta)) for h, st in strata.items()}
        theta = _combine(strata, lams)[0]
    return lams


def _cross_fit_lambdas(strata: dict, folds: int, seed: int) -> dict:
    """Per-record lam, each tuned on the records outside its fold (in every stratum)."""
    rng = np.random.default_rng(seed)
    fold_of = {h: rng.permutation(len(st.s)) % folds for h, st in strata.items()}
    lams = {h: np.zeros(len(st.s)) for h, st in strata.items()}
    for k in range(folds):
        train = {h: st.subset(fold_of[h] != k) for h, st in strata.items()}
        train = {h: st for h, st in train.items() if len(st.s) >= 2}
        if not train:
            continue
        tuned = _same_sample_lambdas(train)
        for h, lam_h in tuned.items():
            lams[h][fold_of[h] == k] = lam_h[0]
    return lams


def variance_df(terms: dict, weights: dict) -> float:
    """Degrees of freedom of a stratified variance ``sum_h weights[h] * var(terms[h])``.

    Each stratum's sample variance has about ``2 n / (kappa - 1)`` degrees of freedom, with
    ``kappa`` the kurtosis of its terms (``n - 1`` for normal terms, far fewer when a few
    records carry the variance, as PPI++'s rectifier does when the screen and the auditor
    rarely disagree); Satterthwaite's formula combines the strata.

    >>> rng = np.random.default_rng(1)
    >>> normal = variance_df({"a": rng.normal(size=400)}, {"a": 1.0})
    >>> rare = variance_df({"a": np.r_[np.zeros(395), np.ones(5)]}, {"a": 1.0})
    >>> round(normal), round(rare)   # 400 normal terms; 5 ones among 400 records
    (328, 10)
    """
    parts, dfs = [], []
    for h, g in terms.items():
        g = np.asarray(g, float)
        n = len(g)
        v = g.var()
        if n < 2 or v <= 0:
            continue
        kappa = float(((g - g.mean()) ** 4).mean() / v**2)
        parts.append(weights[h] * g.var(ddof=1))
        dfs.append(min(max(2 * n / max(kappa - 1, 1e-12), 1.0), n - 1.0))
    parts = np.asarray(parts)
    if not len(parts) or parts.sum() <= 0:
        return 1.0
    return float(parts.sum() ** 2 / (parts**2 / np.asarray(dfs)).sum())


def _interval(theta: float, se: float, level: float, interval: str,
              counts: tuple[float, float], df: float) -> tuple[float, float, str]:
    z = float(t_quantile(level, df))
    if 0 < theta < 1 and np.isfinite(se) and se > 0:
        if interval == "linear":
            return max(0.0, theta - z * se), min(1.0, theta + z * se), "linear"
        # Delta method on the log-odds scale: se_logit = se / (theta (1 - theta)).
        centre = np.log(theta / (1 - theta))
        half = z * se / (theta * (1 - theta))
        lo, hi = 1 / (1 + np.exp(-(centre - half))), 1 / (1 + np.exp(-(centre + half)))
        return float(lo), float(hi), "logit"
    # A rate of exactly 0 or 1 (e.g. every audited crime was recorded) has no log-odds and a
    # zero linear variance: fall back to Wilson on the audited counts, which ignores the screen.
    if counts[1] > 0:
        lo, hi = wilson(counts[0], counts[1], level)
        return lo, hi, "wilson fallback"
    return 0.0, 1.0, "none (no audited record should have been recorded)"


def ppi_stratified_ratio(strata: dict, level: float = 0.95, lam: float | None = None,
                         tuning: str = "cross-fit", interval: str = "logit", folds: int = 10,
                         seed: int = 0, variance: str = "finite-population") -> PPIResult:
    """Stratified PPI++ recording rate.

    ``strata`` maps a stratum name to a :class:`PPIStratum` (sample arrays and population
    sums) or to ``(s, f, r, f_population, r_population[, r_linked])``:
    labels, predictions and recorded flags on the sample, predictions and recorded flags on
    every incident of the stratum. ``r_linked`` (default ``r``) is the recorded flag the
    population side uses (from linkage) on the sampled records, when the auditor's ``r``
    differs from it: the rectifier must compare like with like. Strata are combined with
    weights ``N_h`` (population sizes).

    ``lam`` fixes the tuning parameter (``0`` gives the classical ratio); otherwise it is
    power-tuned per stratum, ``tuning="cross-fit"`` (default, ``folds`` parts, fold assignment
    from ``seed`` so the result is reproducible) or ``"same-sample"`` (the original PPI++
    recipe, too narrow at small samples). ``interval`` is ``"logit"`` (default) or
    ``"linear"``; ``variance`` is ``"finite-population"`` (default, design-based) or
    ``"superpopulation"`` (PPI++'s). ``extra`` records the tuning, the interval actually used and
    ``discordant``, the number of audited records where the auditor and the screen
    (``f >= 0.5``) disagree.

    >>> res = ppi_stratified_ratio({"a": ([1, 1, 0, 1], [.9, .8, .1, .2], [1, 0, 0, 1],
    ...                                   [.9, .8, .1, .2, .7], [1, 0, 0, 1, 1])})
    >>> res.extra["discordant"], res.n, res.N
    (1, 4, 5)
    """
    if tuning not in TUNINGS:
        raise ValueError(f"tuning must be one of {TUNINGS}, not {tuning!r}")
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, not {interval!r}")
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, not {variance!r}")
    prepared = {}
    for h, parts in strata.items():
        st = parts if isinstance(parts, PPIStratum) else PPIStratum.of(*parts[:6])
        if len(st.s) < 2:
            raise ValueError(f"stratum {h!r}: PPI needs at least two audited records")
        prepared[h] = st
    if lam is not None:
        lams = {h: np.full(len(st.s), float(lam)) for h, st in prepared.items()}
        tuning = "fixed"
    elif tuning == "cross-fit":
        lams = _cross_fit_lambdas(prepared, max(2, int(folds)), seed)
    else:
        lams = _same_sample_lambdas(prepared)
    theta, den_total = _combine(prepared, lams)
    finite = variance == "finite-population"
    var = sum(st.N ** 2 * st.variance(lams[h], theta, finite) for h, st in prepared.items())
    se = float(np.sqrt(var)) / den_total if den_total > 0 else float("nan")
    counts = (sum(float((st.s * st.r).sum()) for st in prepared.values()),
              sum(float(st.s.sum()) for st in prepared.values()))
    df = variance_df({h: st.linearised(lams[h], theta) for h, st in prepared.items()},
                     {h: st.N ** 2 / len(st.s) for h, st in prepared.items()})
    lower, upper, used = _interval(theta, se, level, interval, counts, df)
    # The rectifier can push the ratio just outside [0, 1]; a rate cannot be there.
    theta = float(np.clip(theta, 0.0, 1.0))
    lower, upper = min(lower, theta), max(upper, theta)
    n = sum(len(st.s) for st in prepared.values())
    N = sum(st.N for st in prepared.values())
    lam_means = {h: float(v.mean()) for h, v in lams.items()}
    lam_out: float | dict = next(iter(lam_means.values())) if len(lams) == 1 else lam_means
    discordant = int(sum((np.abs(st.s - st.f) >= 0.5).sum() for st in prepared.values()))
    should = int(counts[1])
    return PPIResult(float(theta), lower, upper, se, lam_out, n, N, level,
                     {"strata": len(prepared), "tuning": tuning, "interval": used,
                      "variance": variance,
                      "folds": int(folds) if tuning == "cross-fit" else None,
                      "discordant": discordant, "should_record": should, "df": df})


def ppi_ratio(s, f, r, f_population, r_population, level: float = 0.95,
              lam: float | None = None, tuning: str = "cross-fit", interval: str = "logit",
              folds: int = 10, seed: int = 0, variance: str = "finite-population") -> PPIResult:
    """Unstratified PPI++ recording rate (see the module docstring)."""
    return ppi_stratified_ratio({"all": (s, f, r, f_population, r_population)}, level, lam,
                                tuning, interval, folds, seed, variance)


def coverage_warnings(n: int, should_record: int, discordant: int) -> list[str]:
    """Why an interval may be less reliable than its level says, from the benchmark's limits.

    >>> coverage_warnings(1000, 400, 12)
    []
    >>> coverage_warnings(150, 60, 1)[0]
    'only 150 audited records: coverage of the PPI++ interval was shown only from 300'
    """
    out = []
    if n < MIN_AUDITED:
        out.append(f"only {n} audited records: coverage of the PPI++ interval was shown only "
                   f"from {MIN_AUDITED}")
    if should_record < MIN_SHOULD_RECORD:
        out.append(f"only {should_record} audited records should have been recorded: coverage "
                   f"was shown only from about {MIN_SHOULD_RECORD}")
    if discordant < MIN_DISCORDANT:
        out.append(f"only {discordant} audited records where the auditor and the screen "
                   f"disagree: the interval rests on them and may be too narrow (coverage was "
                   f"shown in every benchmark case only from {MIN_DISCORDANT})")
    return out
