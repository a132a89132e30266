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
