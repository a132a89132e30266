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
R (z2 - z1)`` (Sarndal, Swensson and Wretman 1992, ch. 9). The interval is Wilson's at the
effective sample size, as for the uncorrected rate. With no disagreement at all the correction
is 0 and the figure equals the uncorrected ratio estimate.

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


def two_phase_ratio(y1, z1, y2, z2, validated, strata=None, population=None, pi=None,
                    level: float = 0.95, interval: str = "wilson", groups=None
                    ) -> RatioResult:
    """The double-sampling ratio (module docstring) under a stratified/SRS design (``strata``
    and ``population`` = N_h; SRS is one stratum) or a Poisson design (``pi``).

    ``y2``/``z2`` matter only where ``validated`` is true. The share double-reviewed is taken
    per stratum (overall for a Poisson design); a stratum whose records were all reviewed
    once only contributes its first reviews uncorrected.
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
    inside = (z1 != 0) | (v & (z2 != 0))
    m = int(inside.sum())
    df = max(m - len(np.unique(inv[inside])), 1)
    res = finish_ratio(np.array([R0]), np.array([var_total]), np.array([df]), level, interval,
                       m=np.array([m]), n_kish=np.array([kish_n(w[inside])]))
    return RatioResult(
        estimate=float(np.clip(res[0][0], 0, 1)), lower=float(res[1][0]),
        upper=float(res[2][0]), method="two-phase double-review correction+wilson-neff",
        n=n, numerator=int(((y1 * z1) != 0).sum()), denominator=int((z1 != 0).sum()),
        variance=var_total, n_effective=float(res[3][0]), df=float(df),
        extra={"double_reviewed": int(v.sum()), "phase2_variance": extra / (Z * Z)
               if Z > 0 else 0.0,
               "corrected_records": int((v & ((y1 != y2) | (z1 != z2))).sum())},
    )


__all__ = ["two_phase_ratio"]
