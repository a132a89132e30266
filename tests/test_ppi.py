"""PPI++ estimators: agreement with ppi-python, coverage sanity, robustness to a poor model,
and what a user reads in the project's estimate (method, sizes, warnings)."""

import numpy as np
import ppi_py
import pyarrow as pa
import pytest

from crimeaudit.audit.ppi import (
    MIN_AUDITED,
    MIN_DISCORDANT,
    coverage_warnings,
    ppi_mean,
    ppi_ratio,
    ppi_stratified_ratio,
)
from crimeaudit.audit.ppi_project import estimate_ppi


def _population(seed, n_pop=20000, quality=1.0):
    rng = np.random.default_rng(seed)
    f = rng.uniform(size=n_pop)
    s = rng.uniform(size=n_pop) < (quality * f + (1 - quality) * 0.4)
    r = s & (rng.uniform(size=n_pop) < 0.85)
    return s, f, r


def _sharp_population(seed, n_pop=20000, flip=0.01):
    """A very good screen: f is right except for a rare `flip` share of records."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(size=n_pop) < 0.4
    wrong = rng.uniform(size=n_pop) < flip
    f = np.where(s ^ wrong, 0.98, 0.02)
    r = s & (rng.uniform(size=n_pop) < np.where(f > 0.5, 0.95, 0.3))
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


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9])
def test_unstratified_ratio_is_the_ratio_of_two_ppi_python_means(lam):
    # ppi-python has no ratio estimator, but with a fixed lambda our ratio is exactly its PPI
    # mean of S R over its PPI mean of S (unlabelled side = every incident).
    s, f, r = _population(4)
    idx = np.random.default_rng(9).choice(len(s), 500, replace=False)
    ours = ppi_ratio(s[idx], f[idx], r[idx], f, r, lam=lam)
    num = ppi_py.ppi_mean_pointestimate((s & r)[idx].astype(float), (f * r)[idx], f * r, lam=lam)
    den = ppi_py.ppi_mean_pointestimate(s[idx].astype(float), f[idx], f, lam=lam)
    assert ours.estimate == pytest.approx(float(np.ravel(num)[0] / np.ravel(den)[0]), rel=1e-9)
    assert ours.extra["tuning"] == "fixed"


def test_ratio_covers_truth_and_beats_classical():
    s, f, r = _population(5)
    truth = (s & r).sum() / s.sum()
    rng = np.random.default_rng(0)
    hits, hits_sup, widths_ppi, widths_sup, widths_cls = 0, 0, [], [], []
    for _ in range(150):
        idx = rng.choice(len(s), 500, replace=False)
        res = ppi_ratio(s[idx], f[idx], r[idx], f, r)
        sup = ppi_ratio(s[idx], f[idx], r[idx], f, r, variance="superpopulation")
        cls = ppi_ratio(s[idx], f[idx], r[idx], f, r, lam=0.0)
        hits += res.lower <= truth <= res.upper
        hits_sup += sup.lower <= truth <= sup.upper
        widths_ppi.append(res.half_width)
        widths_sup.append(sup.half_width)
        widths_cls.append(cls.half_width)
    assert hits / 150 >= 0.9 and hits_sup / 150 >= 0.9
    # the design-based variance (default) is narrower than PPI++'s superpopulation one, which
    # counts the population's own randomness; both are narrower than ignoring the screen
    assert np.median(widths_ppi) < np.median(widths_sup) < np.median(widths_cls)


def test_very_good_screen_narrows_a_lot_and_covers_with_enough_discordant_records():
    # The hard case: the rectifier is zero except on the few records the screen gets wrong.
    s, f, r = _sharp_population(6, flip=0.02)
    truth = (s & r).sum() / s.sum()
    rng = np.random.default_rng(2)
    hits, ratio, ks = 0, [], []
    for _ in range(150):
        idx = rng.choice(len(s), 800, replace=False)
        res = ppi_ratio(s[idx], f[idx], r[idx], f, r)
        cls = ppi_ratio(s[idx], f[idx], r[idx], f, r, lam=0.0)
        hits += res.lower <= truth <= res.upper
        ratio.append(res.half_width / cls.half_width)
        ks.append(res.extra["discordant"])
    assert np.median(ks) >= MIN_DISCORDANT
    assert hits / 150 >= 0.9
    assert np.median(ratio) < 0.8


def test_few_discordant_records_are_flagged():
    s, f, r = _sharp_population(6, flip=0.01)
    idx = np.random.default_rng(5).choice(len(s), MIN_AUDITED, replace=False)
    res = ppi_ratio(s[idx], f[idx], r[idx], f, r)
    assert res.extra["discordant"] < MIN_DISCORDANT
    warnings = coverage_warnings(res.n, res.extra["should_record"], res.extra["discordant"])
    assert any("disagree" in w for w in warnings)


def test_interval_widens_when_the_model_is_poor():
    s, f, r = _sharp_population(7)
    noisy = np.clip(0.5 + 0.1 * (f - 0.5) + np.random.default_rng(1).normal(0, 0.2, len(f)),
                    0, 1)
    idx = np.random.default_rng(3).choice(len(s), 600, replace=False)
    good = ppi_ratio(s[idx], f[idx], r[idx], f, r)
    poor = ppi_ratio(s[idx], noisy[idx], r[idx], noisy, r)
    cls = ppi_ratio(s[idx], f[idx], r[idx], f, r, lam=0.0)
    assert poor.half_width > 1.5 * good.half_width
    # a poor model is no worse than ignoring it
    assert poor.half_width <= 1.05 * cls.half_width
    truth = (s & r).sum() / s.sum()
    assert poor.lower < truth < poor.upper


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


def test_cross_fit_is_reproducible_and_seeded():
    s, f, r = _population(8)
    idx = np.random.default_rng(4).choice(len(s), 300, replace=False)
    a = ppi_ratio(s[idx], f[idx], r[idx], f, r)
    b = ppi_ratio(s[idx], f[idx], r[idx], f, r)
    c = ppi_ratio(s[idx], f[idx], r[idx], f, r, seed=1)
    assert (a.estimate, a.lower, a.upper) == (b.estimate, b.lower, b.upper)
    assert a.estimate != c.estimate


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


def test_too_few_labels_and_unknown_options_are_clear_errors():
    with pytest.raises(ValueError, match="at least two"):
        ppi_ratio([1], [0.5], [1], [0.5, 0.4], [1, 0])
    with pytest.raises(ValueError, match="tuning"):
        ppi_ratio([1, 0], [0.5, 0.4], [1, 0], [0.5, 0.4], [1, 0], tuning="bootstrap")


def test_warnings_name_what_is_below_the_benchmarked_size():
    assert coverage_warnings(MIN_AUDITED, 200, 10) == []
    small = coverage_warnings(40, 15, 0)
    assert len(small) == 3 and "40 audited" in small[0] and "disagree" in small[2]


@pytest.fixture(scope="module")
def force(tmp_path_factory):
    """A small simulated force with stand-in screen scores (no model training: fast)."""
    from crimeaudit.simulation import simulate
    from crimeaudit.store.project import Project

    d = tmp_path_factory.mktemp("ppi_force")
    Project.init(d)
    sim = simulate("kent-2013", seed=5, n_incidents=3000)
    truth = sim.tables["truth_incidents"].to_pandas()
    rng = np.random.default_rng(0)
    wrong = rng.uniform(size=len(truth)) < 0.05
    p = np.where(truth.discloses_crime.to_numpy(bool) ^ wrong, 0.95, 0.05)
    with Project.open(d) as proj:
        for name, t in sim.tables.items():
            proj.engine.write(name, t)
        proj.engine.write("screen_scores", pa.table(
            {"incident_id": truth.incident_id.astype(str), "p_crime": p}))
    return d


def _estimate_for_sample(force, size):
    from crimeaudit.audit import draw_sample, oracle_review
    from crimeaudit.store.project import Project

    with Project.open(force) as proj:
        sample = draw_sample(proj, kind="srs", size=size, seed=size)
        oracle_review(proj, sample_id=sample.sample_id)
        return estimate_ppi(proj, sample_id=sample.sample_id)[0]


def test_project_estimate_states_method_and_size(force):
    est = _estimate_for_sample(force, 500)
    assert est.method == "ppi++ (cross-fit lambda, logit interval)"
    # n counts the sampled records the auditor decided (yes/no)
    assert 450 <= est.n <= 500 and f"{est.n} audited records" in est.notes
    assert "WARNING" not in est.notes and est.extra["warnings"] == []
    assert est.lower < est.estimate < est.upper
    assert est.extra["ppi_half_width"] < est.extra["classical_half_width"]


def test_project_estimate_warns_at_tiny_samples(force):
    est = _estimate_for_sample(force, 40)
    assert est.n <= 40
    # PPI++'s own coverage warnings are always computed; the figure a reader sees warns
    # whichever estimate is reported (PPI++, or the classical one when the screen did not help).
    assert any(f"shown only from {MIN_AUDITED}" in w for w in est.extra["warnings"])
    assert est.warnings
    if est.extra["fallback"]:
        assert any("decided records in this figure's denominator" in w for w in est.warnings)
    else:
        assert "WARNING" in est.notes


def _census(force, tmp_path):
    """A copy of the force with every frame record sampled and decided by the oracle."""
    import shutil

    from crimeaudit.audit import draw_sample, oracle_review
    from crimeaudit.audit.design import SampleDesign, frame_size
    from crimeaudit.store.project import Project

    d = tmp_path / "census"
    shutil.copytree(force, d)
    proj = Project.open(d)
    n = frame_size(proj, SampleDesign("srs", size=1))
    sample = draw_sample(proj, kind="srs", size=n, seed=1)
    oracle_review(proj, sample_id=sample.sample_id)
    return proj, sample


def test_ppi_census_with_lambda_one_is_the_census_rate(force, tmp_path):
    # Crimes linked to no incident are on the population side with f = 1, r = 1; their sampled
    # counterparts must be there too (including those judged cannot_tell, with s = 0), or a
    # census is biased (0.9094 against 0.9009 when they were dropped from the sample side).
    from crimeaudit.audit import estimate

    proj, sample = _census(force, tmp_path)
    try:
        classical = estimate(proj, sample.sample_id, write=False).get("recording_rate")
        for lam in (0.0, 1.0, 0.5):
            est = estimate_ppi(proj, sample_id=sample.sample_id, lam=lam)[0]
            assert est.estimate == pytest.approx(classical.estimate, abs=1e-12), lam
        assert (sample.records.record_type == "crime").any()
    finally:
        proj.close()


def test_ppi_with_a_useless_screen_is_never_wider_than_wilson(force, tmp_path):
    import shutil

    from crimeaudit.audit import draw_sample, estimate, oracle_review
    from crimeaudit.store.project import Project

    d = tmp_path / "useless"
    shutil.copytree(force, d)
    with Project.open(d) as proj:
        ids = proj.engine.to_pandas(proj.engine.table("screen_scores")).incident_id
        rng = np.random.default_rng(3)
        proj.engine.write("screen_scores", pa.table(
            {"incident_id": ids.astype(str), "p_crime": rng.uniform(size=len(ids))}))
        for seed in (1, 2, 3):
            sample = draw_sample(proj, kind="srs", size=400, seed=seed)
            oracle_review(proj, sample_id=sample.sample_id)
            wilson_rate = estimate(proj, sample.sample_id, write=False).get("recording_rate")
            ppi = estimate_ppi(proj, sample_id=sample.sample_id)[0]
            assert ppi.upper - ppi.lower <= wilson_rate.upper - wilson_rate.lower + 1e-12
            if ppi.extra["fallback"]:
                assert (ppi.lower, ppi.upper) == (wilson_rate.lower, wilson_rate.upper)
                assert "PPI++ fallback" in ppi.method
