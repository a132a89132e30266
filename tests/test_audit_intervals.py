"""Intervals, estimators and sample-size plans against published figures and other libraries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from crimeaudit.audit import (
    clopper_pearson,
    ht_ratio,
    plan_sample_size,
    srs_ratio,
    stratified_ratio,
    wilson,
)
from crimeaudit.audit.design import allocate, pps_probabilities
from crimeaudit.uncertainty import wilson_near_bounds


def test_greater_manchester_2014_reproduces():
    r = srs_ratio([1] * 265 + [0] * 123, [1] * 388)
    assert round(100 * r.estimate, 1) == 68.3
    assert (round(100 * r.lower, 1), round(100 * r.upper, 1)) == (63.5, 72.7)


@given(n=st.integers(1, 3000), frac=st.floats(0, 1), level=st.sampled_from([0.8, 0.95, 0.99]))
@settings(max_examples=150, deadline=None)
def test_wilson_and_clopper_pearson_match_statsmodels(n, frac, level):
    x = int(round(frac * n))
    for ours, theirs in ((wilson, "wilson"), (clopper_pearson, "beta")):
        lo, hi = ours(x, n, level)
        slo, shi = proportion_confint(x, n, alpha=1 - level, method=theirs)
        assert lo == pytest.approx(slo, abs=1e-9) and hi == pytest.approx(shi, abs=1e-9)


def test_clopper_pearson_is_the_beta_quantile_from_scipy():
    lo, hi = clopper_pearson(67, 112, 0.95)
    assert lo == pytest.approx(stats.beta.ppf(0.025, 67, 46))
    assert hi == pytest.approx(stats.beta.ppf(0.975, 68, 45))


def test_vectorised_intervals_equal_scalar_ones():
    x, n = np.array([0, 5, 40, 50]), np.array([50, 50, 50, 50])
    lo, hi = wilson(x, n)
    for i in range(4):
        assert (lo[i], hi[i]) == pytest.approx(wilson(int(x[i]), int(n[i])))


def test_stratified_ratio_equals_brute_force_linearisation():
    rng = np.random.default_rng(0)
    strata = np.repeat(["a", "b", "c"], [40, 30, 20])
    z = (rng.random(90) < 0.7).astype(float)
    y = z * (rng.random(90) < 0.8)
    pop = {"a": 4000, "b": 900, "c": 100}
    r = stratified_ratio(y, z, strata, pop, interval="linearised")
    w = np.array([pop[h] / (strata == h).sum() for h in strata])
    R = (w * y).sum() / (w * z).sum()
    e = y - R * z
    var = sum(pop[h] ** 2 * (1 - (strata == h).sum() / pop[h]) * e[strata == h].var(ddof=1)
              / (strata == h).sum() for h in pop) / (w * z).sum() ** 2
    assert r.estimate == pytest.approx(R) and r.variance == pytest.approx(var)
    # The domain's degrees of freedom, as R's survey counts them for subset(design, z == 1):
    # records in the denominator less the strata they fall in.
    t = stats.t.ppf(0.975, (z > 0).sum() - 3)
    assert (r.lower, r.upper) == pytest.approx((R - t * var**0.5, R + t * var**0.5))


def test_one_stratum_census_has_no_sampling_error():
    y, z = np.array([1, 0, 1, 1]), np.ones(4)
    r = stratified_ratio(y, z, np.array(["a"] * 4), {"a": 4}, interval="linearised")
    assert r.estimate == 0.75 and r.lower == r.upper == 0.75


def test_ht_ratio_with_equal_probabilities_is_the_sample_share():
    y, z = np.array([1, 1, 0, 1, 0]), np.array([1, 1, 1, 1, 0])
    r = ht_ratio(y, z, np.full(5, 0.01))
    assert r.estimate == pytest.approx(0.75)
    assert r.lower < 0.75 < r.upper


def test_plan_answers_the_inspectorate_question():
    p = plan_sample_size(margin=0.02, expected=0.85, level=0.95, assurance=0.8)
    assert p.n_infinite == 1225 and p.assurance == 0.8
    # The textbook n0 achieves the margin in only half the audits; the plan achieves it in 80%.
    assert p.n_records > p.n_infinite and 0.8 <= p.achieved < 0.85
    assert "without finite-population correction" in p.summary()
    # No finite-population correction: the interval applies none, so the plan must not; a
    # small scope caps the answer and says when the margin cannot be reached.
    small = plan_sample_size(margin=0.02, expected=0.85, population=2000, crime_share=0.5)
    assert small.n_records == 2000 and not small.reachable and "cannot be reached" in \
        small.summary()
    # Checked by simulation: audits of the planned size reach the margin in >= 80% of cases.
    rng = np.random.default_rng(0)
    q = plan_sample_size(margin=0.03, expected=0.81, crime_share=0.6, assurance=0.8)
    m = rng.binomial(q.n_records, 0.6, size=20_000)
    x = rng.binomial(m, 0.81)
    lo, hi = wilson(x, m)
    assert ((hi - lo) / 2 <= 0.03).mean() >= 0.79


def test_allocation_respects_totals_floors_and_caps():
    a = allocate({"a": 10_000, "b": 50, "c": 3}, 500, scores={"a": 1, "b": 1, "c": 1})
    assert sum(a.values()) == 500 and a["c"] == 2 and a["b"] >= 2
    big = allocate({"a": 100, "b": 10}, 105, scores={"a": 0.1, "b": 10})
    assert big == {"a": 95, "b": 10}


def test_pps_probabilities_sum_to_the_expected_size():
    rng = np.random.default_rng(1)
    size = rng.lognormal(size=1000)
    pi = pps_probabilities(size, 200)
    assert pi.sum() == pytest.approx(200) and pi.max() <= 1


def test_a_rate_three_records_from_one_takes_the_poisson_bound():
    # 97 of 100 classified correctly: Wilson's upper end (0.9897) would exclude a true 99%;
    # the audit figure's is Brown, Cai and DasGupta's, 1 - chi2_{6, 0.05} / 200 (docs/audit.md).
    r = srs_ratio([1] * 97 + [0] * 3, [1] * 100)
    assert r.upper == pytest.approx(1 - stats.chi2.ppf(0.05, 6) / 200) and r.upper > 0.99
    assert r.upper > wilson(97, 100)[1] and r.lower == wilson(97, 100)[0]
    # The same rule on a stratified figure's effective counts, and not far from the ends.
    y = np.array([1] * 97 + [0] * 3 + [1] * 60 + [0] * 40)
    s = stratified_ratio(y, np.ones(200), np.array(["a"] * 100 + ["b"] * 100),
                         {"a": 5000, "b": 5000}, domain=False)
    assert s.upper == pytest.approx(wilson_near_bounds(s.estimate * s.n_effective,
                                                       s.n_effective)[1])
    assert s.upper == pytest.approx(wilson(s.estimate * s.n_effective, s.n_effective)[1])
