"""Figures a user can quote (issue 17): plan's assurance, double review from the CLI, the
unrecorded count in the rate's own terms, and warnings a reader sees in the terminal and JSON."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from crimeaudit.cli import app

runner = CliRunner()


def _cli(*args: str):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def _reached(n: int, margin: float, p0: float, share: float, reps: int = 20000) -> float:
    """Share of simulated audits of n records whose Wilson half-width is within the margin
    (statsmodels' Wilson, not crimeaudit's)."""
    rng = np.random.default_rng(7)
    m = rng.binomial(n, share, reps)
    x = rng.binomial(m, p0)
    lo, hi = proportion_confint(x, np.maximum(m, 1), 0.05, method="wilson")
    return float(np.mean((hi - lo) / 2 <= margin + 1e-12))


@pytest.mark.parametrize("share", [1.0, 0.6])
def test_plan_with_assurance_reaches_the_margin_in_that_share_of_audits(share):
    args = ["plan", "--margin", "0.02", "--expected", "0.85", "--crime-share", share, "--json"]
    p80 = json.loads(_cli(*args, "--assurance", "0.8"))[0]
    p50 = json.loads(_cli(*args, "--assurance", "0.5"))[0]
    assert p80["assurance"] == 0.8 and p80["achieved"] >= 0.8
    assert "without finite-population correction" in p80["assumptions"]
    assert p50["n_records"] < p80["n_records"]
    # What the audit team will notice: 80% of audits of the planned size reach +/-2 points,
    # where the textbook size (about the 0.5 plan) reaches it in about half.
    assert 0.8 <= _reached(p80["n_records"], 0.02, 0.85, share) < 0.88
    assert _reached(p80["n_infinite"], 0.02, 0.85, 1.0) < 0.6


def test_plan_says_its_assurance_and_what_it_assumes():
    out = _cli("plan", "--margin", "0.03", "--expected", "0.9", "--assurance", "0.9")
    assert "90% assurance" in out and "Assumes:" in out
    assert "finite-population correction" in out and "about half of audits" in out


@pytest.fixture(scope="module")
def force(tmp_path_factory):
    from crimeaudit.simulation import simulate
    from crimeaudit.store.project import Project

    sim = simulate("kent-2013", seed=9, n_incidents=3000)
    dirs = {}
    for name, period in (("period", (dt.date(2013, 3, 1), dt.date(2013, 8, 31))),
                         ("open", (None, None))):
        d = tmp_path_factory.mktemp(f"figures_{name}")
        Project.init(d, audit_period_start=period[0], audit_period_end=period[1])
        with Project.open(d) as proj:
            for tname, t in sim.tables.items():
                proj.engine.write(tname, t)
        dirs[name] = d
    dirs["tables"] = {k: t.to_pandas() for k, t in sim.tables.items()}
    return dirs


def test_double_review_from_the_cli_reports_agreement_and_the_corrected_rate(force):
    d = force["open"]
    _cli("sample", d, "--design", "srs", "--size", "800", "--seed", "5")
    out = _cli("review", "oracle", d, "--error-rate", "0.05", "--seed", "2",
               "--second-share", "0.25")
    assert "blind second review of" in out and "disagreements adjudicated" in out
    doc = json.loads(_cli("estimate", d, "--json"))
    figs = {(e["measure"], e["scope"]): e for e in doc["estimates"]}
    kappa = figs[("agreement_should_record", "all")]
    assert kappa["unit"] == "kappa" and 0 < kappa["lower"] < kappa["estimate"] < 1
    for q in ("sensitivity_should_record", "specificity_should_record"):
        assert 0.5 < figs[(q, "all")]["estimate"] <= 1
    adj, rate = figs[("recording_rate_adjusted", "all")], figs[("recording_rate", "all")]
    assert adj["lower"] < adj["estimate"] < adj["upper"]
    # The corrected interval carries the uncertainty of the measured error rates: wider.
    assert adj["upper"] - adj["lower"] > rate["upper"] - rate["lower"]
    # The uncorrected rate never stands silently: it says the correction exists.
    assert any("recording_rate_adjusted" in w for w in rate["warnings"])
    assert any("recording_rate_adjusted" in w
               for w in figs[("unrecorded_per_year", "all")]["warnings"])
    assert doc["decisions"]["oracle_error_rates"] == [0.05]
    assert doc["decisions"]["double_review"]["records"] >= 0.2 * 800
    text = _cli("estimate", d)
    assert "recording_rate_adjusted" in text and "agreement_should_record" in text
    # The report's headline gives the corrected rate beside the uncorrected one.
    _cli("report", d, "--out", d / "r.html")
    head = json.loads((d / "r.json").read_text(encoding="utf-8"))["headline"]
    assert head["adjusted"]["estimate"] == pytest.approx(adj["estimate"])
    assert "Corrected for the auditors' own errors" in head["sentence"]
    assert f"{100 * adj['estimate']:.1f}%" in head["sentence"]
    assert "recording_rate (all): the first and a blind second review disagreed" in " ".join(
        text.split())
    # PPI++ rests on the same first review: it says so too.
    import pyarrow as pa

    from crimeaudit.store.project import Project

    truth = force["tables"]["truth_incidents"]
    with Project.open(d) as proj:
        proj.engine.write("screen_scores", pa.table({
            "incident_id": truth.incident_id.astype(str),
            "p_crime": np.where(truth.discloses_crime.to_numpy(bool), 0.9, 0.1)}))
    ppi = json.loads(_cli("estimate", d, "--method", "ppi", "--json"))["estimates"][0]
    assert ppi["measure"] == "recording_rate"
    assert any("recording_rate_adjusted" in w for w in ppi["warnings"])


def test_an_erring_auditor_without_double_review_is_warned_not_just_noted(force, tmp_path):
    """The simulated auditor's error rate is known to the tool: with no double review to
    measure it, every figure (and PPI++) warns that its interval leaves that error out; with a
    perfect auditor nothing is said."""
    import shutil

    d = tmp_path / "erring"
    shutil.copytree(force["open"], d)
    _cli("sample", d, "--design", "srs", "--size", "300", "--seed", "4")
    _cli("review", "oracle", d, "--error-rate", "0.02", "--seed", "3")
    doc = json.loads(_cli("estimate", d, "--json"))
    said = "simulated auditor with error rate 2% and no double review"
    props = [e for e in doc["estimates"] if e["scope"] == "all"]
    assert {e["measure"] for e in props} >= {"recording_rate", "timeliness",
                                              "unrecorded_per_year"}
    assert all(any(said in w for w in e["warnings"]) for e in props)
    assert said in " ".join(_cli("estimate", d).split())
    _cli("review", "oracle", d, "--error-rate", "0", "--seed", "3")
    doc = json.loads(_cli("estimate", d, "--json"))
    assert not any(said in w for e in doc["estimates"] for w in e["warnings"])


def test_unrecorded_count_is_in_the_rate_terms_and_states_its_window(force):
    from crimeaudit.audit import draw_sample, estimate, oracle_review
    from crimeaudit.store.project import Project

    start, end = dt.date(2013, 3, 1), dt.date(2013, 8, 31)
    inc, crimes = force["tables"]["incidents"], force["tables"]["crimes"]
    in_period = (inc.reported_at >= pd.Timestamp(start)) & (
        inc.reported_at < pd.Timestamp(end + dt.timedelta(1)))
    ids = set(inc.incident_id)
    linked = crimes[crimes.incident_id.isin(ids)]
    when = crimes.reported_at.fillna(crimes.recorded_at)
    orphans = crimes[~crimes.incident_id.isin(ids) & (when >= pd.Timestamp(start))
                     & (when < pd.Timestamp(end + dt.timedelta(1)))]
    with_crime = set(linked.incident_id) & set(inc[in_period].incident_id)
    live = set(linked[linked.status == "recorded"].incident_id) & with_crime
    expected_c = len(with_crime) + len(orphans)
    assert len(live) < len(with_crime)  # the force has incidents whose crimes were cancelled
    with Project.open(force["period"]) as proj:
        s = draw_sample(proj, kind="srs", size=400, seed=3)
        oracle_review(proj, s.sample_id)
        u = estimate(proj, s.sample_id, write=False).get("unrecorded_per_year")
    # C counts every frame record with a crime recorded at any time, cancelled or not (the
    # rate counts a cancelled crime as recorded), over the configured audit period.
    assert u.extra["linked_records"] == expected_c
    assert u.extra["window"] == "the audit period"
    assert (u.extra["window_start"], u.extra["window_end"]) == ("2013-03-01", "2013-08-31")
    assert u.extra["days"] == 184 and "2013-03-01 to 2013-08-31" in u.notes
    assert u.lower < u.estimate < u.upper and u.se > 0
    # A count per year: C p/(1-p) scaled from 184 days to 365.
    p = u.extra["share"]
    assert u.estimate == pytest.approx(expected_c * p / (1 - p) * 365 / 184)

    with Project.open(force["open"]) as proj:
        s = draw_sample(proj, kind="srs", size=300, seed=4)
        oracle_review(proj, s.sample_id)
        u = estimate(proj, s.sample_id, write=False).get("unrecorded_per_year")
    assert "no audit period is configured" in u.extra["window"]
    assert u.extra["window_start"] == inc.reported_at.min().date().isoformat()


def test_warnings_reach_the_terminal_and_json(force, tmp_path):
    import shutil

    from crimeaudit.audit import draw_sample, oracle
    from crimeaudit.audit.review import cancelled_records, store_decisions, validate_rows
    from crimeaudit.store.project import Project

    d = tmp_path / "partial"
    shutil.copytree(force["open"], d)
    with Project.open(d) as proj:
        s = draw_sample(proj, kind="stratified", size=400, seed=2, strata_by=("strand",))
        rows = oracle._decide(proj, s, 0.0, 0)
        strata = dict(zip(s.records.record_id, s.records.stratum, strict=True))
        kept = [(line, r) for line, r in rows if strata[r["record_id"]] != "robbery"]
        clean = validate_rows(kept, s, cancelled_records(proj, s), proj.codes, "oracle",
                              auditor="oracle", corrections=True)
        store_decisions(proj, clean, source="oracle", batch="partial")
    doc = json.loads(_cli("estimate", d, "--by", "strand", "--json"))
    rate = next(e for e in doc["estimates"]
                if e["measure"] == "recording_rate" and e["scope"] == "all")
    assert any("strata with no decided record: robbery" in w for w in rate["warnings"])
    assert any("sampled records are decided" in w for w in rate["warnings"])
    small = [e for e in doc["estimates"] if e["unit"] == "proportion" and e["denominator"] < 30]
    assert small and all(any("fewer than 30" in w for w in e["warnings"]) for e in small)
    text = " ".join(_cli("estimate", d, "--by", "strand").split())
    assert "recording_rate (all): strata with no decided record: robbery" in text
    assert "fewer than 30" in text


def test_a_figure_the_benchmark_found_short_carries_the_measured_coverage(force, tmp_path,
                                                                            monkeypatch):
    import shutil

    from crimeaudit.audit import shortfalls

    d = tmp_path / "short"
    shutil.copytree(force["open"], d)
    row = {"measure": "timeliness", "design": "srs", "n": 400, "scope": "all",
           "scenario": "kent-2013", "reps": 1000, "coverage": 0.912, "mc_lower": 0.893,
           "mc_upper": 0.928}
    monkeypatch.setattr(shortfalls, "shortfalls", lambda: (row,))
    monkeypatch.setattr(shortfalls, "measured", lambda: (row,))
    _cli("sample", d, "--design", "srs", "--size", "500", "--seed", "5")
    _cli("review", "oracle", d)
    doc = json.loads(_cli("estimate", d, "--json"))
    figs = {(e["measure"], e["scope"]): e for e in doc["estimates"]}
    flagged = [w for w in figs[("timeliness", "all")]["warnings"]
               if "pipeline coverage benchmark" in w]
    assert len(flagged) == 1 and "91.2% of audits" in flagged[0]
    assert "about a 91% interval" in flagged[0]
    # Only where it fell short: not the other figures, not another design or size.
    assert not any("pipeline coverage benchmark" in w
                   for e in doc["estimates"] if e["measure"] != "timeliness"
                   for w in e["warnings"])
    assert "91.2% of audits" in " ".join(_cli("estimate", d).split())
    _cli("sample", d, "--design", "srs", "--size", "150", "--seed", "6")
    _cli("review", "oracle", d)
    doc = json.loads(_cli("estimate", d, "--json"))
    assert not any("pipeline coverage benchmark" in w
                   for e in doc["estimates"] for w in e["warnings"])
    # The nearest measured size decides: measured at 600 and held there, a 600-record audit is
    # not flagged for the shortfall measured at 400.
    monkeypatch.setattr(shortfalls, "measured", lambda: (row, {**row, "n": 600}))
    _cli("sample", d, "--design", "srs", "--size", "600", "--seed", "7")
    _cli("review", "oracle", d)
    doc = json.loads(_cli("estimate", d, "--json"))
    assert not any("pipeline coverage benchmark" in w
                   for e in doc["estimates"] for w in e["warnings"])


def test_every_shipped_shortfall_is_among_the_shipped_measured_figures():
    from crimeaudit.audit.shortfalls import measured, shortfalls

    def key(r):
        return r["measure"], r["design"], r["n"], r["scope"], r["scenario"]

    judged = {key(r) for r in measured()}
    assert len(judged) > 100
    assert {key(r) for r in shortfalls()} <= judged


def test_the_shipped_shortfalls_are_figures_measured_below_their_level():
    from crimeaudit.audit.shortfalls import shortfalls

    for r in shortfalls():
        assert r["mc_upper"] < 0.95 and r["reps"] >= 100 and r["mc_lower"] < r["coverage"]
        assert r["design"] in ("srs", "prop", "neyman", "pps")


def test_the_estimates_table_keeps_a_figure_on_one_line_at_80_columns():
    # Methods are long: the table numbers them and names each once below, so a row (figure,
    # interval, method, counts) is one line of an 80-column terminal.
    from rich.console import Console

    from crimeaudit.cli.audit import estimates_table
    from crimeaudit.model.figures import Estimate

    long = "ratio to the linked-crime count (stratified-ratio+wilson-neff)"
    figs = [Estimate(measure="classification_accuracy", scope="all", estimate=0.955,
                     lower=0.938, upper=0.968, level=0.95, method="stratified-ratio+wilson-neff",
                     n=829, numerator=793, denominator=829),
            Estimate(measure="unrecorded_per_year", scope="all", estimate=2918, lower=2372,
                     upper=3589, level=0.95, method=long, n=933, unit="crimes")]
    console = Console(width=80, markup=False, record=True)
    console.print(estimates_table(figs, 0.95))
    text = console.export_text()
    row = next(line for line in text.splitlines() if line.lstrip().startswith("classif"))
    assert "95.5%" in row and "93.8% - 96.8%" in row and "[1]" in row and "793/829" in row
    assert "method [1]: stratified-ratio+wilson-neff" in text
    assert f"method [2]: {long}" in text
