"""Figures carry the warnings a reader must see, and small domains get honest intervals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crimeaudit.audit.estimators import kish_n, stratified_ratio


def test_a_domain_where_every_record_agrees_uses_kish_not_the_raw_count():
    # Twelve rape records, all recorded, spread over strata with very unequal weights: the
    # variance is 0, and the effective size must reflect the weights (and the few degrees of
    # freedom), not claim twelve equally weighted records.
    strata = np.array(["a"] * 8 + ["b"] * 3 + ["c"] * 1 + ["a"] * 200 + ["b"] * 50)
    z = np.r_[np.ones(12), np.zeros(250)]
    y = z.copy()
    pop = {"a": 2080, "b": 5300, "c": 900}
    r = stratified_ratio(y, z, strata, pop)
    w = np.array([pop[h] / (strata == h).sum() for h in strata])[:12]
    kg = (stats.t.ppf(0.975, 11) / stats.t.ppf(0.975, 12 - 3)) ** 2
    assert r.variance == 0 and r.n_kish == pytest.approx(kish_n(w))
    assert r.n_effective == pytest.approx(kish_n(w) * kg) and r.n_effective < 12
    # The interval is wider than Wilson on twelve records would be.
    from crimeaudit.uncertainty import wilson

    assert r.lower < wilson(12, 12)[0]


def test_korn_graubard_degrees_of_freedom_shrink_a_small_domain_spread_over_strata():
    rng = np.random.default_rng(4)
    strata = np.repeat(list("abcdefgh"), 50)
    z = (rng.random(400) < 0.05).astype(float)   # about 20 records over 8 strata
    y = z * (rng.random(400) < 0.7)
    pop = {h: 5000 for h in "abcdefgh"}
    r = stratified_ratio(y, z, strata, pop)
    m = int(z.sum())
    h_d = len(set(strata[z > 0]))
    assert r.df == m - h_d
    raw = r.estimate * (1 - r.estimate) / r.variance
    assert r.n_effective == pytest.approx(
        raw * (stats.t.ppf(0.975, m - 1) / stats.t.ppf(0.975, m - h_d)) ** 2)



def test_a_domain_thin_in_a_heavy_stratum_claims_no_more_than_kishs_count():
    # The national-2014 shape: a domain with 10 records in a stratum of weight 80 and 28 in one
    # of weight 29. When all 10 heavy records agree, the linearised variance comes out small
    # and R(1 - R)/V claims more records than the weights allow; the domain is capped at
    # Kish's count, the whole frame (the design's own target) is not.
    strata = np.array(["other"] * 380 + ["violence"] * 480)
    z = np.zeros(860)
    z[:10] = 1
    z[380:408] = 1
    y = z.copy()
    y[380:384] = 0   # the heavy stratum's 10 all recorded, 4 of 28 light ones not
    pop = {"other": 31_000, "violence": 14_000}
    w = np.array([pop[h] / (strata == h).sum() for h in strata])
    dom = stratified_ratio(y, z, strata, pop, domain=True)
    free = stratified_ratio(y, z, strata, pop)
    raw = free.estimate * (1 - free.estimate) / free.variance
    kish = kish_n(w[z > 0])
    assert raw > kish   # the variance claims more records than the weights allow ...
    kg = (stats.t.ppf(0.975, 37) / stats.t.ppf(0.975, 36)) ** 2
    assert dom.n_effective == pytest.approx(kish * kg)   # ... and the domain is capped
    assert dom.extra == {"n_eff_capped": True} and not free.extra
    assert (dom.estimate, dom.variance) == (free.estimate, free.variance)
    assert dom.lower < free.lower and dom.upper >= free.upper
    # Where the heavy stratum's records disagree, the variance claims fewer records than
    # Kish's count, and the domain's interval is the variance's own.
    y2 = z.copy()
    y2[:5] = 0
    mixed = stratified_ratio(y2, z, strata, pop, domain=True)
    assert not mixed.extra and mixed.n_effective < kish
    plain = stratified_ratio(y2, z, strata, pop)
    assert (mixed.lower, mixed.upper) == (plain.lower, plain.upper)

@pytest.fixture(scope="module")
def force(tmp_path_factory):
    from crimeaudit.simulation import simulate
    from crimeaudit.store.project import Project

    d = tmp_path_factory.mktemp("warn_force")
    Project.init(d)
    sim = simulate("kent-2013", seed=13, n_incidents=3000)
    with Project.open(d) as proj:
        for name, t in sim.tables.items():
            proj.engine.write(name, t)
    return d


def test_an_undecided_stratum_and_small_domains_are_flagged_on_every_figure(force):
    from crimeaudit.audit import draw_sample, estimate, oracle
    from crimeaudit.audit.review import cancelled_records, store_decisions, validate_rows
    from crimeaudit.store.project import Project

    with Project.open(force) as proj:
        s = draw_sample(proj, kind="stratified", size=500, seed=2, strata_by=("strand",))
        rows = oracle._decide(proj, s, 0.0, 0)
        strata = dict(zip(s.records.record_id, s.records.stratum, strict=True))
        gone = "robbery"
        assert gone in s.population
        kept = [(line, d) for line, d in rows if strata[d["record_id"]] != gone]
        clean = validate_rows(kept, s, cancelled_records(proj, s), proj.codes, "oracle",
                              auditor="oracle", corrections=True)
        store_decisions(proj, clean, source="oracle", batch="partial")
        res = estimate(proj, s.sample_id, by=("strand",), write=False)
    for e in res.estimates:
        assert any(f"strata with no decided record: {gone}" in w for w in e.warnings), e
        assert any("sampled records are decided" in w for w in e.warnings)
    small = [e for e in res.estimates if e.unit == "proportion" and e.denominator < 30]
    assert small and all(any("fewer than 30" in w for w in e.warnings) for e in small)


def test_estimate_says_where_kishs_cap_limited_a_domain(force):
    # Through `estimate`: a Neyman sample by strand, figures by strand and division. Some
    # domains are capped at Kish's count, the whole frame of the stratified sample never is,
    # and a figure says in its notes exactly when it was.
    from crimeaudit.audit import draw_sample, estimate, oracle_review
    from crimeaudit.store.project import Project

    with Project.open(force) as proj:
        s = draw_sample(proj, kind="stratified", size=900, seed=5, strata_by=("strand",),
                        allocation="neyman")
        oracle_review(proj, s.sample_id, error_rate=0.0, seed=1)
        res = estimate(proj, s.sample_id, by=("strand", "division"), write=False)
    figures = [e for e in res.estimates if e.unit == "proportion" and e.se]
    capped = [e for e in figures if e.extra.get("n_eff_capped")]
    assert capped and all(e.scope != "all" for e in capped)
    for e in capped:
        assert "limited to Kish's weighted count" in e.notes
    for e in figures:
        if "limited to Kish's" not in e.notes:
            assert not e.extra.get("n_eff_capped")


def test_a_design_the_coverage_benchmark_never_ran_says_so(force):
    # Strata by division are not in bench_pipeline_coverage: every figure says its coverage
    # was not measured; a design the benchmark ran (strata by strand) does not say it.
    from crimeaudit.audit import draw_sample, estimate, oracle_review
    from crimeaudit.store.project import Project

    with Project.open(force) as proj:
        s = draw_sample(proj, kind="stratified", size=400, seed=8, strata_by=("division",))
        oracle_review(proj, s.sample_id, error_rate=0.0, seed=2)
        res = estimate(proj, s.sample_id, write=False)
        t = draw_sample(proj, kind="stratified", size=400, seed=9, strata_by=("strand",))
        oracle_review(proj, t.sample_id, error_rate=0.0, seed=2)
        ran = estimate(proj, t.sample_id, write=False)
    note = "the pipeline coverage benchmark has not run this design (stratified by division)"
    assert res.estimates and all(note in e.notes for e in res.estimates)
    assert not any("has not run this design" in e.notes for e in ran.estimates)
