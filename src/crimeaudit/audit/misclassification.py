"""A rate corrected for auditor error, from a double-review (two-phase) design.

Auditors make mistakes, and a mistake is not noise that averages out: an auditor who wrongly
answers "should have been recorded" for 2% of non-crime calls adds unrecorded "crimes" to every
sample, so the rate reads low and no interval from the first review alone covers the truth. The
remedy is measurement: a random share ``q`` of the sampled records is reviewed a second time,
blind, and disagreements are adjudicated. On those records the *resolved* answer (adjudicated,
else the one both reviews gave) stands for the truth.

The corrected ratio is the **double-sampling (two-phase) difference estimator**: every record
carries its first-review indicators ``y1, z1``; a double-reviewed record also its resolved ``y2,
z2``; and the estimator is the design's own ratio estimator applied to

    y~ = y1 + (I / q_h) (y2 - y1),     z~ = z1 + (I / q_h) (z2 - z1)

with ``I`` = 1 for a double-reviewed record and ``q_h`` the share double-reviewed in its stratum.
The mean first-vs-resolved difference on the double-reviewed records corrects the first review
everywhere: design-unbiased, like the Rogan-Gladen correction, but without assuming that
errors are independent of the truth or of one another. Its variance is the design's variance of
the ratio's linearised ``e~ = y~ - R z~`` (which carries the uncertainty of the measured error
rates, since ``e~`` varies with them) plus, for the part of the sampling fraction the design's
finite-population correction takes away, ``sum_V pi w^2 (1 - q) / q^2 d^2`` with ``d = (y2 - y1) -
R (z2 - z1)`` (Sarndal, Swensson and Wretman 1992, ch. 9). With no disagreement at all the
correction is 0 and the figure equals the uncorrected ratio estimate.

**Few disagreements.** The correction is carried by the records double-reviewed as a random
share (``q < 1``; where every record of a group was double-reviewed, e.g. every finding, its
correction is a census of the group) on which the resolved answer moves the figure (``|d| >=
1/2``: e.g. a record moving between "within the time limit" and "not"). At a 2% error rate and
a 10% double review there are about 2 of them among ~140 double-reviewed records, so their
count ``k`` is a rare-event (Poisson-like) count, and the variance above is proportional to
``k``: 0 when the sample happens to hold none, small exactly when the correction is too small.
This is the failure of the Wald interval for a rate near 0 (Brown, Cai and DasGupta 2001;
Agresti and Coull 1998). Two remedies, measured through the pipeline
(``benchmarks/results/pipeline_coverage.md``, "adjusted"):

* *Variance:* the correction's variance is never taken below that of a disagreement rate
  shrunk away from 0 by Jeffreys' pseudo-count: ``pseudo`` = 1/2 disagreement (``|d| = 1``,
  the most one record can move a ratio) spread evenly over the figure's ``m`` records
  double-reviewed as a random share, i.e. the rate ``(k + 1/2) / m`` at ``k = 0``, the
  posterior mean of a Poisson count under Jeffreys' prior (Jeffreys 1946; the pseudo-count
  of the Jeffreys interval recommended by Brown, Cai and DasGupta 2001). The observed
  variance is kept where it is larger, so the figure is unchanged when disagreements are
  plentiful. (Pooled, not per stratum: a pseudo-count per stratum would grow with the number
  of strata, which says nothing about the auditor. Agresti and Coull's ``z^2/2`` pseudo-count
  was measured too: with the interval below it over-covers, 98.5-100%.)
* *Interval:* below :data:`RARE_DISAGREEMENTS` such disagreements, or when the corrected
  estimate is not inside (0, 1) (a difference estimator is not bounded), the interval is the
  linearised ``R +/- t_df sqrt(V)`` clipped to [0, 1] (about the estimate clipped to [0, 1]:
  the interval then covers whenever the unclipped one would, and is never empty; Mandelkern
  2002 on intervals for bounded parameters), with the degrees of freedom at most
  those of the double-reviewed records (``m - H``, ``H`` their strata: the correction's
  variance is estimated from them; Korn and Graubard 1998). Wilson's interval at ``n_eff = R (1
  - R) / V`` treats the variance as binomial in ``R``; the correction's is not (it comes from
  the error rates), and near a rate of 1, where the first review reads low and the
  correction pushes up, Wilson's pull towards 1/2 points the wrong way: with the shrunk
  variance it still covered 82-88% on a force whose timeliness and classification are 98-99%,
  and for an estimate at or above 1 it gives [0, 1]. With ``k >= RARE_DISAGREEMENTS`` and
  ``0 < R < 1`` (or a variance of 0) the interval is Wilson's at the effective sample size as
  before.

The figure then carries the warning of :func:`rare_disagreement_warnings`: with fewer than 10
disagreements the count's relative standard error exceeds 30% and the normal approximation to
a Poisson count is poor (the usual rule of at least 10 events for the normal approximation to
a binomial or Poisson count), so even the shrunk interval rests on the pseudo-count, not on
the data: the reader is told. Measured through the pipeline (1-3% auditor error, 10% double
review, 1,000 audits a cell): timeliness and classification cover 92.7-98.3% overall at n =
1,500 (were 69-89%), conservatively (99-100%, wide) in small samples and domains. The
corrected recording rate over-covered with them (94.7-100%, was 93-95.5%, wider by 10-90% at n
= 1,500), so :mod:`crimeaudit.audit.measures` gives it the plain interval (``rare=False``).

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> n = 2000
>>> s_true = rng.random(n) < 0.4; r_true = s_true & (rng.random(n) < 0.9)
>>> flip = rng.random(n) < 0.03
>>> s1 = np.where(flip, ~s_true, s_true)
>>> checked = rng.random(n) < 0.2
>>> res = two_phase_ratio((s1 & r_true), s1, (s_true & r_true), s_true, checked,
...                       strata=np.full(n, "all"), population={"all": 60000})
>>> truth = (s_true & r_true).sum() / s_true.sum()
>>> round(float(truth), 3), round(float((s1 & r_true).sum() / s1.sum()), 3), round(res.estimate, 3)
(0.888, 0.856, 0.87)
>>> bool(res.lower < truth < res.upper), res.extra["corrected_records"]
(True, 6)
"""

