"""The corrected (``*_adjusted``) figures when the double review finds few disagreements (issue
17): a variance that does not collapse with the count, the interval, the warning, and no change
at all when disagreements are plentiful."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crimeaudit.audit.misclassification import (
    JEFFREYS,
    RARE_DISAGREEMENTS,
    rare_disagreement_warnings,
    two_phase_ratio,
)

N, n, M = 60_000, 1500, 150


def _sample(k: int, seed: int = 3, rate: float = 0.97):
    """An SRS of n with every record in the denominator, M of them double-reviewed at random;
    the second review finds ``k`` of the first review's "no"s to be "yes"."""
    rng = np.random.default_rng(seed)
    z = np.ones(n)
    y1 = (rng.random(n) < rate).astype(float)
    checked = np.zeros(n, bool)
    checked[rng.choice(n, M, replace=False)] = True
    y2 = y1.copy()
    y2[np.flatnonzero(checked & (y1 == 0))[:k]] = 1
    return y1, z, y2, z, checked


def _ratio(sample, **kw):
    return two_phase_ratio(*sample, strata=np.full(n, "all"), population={"all": N}, **kw)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_few_disagreements_give_an_interval_that_does_not_collapse(k):
    sample = _sample(k)
    y1, _, y2, _, checked = sample
    res, bare = _ratio(sample), _ratio(sample, pseudo=0)
    # The point is the two-phase difference estimator's, as before: the first review's rate
    # plus the double-reviewed records' mean correction weighted up by 1/q.
    q = M / n
    assert res.estimate == bare.estimate == pytest.approx(
        (y1.sum() + (y2 - y1)[checked].sum() / q) / n, abs=1e-12)
    # The variance allows for at least Jeffreys' half disagreement (|d| = 1) among the M
    # double-reviewed records: by hand for an SRS with every record in the denominator
    # (Z = N), one disagreement adds (w^2 n/(n-1) (1 - n/N) + w (1 - q)) / q^2 / N^2.
    w = N / n
    unit = (w * w * n / (n - 1) * (1 - n / N) + w * (1 - q)) / q ** 2 / N ** 2
    assert res.variance == pytest.approx(bare.variance + max(0.0, JEFFREYS - k) * unit,
                                         rel=1e-12)
    assert res.extra["disagreements_sampled"] == k and res.extra["double_reviewed_sampled"] == M
    # The interval: linearised, t with the double-reviewed records' degrees of freedom.
    t = stats.t.ppf(0.975, M - 1)
    assert res.lower == pytest.approx(res.estimate - t * res.se, rel=1e-12)
    assert res.upper == pytest.approx(min(1.0, res.estimate + t * res.se), rel=1e-12)
    assert res.upper - res.lower > 0.01 and "few disagreements" in res.method
    # Without a disagreement the old variance held only the first review's sampling error.
    if k == 0:
        assert res.variance > 1.5 * bare.variance
    assert rare_disagreement_warnings(res) == [
        f"the correction for auditor error rests on {k} disagreement{'' if k == 1 else 's'} "
        f"among {M} double-reviewed records (fewer than {RARE_DISAGREEMENTS}): its interval "
        "may not hold its level"]


def _plentiful():
    rng = np.random.default_rng(17)
    m = 2000
    z = (rng.random(m) < 0.6).astype(float)
    y = z * (rng.random(m) < 0.85)
    flip = rng.random(m) < 0.08
    y1 = np.where(flip & (z == 1), 1 - y, y)
    strata = np.where(rng.random(m) < 0.5, "a", "b")
    checked = rng.random(m) < 0.2
    return (y1, z, y, z, checked), strata


def test_plentiful_disagreements_leave_the_estimator_unchanged():
    """19 disagreements: the figure, its variance and its Wilson interval are those of the
    estimator before the rare-disagreement allowance (numbers from that code, to 1e-9)."""
    sample, strata = _plentiful()
    pop = {"a": 30000, "b": 20000}
    res = two_phase_ratio(*sample, strata=strata, population=pop)
    assert res.extra["disagreements_sampled"] == 19 >= RARE_DISAGREEMENTS
    before = (0.8585320024050296, 0.81814549784996, 0.8911427851095988,
              0.00034660573597807784)
    got = (res.estimate, res.lower, res.upper, res.variance)
    assert got == pytest.approx(before, abs=1e-9)
    bare = two_phase_ratio(*sample, strata=strata, population=pop, pseudo=0)
    assert (bare.estimate, bare.lower, bare.upper, bare.variance) == got
    assert res.method.endswith("wilson-neff") and res.extra["rare_disagreement_variance"] == 0
    assert rare_disagreement_warnings(res) == []


def test_a_corrected_estimate_beyond_one_gets_an_interval_not_zero_to_one():
    """Twelve first-review "no"s found "yes" among 150 double-reviewed records push the
    difference estimator above 1: Wilson at n_eff = R (1 - R) / V had no meaning there and
    gave [0, 1]; the linearised interval says where the rate is."""
    y1, z, _, _, checked = _sample(0, rate=0.98)
    y1[np.flatnonzero(checked)[:12]] = 0
    y2 = y1.copy()
    y2[np.flatnonzero(checked)[:12]] = 1
    res = _ratio((y1, z, y2, z, checked))
    assert res.extra["disagreements_sampled"] == 12 >= RARE_DISAGREEMENTS
    # About the reported (clipped) estimate: never empty, never [0, 1].
    t = stats.t.ppf(0.975, M - 1)
    assert res.estimate == 1.0 and res.upper == 1.0
    assert res.lower == pytest.approx(1 - t * res.se, rel=1e-12) and 0.9 < res.lower < 1.0
    assert "outside 0-1" in res.method and rare_disagreement_warnings(res) == []


def test_no_double_review_in_the_figure_means_no_rare_warning():
    sample = _sample(0)
    none = (*sample[:4], np.zeros(n, bool))
    res = _ratio(none)
    assert res.extra["double_reviewed_sampled"] == 0 and rare_disagreement_warnings(res) == []
    assert res.method.endswith("wilson-neff")
