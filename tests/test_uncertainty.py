"""crimeaudit.uncertainty against independent computations written out here.

The intervals and BH call statsmodels, so comparing them with statsmodels alone would prove
little: these tests recompute each figure from its textbook definition (the closed-form Wilson
formula, scipy's beta quantiles for Clopper-Pearson, BH from its min-over-larger-p definition)
and pin the edges callers rely on.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests

from crimeaudit.uncertainty import (
    bh_adjust,
    clopper_pearson,
    normal_quantile,
    proportion_interval,
    t_quantile,
    wilson,
    wilson_near_bounds,
)

LEVELS = (0.5, 0.8, 0.95, 0.99)
# Trial counts, including fractional effective sample sizes, and shares of successes from the
# edges (0 and 1) inwards; x = share * n is then fractional too.
NS = (0.5, 1.0, 2.7, 10.0, 37.25, 388.0, 10_000.0, 1e6)
SHARES = (0.0, 1e-9, 0.01, 0.1, 0.5, 0.683, 0.99, 1 - 1e-9, 1.0)


def wilson_by_hand(x: float, n: float, level: float) -> tuple[float, float]:
    z = stats.norm.ppf(0.5 + level / 2)
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(centre - half, 0.0), min(centre + half, 1.0)


def clopper_pearson_by_hand(x: float, n: float, level: float) -> tuple[float, float]:
    a = 1 - level
    lo = 0.0 if x == 0 else stats.beta.ppf(a / 2, x, n - x + 1)
    hi = 1.0 if x == n else stats.beta.ppf(1 - a / 2, x + 1, n - x)
    return float(lo), float(hi)


def bh_by_hand(p: list[float]) -> list[float]:
    """q_i = min over p_j >= p_i of m p_j / #{l: p_l <= p_j}, capped at 1; NaN not counted."""
    real = [v for v in p if not math.isnan(v)]
    m = len(real)
    return [math.nan if math.isnan(v) else
            min(1.0, min(m * u / sum(w <= u for w in real) for u in real if u >= v))
            for v in p]


def grid():
    for n, share, level in itertools.product(NS, SHARES, LEVELS):
        yield share * n, n, level


def test_published_greater_manchester_2014():
    lo, hi = wilson(265, 388, 0.95)
    assert (round(lo, 3), round(hi, 3)) == (0.635, 0.727)


@pytest.mark.parametrize(("x", "n", "level"), list(grid()))
def test_wilson_is_the_closed_form(x, n, level):
    assert wilson(x, n, level) == pytest.approx(wilson_by_hand(x, n, level), abs=1e-12, rel=0)


@pytest.mark.parametrize(("x", "n", "level"), list(grid()))
def test_clopper_pearson_is_the_beta_quantiles(x, n, level):
    ours = clopper_pearson(x, n, level)
    assert ours == pytest.approx(clopper_pearson_by_hand(x, n, level), abs=1e-12, rel=0)


@given(n=st.floats(0.5, 5000), share=st.one_of(st.just(0.0), st.floats(1e-300, 1)),
       level=st.sampled_from(LEVELS))
@settings(max_examples=200, deadline=None)
def test_fractional_counts_match_the_definitions(n, share, level):
    x = share * n
    assert wilson(x, n, level) == pytest.approx(wilson_by_hand(x, n, level), abs=1e-12, rel=0)
    assert clopper_pearson(x, n, level) == pytest.approx(
        clopper_pearson_by_hand(x, n, level), abs=1e-12, rel=0)


def test_whole_grid_at_once_equals_element_by_element():
    x, n = np.array([(x, n) for x, n, level in grid() if level == 0.95]).T
    for method in ("wilson", "clopper-pearson"):
        lo, hi = proportion_interval(x, n, 0.95, method)
        assert isinstance(lo, np.ndarray) and lo.shape == x.shape
        for i in range(x.size):
            assert (lo[i], hi[i]) == proportion_interval(float(x[i]), float(n[i]), 0.95, method)


@pytest.mark.parametrize("f", [wilson, clopper_pearson])
def test_edges_are_exact(f):
    assert f(0, 0) == (0.0, 1.0) and f(3.5, 0) == (0.0, 1.0)
    lo, hi = f(np.array([0.0, 0.0, 7.3, 4.0]), np.array([10.0, 0.0, 7.3, 4.0]))
    assert lo[0] == 0.0 and (lo[1], hi[1]) == (0.0, 1.0) and hi[2] == 1.0 and hi[3] == 1.0
    assert f(0, 10)[0] == 0.0 and f(10, 10)[1] == 1.0 and f(0.0, 2.5)[0] == 0.0
    # Sizes where statsmodels' Wilson formula alone leaves rounding residue at the ends.
    assert f(0.0, 7.3)[0] == 0.0 and f(0, 1000)[0] == 0.0 and f(0.79, 0.79)[1] == 1.0
    lo, hi = f(np.int64(3), 10)
    assert type(lo) is float and type(hi) is float


def test_clopper_pearson_survives_subnormal_counts():
    # scipy's beta quantile raises OverflowError on these shapes; they mean a count of 0 or n.
    assert clopper_pearson(5e-324, 5.0) == clopper_pearson(0.0, 5.0)
    lo, hi = clopper_pearson(np.array([1e-310, 1e-309]), np.array([5.0, 1e-309]))
    assert lo[0] == 0.0 and hi[0] == clopper_pearson(0, 5)[1] and (lo[1], hi[1]) == (0.0, 1.0)


