"""Comparing audits and areas: intervals checked against statsmodels computed independently,
sentences, funnel limits, multiplicity, counts files and the command line.

Published figures used: the inspectorate's 2014 counts for Greater Manchester (265 of 388) and
Hampshire (67 of 112), and Kent 2017's published 83.6% with a half-width of 1.85 points. Every
other area below is synthetic, generated in the test, and named so.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
from typer.testing import CliRunner

from crimeaudit.comparison import (
    Audit,
    CompareError,
    compare,
    compare_areas,
    compare_pair,
    compare_trend,
    counts_area,
    funnel_of,
    read_counts,
    write_page,
)
from crimeaudit.comparison.difference import mover, rate_difference
from crimeaudit.model import Estimate
from crimeaudit.uncertainty import proportion_interval, wilson

PUBLISHED = "area,recorded,should_have_been\nGreater Manchester,265,388\nHampshire,67,112\n"
POINT = 0.001  # 0.1 percentage points


def synthetic_counts(k: int = 12, seed: int = 4) -> str:
    """Synthetic areas (not real forces): rates around 85% with real between-area spread."""
    rng = np.random.default_rng(seed)
    lines = ["area,recorded,should_have_been"]
    for i in range(k):
        n = int(rng.integers(150, 1200))
        p = float(np.clip(rng.normal(0.85, 0.03), 0.5, 0.99))
        lines.append(f"Synthetic {i + 1},{rng.binomial(n, p)},{n}")
    return "\n".join(lines) + "\n"


def _rate(x: int, n: int, label: str = "A", kind: str = "srs", **kw) -> Audit:
    lo, hi = proportion_interval(x, n)  # an audit figure's interval (srs_ratio's)
    e = Estimate("recording_rate", "all", x / n, lo, hi, 0.95, "wilson", n, x, n,
                 se=math.sqrt(x / n * (1 - x / n) / n), n_effective=n, sample_id=label)
    return Audit(label, (e,), design={"kind": kind}, **kw)


# -- published counts: Wilson and Newcombe against statsmodels, directly -----------------------


def test_published_counts_give_wilson_intervals_matching_statsmodels(tmp_path):
    f = tmp_path / "forces.csv"
    f.write_text(PUBLISHED, encoding="utf-8")
    res = compare(counts=f)
    by = {a.area: a for a in res.areas}
    for area, x, n in (("Greater Manchester", 265, 388), ("Hampshire", 67, 112)):
        lo, hi = proportion_confint(x, n, alpha=0.05, method="wilson")
        assert abs(by[area].lower - lo) < POINT and abs(by[area].upper - hi) < POINT
        assert by[area].estimate == pytest.approx(x / n)
        assert by[area].n == n
    # Highest rate first, as a league table reads.
    assert [a.area for a in res.areas] == ["Greater Manchester", "Hampshire"]


def test_published_difference_interval_matches_newcombe_from_statsmodels(tmp_path):
    f = tmp_path / "forces.csv"
    f.write_text(PUBLISHED, encoding="utf-8")
    res = compare(counts=f, pairs=True)
    (pair,) = res.pairs
    assert (pair.label_a, pair.label_b) == ("Greater Manchester", "Hampshire")
    lo, hi = confint_proportions_2indep(67, 112, 265, 388, method="newcomb", alpha=0.05)
    assert abs(pair.lower - lo) < POINT and abs(pair.upper - hi) < POINT
    assert pair.difference == pytest.approx(67 / 112 - 265 / 388)
    # The interval includes no change: the sentence must not claim a difference.
    assert pair.lower < 0 < pair.upper
    assert pair.sentence == (
        "The recording rate was 68.3% (63.5-72.7) in Greater Manchester and 59.8% "
        "(50.6-68.4) in Hampshire; Hampshire is 8.5 points lower (95% CI -1.4 to 18.7), "
        "which is not a clear difference.")


def test_mover_on_wilson_intervals_is_newcombe():
    x_a, n_a, x_b, n_b = 1254, 1500, 1449, 1500
    la, ua = wilson(x_a, n_a)
    lb, ub = wilson(x_b, n_b)
    lo, hi = mover(x_a / n_a, (la, ua), x_b / n_b, (lb, ub))
    ref = confint_proportions_2indep(x_b, n_b, x_a, n_a, method="newcomb")
    assert lo == pytest.approx(ref[0], abs=1e-9) and hi == pytest.approx(ref[1], abs=1e-9)


def test_rates_published_only_with_half_width_use_the_implied_variance_and_say_so(tmp_path):
    f = tmp_path / "published.csv"
    # Kent 2017 is published; the second row is synthetic.
    f.write_text("area,rate,half_width,n\nKent 2017,83.6,1.85,\nSynthetic force,90.1,2.0,1200\n",
                 encoding="utf-8")
    res = compare(counts=f, pairs=True)
    kent = next(a for a in res.areas if a.area == "Kent 2017")
    assert kent.lower == pytest.approx(0.836 - 0.0185)
    assert kent.upper == pytest.approx(0.836 + 0.0185)
    (pair,) = res.pairs
    se = math.hypot(0.0185 / 1.959964, 0.020 / 1.959964)
    d = 0.901 - 0.836
    assert pair.difference == pytest.approx(d)
    assert pair.lower == pytest.approx(d - 1.959964 * se, abs=1e-5)
    assert pair.upper == pytest.approx(d + 1.959964 * se, abs=1e-5)
    assert any("half-width" in n and "implies" in n for n in res.notes)
    # Kent 2017 published no n: the n shown is implied, and the notes say which area.
    assert kent.n == round(0.836 * 0.164 / (0.0185 / 1.959964) ** 2)
    assert any(n.startswith("no sample size published for Kent 2017:") for n in res.notes)
    assert not any("Synthetic force" in n for n in res.notes if "no sample size" in n)


def test_pairs_are_holm_adjusted_over_all_pairs(tmp_path):
    f = tmp_path / "synthetic.csv"
    f.write_text(synthetic_counts(8), encoding="utf-8")
    res = compare(counts=f, pairs=True)
    assert len(res.pairs) == 8 * 7 // 2
    raw = [d.p_value for d in res.pairs]
    assert [d.p_adjusted for d in res.pairs] == pytest.approx(
        list(multipletests(raw, method="holm")[1]))
    bh = compare(counts=f, pairs=True, adjust="bh")
    assert [d.p_adjusted for d in bh.pairs] == pytest.approx(
        list(multipletests(raw, method="fdr_bh")[1]))
    assert all(d.p_adjusted >= d.p_value - 1e-12 for d in res.pairs)


# -- funnel ----------------------------------------------------------------------------------


def test_funnel_flags_an_outlying_area_and_not_the_ordinary_ones():
    rng = np.random.default_rng(9)
    areas = []
    for i in range(15):  # synthetic areas
        n = int(rng.integers(300, 1500))
        areas.append(counts_area(f"Synthetic {i}", int(rng.binomial(n, 0.88)), n))
    areas.append(counts_area("Synthetic outlier", 560, 800))  # 70%
    res = compare_areas(areas)
    assert res.outside(0.998) == ["Synthetic outlier"]
    assert res.positions["Synthetic outlier"] == "below 99.8%"
    assert len(res.outside(0.95)) <= 3


def test_overdispersion_widens_the_limits_and_is_named():
    rng = np.random.default_rng(2)
    n = rng.integers(800, 3000, size=20)
    rates = np.clip(rng.normal(0.85, 0.04, size=20), 0.6, 0.99)  # real spread between areas
    add = funnel_of(rates, n, "additive")
    none = funnel_of(rates, n, "none")
    mult = funnel_of(rates, n, "multiplicative")
    assert add.tau2 > 0 and mult.phi > 1
    assert add.sd(1000) > none.sd(1000) and mult.sd(1000) > none.sd(1000)
    flagged = lambda f: sum(f.position(r, m) != "within" for r, m in zip(rates, n, strict=True))  # noqa: E731
    assert flagged(add) < flagged(none)
    assert "Spiegelhalter" in add.describe() and "additive" in add.describe()
    # Too few areas: no over-dispersion estimated, and the funnel says so.
    few = funnel_of(rates[:3], n[:3], "additive")
    assert few.dispersion == "none" and "fewer than" in few.describe()


# -- two audits ------------------------------------------------------------------------------


def test_pair_sentence_in_the_commissioners_style():
    res = compare_pair(_rate(1254, 1500, "Kent 2017"), _rate(1449, 1500, "Kent 2018"))
    d = res.get("recording_rate")
    assert d.method == "newcombe"
    assert d.sentence == ("The recording rate rose from 83.6% (81.6-85.4) to 96.6% "
                          "(95.6-97.4); a rise of 13.0 points (95% CI 10.9 to 15.1).")
    back = compare_pair(_rate(1449, 1500, "Kent 2018"), _rate(1254, 1500, "Kent 2019"))
    assert back.get("recording_rate").sentence.startswith(
        "The recording rate fell from 96.6% (95.6-97.4) to 83.6% (81.6-85.4); a fall of "
        "13.0 points (95% CI 10.9 to 15.1)")
    assert d.p_value < 1e-6


def test_no_clear_change_is_said():
    d = compare_pair(_rate(540, 600), _rate(548, 600)).get("recording_rate")
    assert d.lower < 0 < d.upper and d.p_value > 0.05
    assert d.sentence.endswith("which could be no change.")


def test_design_based_figures_use_their_own_variance():
    # A stratified estimate: weighted rate, design-based se, Wilson at n_eff.
    p, se = 0.81, 0.012
    neff = p * (1 - p) / se ** 2
    lo, hi = wilson(p * neff, neff)
    strat = Estimate("recording_rate", "all", p, lo, hi, 0.95, "stratified-ratio+wilson-neff",
                     1500, 1180, 1460, se=se, n_effective=neff)
    srs = _rate(1449, 1500).estimates[0]
    d = rate_difference(strat, srs, "stratified", "srs")
    assert d.method == "mover"
    assert d.se == pytest.approx(math.hypot(se, srs.se))
    # Nearly symmetric intervals: close to the z test on the summed design variances.
    z = d.difference / d.se
    assert d.p_value == pytest.approx(2 * norm.sf(z), rel=0.2)
    assert d.lower == pytest.approx(d.difference - 1.96 * d.se, abs=0.004)


def test_p_value_agrees_with_the_interval():
    rng = np.random.default_rng(3)
    for _ in range(60):
        n_a, n_b = (int(v) for v in rng.integers(5, 400, size=2))
        x_a, x_b = int(rng.binomial(n_a, 0.9)), int(rng.binomial(n_b, 0.93))
        kind = "srs" if rng.random() < 0.5 else "stratified"
        d = rate_difference(_rate(x_a, n_a).estimates[0], _rate(x_b, n_b).estimates[0],
                            kind, kind)
        if d.difference == 0:
            assert d.p_value == 1.0
            continue
        assert (d.p_value < 0.05) == (d.lower > 0 or d.upper < 0), (x_a, n_a, x_b, n_b)


def test_unrecorded_crimes_are_compared_from_their_standard_errors():
    def audit(label, rate, u, se_u):
        r = Estimate("recording_rate", "all", rate, rate - 0.02, rate + 0.02, 0.95, "wilson",
                     1000, rate * 1000, 1000, se=0.01)
        un = Estimate("unrecorded_per_year", "all", u, u - 2 * se_u, u + 2.2 * se_u, 0.95,
                      "C(1-r)/r at the wilson interval", 1000, unit="crimes", se=se_u)
        return Audit(label, (r, un), design={"kind": "srs"})

    res = compare_pair(audit("2017", 0.84, 6400.0, 700.0), audit("2018", 0.96, 1300.0, 300.0))
    d = res.get("unrecorded_per_year")
    se = math.hypot(700, 300)
    assert d.difference == pytest.approx(-5100)
    assert (d.lower, d.upper) == pytest.approx((-5100 - 1.959964 * se, -5100 + 1.959964 * se),
                                               rel=1e-5)
    assert d.sentence.startswith("Unrecorded crimes a year fell from 6,400")
    assert "a fall of 5,100" in d.sentence


def test_different_definitions_are_warned():
    a = _rate(900, 1000, "A", period_start="2017-01-01", period_end="2017-06-30",
              timeliness_hours=72, code_lists="aaa")
    b = _rate(950, 1000, "B", period_start="2018-01-01", period_end="2018-12-31",
              timeliness_hours=24, code_lists="bbb")
    b.level = 0.9
    res = compare_pair(a, b)
    text = " | ".join(res.warnings)
    assert "timeliness limit differs" in text
    assert "code lists differ" in text
    assert "confidence levels differ" in text
    assert "periods differ in length" in text
    same = compare_pair(_rate(900, 1000, "A", period_start="2017-01-01",
                              period_end="2017-06-30"),
                        _rate(950, 1000, "B", period_start="2018-01-01",
                              period_end="2018-06-30"))
    assert same.warnings == []
    assert any("periods:" in n for n in same.notes)


# -- over time -------------------------------------------------------------------------------


def test_monthly_programme_gives_a_p_chart_that_flags_the_odd_month():
    months = [_rate(x, 150, f"2024-{m:02d}", period_start=f"2024-{m:02d}-01",
                    period_end=f"2024-{m:02d}-28")
              for m, x in enumerate([128, 131, 127, 130, 129, 104, 128], start=1)]
    res = compare_trend(months)
    assert [p["outside"] for p in res.control.points] == [False] * 5 + [True, False]
    assert len(res.steps) == 6
    assert res.steps[4].significant and res.steps[4].difference < 0
    assert res.homogeneity["p"] < 0.01
    frame = res.to_frame()
    assert list(frame.audit) == [f"2024-{m:02d}" for m in range(1, 8)]


# -- outputs ---------------------------------------------------------------------------------


def test_results_objects_have_summary_frame_and_strict_json(tmp_path):
    f = tmp_path / "forces.csv"
    f.write_text(PUBLISHED, encoding="utf-8")
    res = compare(counts=f, pairs=True)
    assert "League table" in res.summary() and "Greater Manchester" in res.summary()
    assert list(res.to_frame().area) == ["Greater Manchester", "Hampshire"]
    doc = json.loads(res.to_json())
    assert {"area", "estimate", "lower", "upper", "n"} <= set(doc["areas"][0])
    assert {"a", "b", "difference", "lower", "upper", "p", "p_adjusted"} <= set(doc["pairs"][0])
    pair = compare_pair(_rate(900, 1000), _rate(950, 1000))
    assert "newcombe" in pair.summary()
    assert pair.to_frame().loc[0, "difference"] == pytest.approx(0.05)


def test_page_is_offline_html_with_funnel_and_league(tmp_path):
    f = tmp_path / "synthetic.csv"
    f.write_text(synthetic_counts(10), encoding="utf-8")
    paths = write_page(compare(counts=f, pairs=True), tmp_path / "out")
    html = paths["html"].read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert 'id="chart-funnel"' in html and html.count("<svg") >= 2
    assert "Synthetic 1" in html
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["kind"] == "areas"


# -- counts files ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("area,recorded,should_have_been\nX,400,388\n", "line 2: recorded (400) is more than"),
    ("area,recorded,should_have_been\nX,abc,388\n", "line 2: recorded 'abc' is not a number"),
    ("area,recorded\nX,4\n", "needs columns recorded and should_have_been"),
    ("area,recorded,should_have_been\nX,1,2\nX,1,3\n", "line 3: area 'X' appears twice"),
    ("recorded,should_have_been\n1,2\n", "no 'area' column"),
    ("area,recorded,should_have_been\nX,0,0\n", "should_have_been is 0"),
    # Rates as proportions with half-widths in points: refused, not read as +/-100%.
    ("area,rate,half_width,n\nX,0.836,1.85,1500\n", "line 2: half_width 1.85 is half the"),
])
def test_bad_counts_files_are_one_clear_error(tmp_path, text, message):
    f = tmp_path / "bad.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(CompareError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_counts(f)


def test_cli_counts_pairs_json_and_errors(tmp_path):
    from crimeaudit.cli import app

    f = tmp_path / "forces.csv"
    f.write_text(PUBLISHED, encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(app, ["compare", "--counts", str(f), "--pairs", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    gm = next(a for a in doc["areas"] if a["area"] == "Greater Manchester")
    assert gm["n"] == 388 and abs(gm["lower"] - 0.635) < POINT
    assert doc["pairs"][0]["a"] == "Greater Manchester" and "p_adjusted" in doc["pairs"][0]
    r = runner.invoke(app, ["compare", "--counts", str(f), "--out", str(tmp_path / "page")])
    assert r.exit_code == 0, r.output
    assert "League table" in r.stdout and (tmp_path / "page" / "compare.html").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("area,recorded,should_have_been\nX,9,4\n", encoding="utf-8")
    r = runner.invoke(app, ["compare", "--counts", str(bad)])
    assert r.exit_code == 2
    assert "recorded (9) is more than should_have_been (4)" in r.output
    r = runner.invoke(app, ["compare", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "not a crimeaudit project" in r.output
    # Published rates with only a half-width (Kent 2017 published; the other synthetic): the
    # output says the implied variance was used, in the text and in --json.
    pub = tmp_path / "published.csv"
    pub.write_text("area,rate,half_width,n\nKent 2017,83.6,1.85,\nSynthetic,90.1,2.0,1200\n",
                   encoding="utf-8")
    r = runner.invoke(app, ["compare", "--counts", str(pub), "--pairs"])
    assert r.exit_code == 0, r.output
    assert "variance is the one the half-width implies" in " ".join(r.stdout.split())
    r = runner.invoke(app, ["compare", "--counts", str(pub), "--pairs", "--json"])
    doc = json.loads(r.stdout)
    assert any("half-width implies" in n for n in doc["notes"])
    assert {"a", "b", "difference", "lower", "upper", "p"} <= set(doc["pairs"][0])


@pytest.mark.parametrize("a, b", [((44, 45), (2035, 2037)), ((9, 10), (64, 64)),
                                  ((97, 100), (760, 760)), ((1254, 1500), (1449, 1500))])
def test_the_p_value_agrees_with_the_interval_near_the_ends(a, b):
    # Within 3 records of 100% the rates' intervals take the Poisson bound: the difference's
    # interval is built from those same intervals, so p < 0.05 exactly when it excludes 0.
    d = compare_pair(_rate(*a, "A"), _rate(*b, "B")).get("recording_rate")
    assert d.method == "newcombe"
    assert (d.lower > 0 or d.upper < 0) == (d.p_value < 0.05)
    if d.p_value > 1e-6:
        lo, hi = mover(d.a.estimate, d.a.conf_int(1 - d.p_value), d.b.estimate,
                       d.b.conf_int(1 - d.p_value))
        assert min(abs(lo), abs(hi)) < 1e-5
