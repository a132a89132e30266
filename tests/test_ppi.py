"""PPI++ estimators: agreement with ppi-python, coverage sanity, robustness to a poor model."""

import numpy as np
import ppi_py
import pytest

from crimeaudit.screen.ppi import ppi_mean, ppi_ratio, ppi_stratified_ratio


def _population(seed, n_pop=20000, quality=1.0):
    rng = np.random.default_rng(seed)
    f = rng.uniform(size=n_pop)
    s = rng.uniform(size=n_pop) < (quality * f + (1 - quality) * 0.4)
    r = s & (rng.uniform(size=n_pop) < 0.85)
    return s, f, r


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unstratified_mean_matches_ppi_python(seed):
    s, f, _ = _population(seed)
    rng = np.random.default_rng(seed + 10)
    idx = rng.choice(len(s), 600, replace=False)
    mask = np.ones(len(s), bool)
    mask[idx] = False
    ours = ppi_mean(s[idx], f[idx], f[mask], level=0.9)
    lo, hi = ppi_py.ppi_mean_ci(s[idx].astype(float), f[idx], f[mask], alpha=0.1)
    point = ppi_py.ppi_mean_pointestimate(s[idx].astype(float), f[idx], f[mask])
    assert ours.estimate == pytest.approx(float(np.ravel(point)[0]), abs=1e-3)
    assert ours.lower == pytest.approx(float(np.ravel(lo)[0]), abs=2e-3)
    assert ours.upper == pytest.approx(float(np.ravel(hi)[0]), abs=2e-3)


def test_ratio_covers_truth_and_beats_classical():
    s, f, r = _population(5)
    truth = (s & r).sum() / s.sum()
    rng = np.random.default_rng(0)
    hits, widths_ppi, widths_cls = 0, [], []
    for _ in range(200):
        idx = rng.choice(len(s), 500, replace=False)
        res = ppi_ratio(s[idx], f[idx], r[idx], f, r)
        cls = ppi_ratio(s[idx], f[idx], r[idx], f, r, lam=0.0)
        hits += res.lower <= truth <= res.upper
        widths_ppi.append(res.half_width)
        widths_cls.append(cls.half_width)
    assert 0.9 <= hits / 200 <= 0.99
    assert np.median(widths_ppi) < np.median(widths_cls)


def test_useless_model_does_not_break_interval():
    rng = np.random.default_rng(3)
    s = rng.uniform(size=10000) < 0.4
    r = s & (rng.uniform(size=10000) < 0.8)
    f = rng.uniform(size=10000)  # unrelated to s
    idx = rng.choice(10000, 400, replace=False)
    res = ppi_ratio(s[idx], f[idx], r[idx], f, r)
    cls = ppi_ratio(s[idx], f[idx], r[idx], f, r, lam=0.0)
    assert res.half_width <= cls.half_width * 1.05
    assert res.lower < 0.8 < res.upper


def test_stratified_combines_strata_by_population():
    s1, f1, r1 = _population(7, 5000)
    s2, f2, r2 = _population(8, 15000, quality=0.5)
    rng = np.random.default_rng(1)
    i1 = rng.choice(5000, 300, replace=False)
    i2 = rng.choice(15000, 300, replace=False)
    res = ppi_stratified_ratio({"a": (s1[i1], f1[i1], r1[i1], f1, r1),
                                "b": (s2[i2], f2[i2], r2[i2], f2, r2)})
    truth = ((s1 & r1).sum() + (s2 & r2).sum()) / (s1.sum() + s2.sum())
    assert res.lower < truth < res.upper
    assert set(res.lam) == {"a", "b"}


def test_too_few_labels_is_a_clear_error():
    with pytest.raises(ValueError, match="at least two"):
        ppi_ratio([1], [0.5], [1], [0.5, 0.4], [1, 0])