def test_broadcasts_a_scalar_n_over_an_array_of_counts():
    lo, hi = wilson(np.array([0, 5, 10]), 10)
    assert lo.shape == hi.shape == (3,) and lo[0] == 0.0 and hi[2] == 1.0


def test_bad_level_and_method_are_refused():
    with pytest.raises(ValueError, match="confidence level"):
        wilson(1, 2, 1.0)
    with pytest.raises(ValueError, match="confidence level"):
        t_quantile(0.0, 5)
    with pytest.raises(ValueError, match="unknown interval method"):
        proportion_interval(1, 2, method="wald")


def test_quantiles_match_tables():
    assert normal_quantile(0.95) == pytest.approx(1.959963984540054, abs=1e-12)
    assert t_quantile(0.95, 10) == pytest.approx(2.228138851986274, abs=1e-12)
    assert type(t_quantile(0.95, 10)) is float
    q = t_quantile(0.99, np.array([1, 30, 1e12]))
    assert q == pytest.approx([63.65674116287399, 2.749995653567449, 2.5758293035489],
                              abs=1e-9)


def test_bh_small_vector_by_hand():
    # Sorted 0.01, 0.03, 0.04, 0.5 -> 4p/rank = 0.04, 0.06, 0.0533, 0.5 -> step-up minimum.
    q = bh_adjust([0.01, 0.04, 0.03, 0.5])
    assert q == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5], abs=1e-12)
    assert q[1] == q[2]


def test_bh_nan_stays_nan_and_is_not_counted():
    q = bh_adjust([0.01, math.nan, 0.04, math.nan])
    assert math.isnan(q[1]) and math.isnan(q[3])
    assert (q[0], q[2]) == pytest.approx((0.02, 0.04), abs=1e-12)
    assert all(math.isnan(v) for v in bh_adjust([math.nan, math.nan]))
    assert bh_adjust([]) == []


p_values = st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.01, 0.05, 1.0])),
                    min_size=1, max_size=60)


@given(p=p_values, nan_at=st.lists(st.integers(0, 59), max_size=5))
@settings(max_examples=300, deadline=None)
def test_bh_equals_the_definition(p, nan_at):
    p = [math.nan if i in nan_at else v for i, v in enumerate(p)]
    assert bh_adjust(p) == pytest.approx(bh_by_hand(p), abs=1e-12, rel=0, nan_ok=True)


@given(p=p_values)
@settings(max_examples=300, deadline=None)
def test_bh_equals_statsmodels_multipletests_without_nan(p):
    theirs = multipletests(p, method="fdr_bh")[1]
    assert bh_adjust(p) == pytest.approx(list(theirs), abs=1e-12, rel=0)


def exact_coverage(interval, n: int, p: float) -> float:
    """P(the interval of x ~ Binomial(n, p) holds p), summed exactly over x."""
    x = np.arange(n + 1)
    lo, hi = interval(x, np.full(n + 1, n))
    return float(stats.binom.pmf(x, n, p)[(lo <= p) & (p <= hi)].sum())


@pytest.mark.parametrize("n, p", [(100, 0.99), (50, 0.99), (200, 0.995), (100, 0.01)])
def test_near_bounds_holds_its_level_where_wilsons_dips(n, p):
    # Brown, Cai & DasGupta (2001), section 4.1.1: with about one record expected on the near
    # side Wilson's coverage falls to 91-92%; their Poisson bounds keep it at 95% or more.
    # (With 1.5 expected, e.g. n = 300 and p = 0.995, Wilson's own dip to 93.5% remains.)
    assert exact_coverage(wilson, n, p) < 0.94
    assert exact_coverage(wilson_near_bounds, n, p) >= 0.95


def test_near_bounds_is_wilson_away_from_the_ends_and_never_narrower():
    x = np.arange(0, 101, dtype=float)
    lo, hi = wilson_near_bounds(x, 100)
    wlo, whi = wilson(x, 100)
    assert (lo <= wlo).all() and (hi >= whi).all()
    inner = (x > 3) & (x < 97)
    assert (lo[inner] == wlo[inner]).all() and (hi[inner] == whi[inner]).all()
    # Within 3 of an end the bound is the Poisson one, chi2_{2k, alpha} / (2n), by hand:
    for k in (1, 2, 3):
        assert lo[k] == pytest.approx(stats.chi2.ppf(0.05, 2 * k) / 200)
        assert hi[100 - k] == pytest.approx(1 - stats.chi2.ppf(0.05, 2 * k) / 200)
    # 50 trials or fewer: within 2 only (Brown et al.'s x* = 2).
    lo50, _ = wilson_near_bounds(np.array([2.0, 3.0]), 50)
    assert lo50[0] < wilson(2, 50)[0] and lo50[1] == wilson(3, 50)[0]
    assert wilson_near_bounds(0, 0) == (0.0, 1.0) and wilson_near_bounds(0, 10)[0] == 0.0


def test_near_bounds_stays_in_the_unit_interval_on_every_grid_point():
    for x, n, level in grid():
        lo, hi = wilson_near_bounds(x, n, level)
        wlo, whi = wilson(x, n, level)
        assert 0.0 <= lo <= wlo <= whi <= hi <= 1.0, (x, n, level)