from __future__ import annotations

import numpy as np

from crimeaudit.audit.estimators import (
    RatioResult,
    finish_ratio,
    ht_sums,
    ht_totals,
    kish_n,
    stratified_totals,
)

#: Below this many disagreements that move the figure, among the records double-reviewed as a
#: random share, a corrected figure uses the rare-disagreement interval and is warned (module
#: docstring).
RARE_DISAGREEMENTS = 10
#: Jeffreys' pseudo-count: the least disagreement the correction's variance allows for.
JEFFREYS = 0.5


def two_phase_ratio(y1, z1, y2, z2, validated, strata=None, population=None, pi=None,
                    level: float = 0.95, interval: str = "wilson", groups=None,
                    pseudo: float | None = None, rare: bool = True) -> RatioResult:
    """The double-sampling ratio (module docstring) under a stratified/SRS design (``strata``
    and ``population`` = N_h; SRS is one stratum) or a Poisson design (``pi``).

    ``y2``/``z2`` matter only where ``validated`` is true. The share double-reviewed is taken
    per stratum (overall for a Poisson design); a stratum whose records were all reviewed
    once only contributes its first reviews uncorrected. ``pseudo`` is the pseudo-count of
    disagreements the correction's variance allows for at least (default Jeffreys' 1/2; 0 gives
    the variance without it); ``rare=False`` keeps the plain variance and interval however few
    the disagreements (the corrected recording rate: see crimeaudit.audit.measures). ``extra``
    holds ``disagreements_sampled`` (k) and
    ``double_reviewed_sampled`` (m), and the variance added for rare disagreements.
    """
    y1, z1, y2, z2 = (np.asarray(a, float) for a in (y1, z1, y2, z2))
    v = np.asarray(validated, bool)
    n = len(y1)
    if pi is None:
        labels, inv = np.unique(np.asarray(strata).astype(str), return_inverse=True)
    else:
        labels, inv = np.array(["all"]), np.zeros(n, dtype=int)
    H = len(labels)
    n_h = np.bincount(inv, minlength=H).astype(float)
    # The share double-reviewed, per design stratum and (if given) per phase-2 group: the
    # second review may be more likely for some first answers (e.g. every "not recorded").
    cell = inv if groups is None else np.unique(
        np.char.add(inv.astype(str), np.char.add("|", np.asarray(groups).astype(str))),
        return_inverse=True)[1]
    n_c = np.bincount(cell).astype(float)
    v_c = np.bincount(cell, weights=v.astype(float))
    q = np.where(v_c > 0, v_c / np.maximum(n_c, 1), 1.0)[cell]
    gain = np.where(v, 1 / q, 0.0)
    yt = y1 + gain * (y2 - y1)
    zt = z1 + gain * (z2 - z1)
    if pi is None:
        N = np.array([population[h] for h in labels], dtype=float)
        stat = np.stack([np.bincount(inv, weights=a, minlength=H)
                         for a in (yt, zt, yt * yt, zt * zt, yt * zt)], axis=-1)[None, ...]
        R, var, _ = stratified_totals(N[None, :], n_h[None, :], stat)
        w = (N / n_h)[inv]
        p_incl = 1 / w
    else:
        p_incl = np.asarray(pi, float)
        w = 1 / p_incl
        R, var = ht_totals(ht_sums(yt[None, :], zt[None, :], p_incl))
    R0 = float(R[0])
    Z = float((w * zt).sum())
    d = (y2 - y1) - R0 * (z2 - z1)
    extra = float((np.where(v, p_incl * w * w * (1 - q) / (q * q) * d * d, 0.0)).sum())
    var_total = float(var[0]) + (extra / (Z * Z) if Z > 0 else 0.0)
    # The correction's variance when disagreements are rare (module docstring): what one
    # disagreement (|d| = 1) on record i adds to the variance above, through the design's
    # variance of e~ (a spike d / q; n_h / (n_h - 1) for a stratified design) and the phase-2
    # term; observed, and with ``pseudo`` disagreements spread evenly over the figure's
    # double-reviewed records.
    if pi is None:
        spike = np.where(n_h > 1, n_h / np.maximum(n_h - 1, 1), 0.0)[inv] * (1 - p_incl)
    else:
        spike = 1 - p_incl
    unit = (w * w * spike + p_incl * w * w * (1 - q)) / (q * q)
    # Only records double-reviewed as a random share (q < 1) extrapolate: where every record
    # was double-reviewed (q = 1) the correction is a census of its cell.
    sub = v & (q < 1)
    checked = sub & ((z1 != 0) | (z2 != 0))
    m2 = int(checked.sum())
    # The disagreements the correction rests on: those that move the figure by at least half a
    # record (|d| >= 1/2: a record moving between numerator and denominator-only, or in or
    # out of the denominator alone when R < 1/2), not those moving in or out of both.
    k = int((sub & (np.abs(d) >= 0.5)).sum())
    a = (JEFFREYS if pseudo is None else float(pseudo)) if rare else 0.0
    floor = 0.0
    if Z > 0 and m2 and a > 0:
        observed = float(np.where(sub, unit * d * d, 0.0).sum()) / (Z * Z)
        floor = max(0.0, a / m2 * float(unit[checked].sum()) / (Z * Z) - observed)
    var_total += floor
    inside = (z1 != 0) | (v & (z2 != 0))
    m = int(inside.sum())
    df = max(m - len(np.unique(inv[inside])), 1)
    rare = rare and bool(m2) and k < RARE_DISAGREEMENTS
    label = "wilson-neff" if interval == "wilson" else interval
    if interval != "linearised" and (rare or (var_total > 0 and not 0 < R0 < 1)):
        # Few disagreements, or an estimate outside (0, 1): module docstring.
        interval, label = "linearised", "linearised-t (few disagreements)" if rare else \
            "linearised-t (estimate outside 0-1)"
        if m2:
            df = max(min(df, m2 - len(np.unique(inv[checked]))), 1)
    # The interval is about the reported (clipped) estimate: where the difference estimator
    # passes 1 (or 0), moving the point to the bound moves it towards every rate the bound
    # allows, so the interval covers whenever the unclipped one would, and is never empty.
    res = finish_ratio(np.array([min(max(R0, 0.0), 1.0)]), np.array([var_total]),
                       np.array([df]), level, interval, m=np.array([m]),
                       n_kish=np.array([kish_n(w[inside])]))
    return RatioResult(
        estimate=float(np.clip(res[0][0], 0, 1)), lower=float(res[1][0]),
        upper=float(res[2][0]), method=f"two-phase double-review correction+{label}",
        n=n, numerator=int(((y1 * z1) != 0).sum()), denominator=int((z1 != 0).sum()),
        variance=var_total, n_effective=float(res[3][0]), df=float(df),
        extra={"double_reviewed": int(v.sum()), "phase2_variance": extra / (Z * Z)
               if Z > 0 else 0.0,
               "corrected_records": int((v & ((y1 != y2) | (z1 != z2))).sum()),
               "disagreements_sampled": k, "double_reviewed_sampled": m2,
               "rare_disagreement_variance": floor},
    )


#: How that warning begins (the coverage benchmark counts it apart from the others).
RARE_PREFIX = "the correction for auditor error rests on"


def rare_disagreement_warnings(r: RatioResult) -> list[str]:
    """The warning on a corrected figure whose correction rests on fewer than
    :data:`RARE_DISAGREEMENTS` disagreements among the records double-reviewed as a random
    share (none where no record of the figure was: its correction is then a census or
    absent, and other warnings speak).

    >>> rng = np.random.default_rng(2)
    >>> y = (rng.random(400) < 0.9).astype(float); z = np.ones(400)
    >>> y2 = y.copy(); y2[:2] = 1 - y2[:2]
    >>> checked = np.arange(400) < 40
    >>> res = two_phase_ratio(y, z, y2, z, checked, strata=np.full(400, "a"),
    ...                       population={"a": 8000})
    >>> rare_disagreement_warnings(res)[0]  # doctest: +NORMALIZE_WHITESPACE
    'the correction for auditor error rests on 2 disagreements among 40 double-reviewed
    records (fewer than 10): its interval may not hold its level'
    """
    k = r.extra.get("disagreements_sampled")
    m = r.extra.get("double_reviewed_sampled")
    if k is None or not m or k >= RARE_DISAGREEMENTS:
        return []
    return [f"{RARE_PREFIX} {k} disagreement{'s' if k != 1 else ''} among {m} double-reviewed "
            f"records (fewer than {RARE_DISAGREEMENTS}): its interval may not hold its level"]


__all__ = ["RARE_DISAGREEMENTS", "rare_disagreement_warnings", "two_phase_ratio"]
