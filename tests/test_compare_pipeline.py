"""Comparisons through the pipeline a user runs: a simulated force that reforms, audited before
and after, compared by the API, the command line and the report."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import crimeaudit as ca
from crimeaudit.cli import app
from crimeaudit.comparison import write_page

BEFORE = (dt.date(2014, 4, 1), dt.date(2015, 3, 31))
AFTER = (dt.date(2015, 4, 1), dt.date(2016, 3, 31))


def _true_rate(project, start, end) -> float:
    eng = project.engine
    inc = eng.to_pandas(eng.table("incidents").select("incident_id", "reported_at"))
    truth = eng.to_pandas(eng.table("truth_incidents").select(
        "incident_id", "discloses_crime", "recorded"))
    df = inc.merge(truth, on="incident_id")
    day = df.reported_at.dt.date
    df = df[(day >= start) & (day <= end) & df.discloses_crime]
    return float(df.recorded.mean())


def _audit(project, start, end, seed, kind="srs", size=600):
    s = ca.draw_sample(project, kind=kind, size=size, seed=seed, period_start=start,
                       period_end=end, strata_by=("strand",))
    ca.oracle_review(project, s.sample_id)
    ca.estimate(project, s.sample_id, by=["strand"])
    return s.sample_id


@pytest.fixture(scope="module")
def reform(tmp_path_factory):
    """One project of the reform scenario with a sample from the year before and one after."""
    work = tmp_path_factory.mktemp("reform")
    ca.simulate("reform", seed=21, n_incidents=4000, out_dir=work / "force")
    files = sorted((work / "force").glob("*.parquet"))
    with ca.Project.init(work / "kent", name="Kent") as p:
        ca.ingest(p, "canonical", files)
        ca.link(p, ca.LinkSettings(probabilistic=False))
        before = _audit(p, *BEFORE, seed=1)
        after = _audit(p, *AFTER, seed=2)
        truth = (_true_rate(p, *BEFORE), _true_rate(p, *AFTER))
    return {"dir": work / "kent", "files": files, "before": before, "after": after,
            "truth": truth, "work": work}


def test_two_samples_of_one_project_are_compared_before_and_after(reform):
    res = ca.compare(reform["dir"])
    assert res.kind == "pair"
    assert res.a.sample_id == reform["before"] and res.b.sample_id == reform["after"]
    assert "2014-04-01 to 2015-03-31" in res.a.label
    d = res.get("recording_rate")
    true_change = reform["truth"][1] - reform["truth"][0]
    assert true_change > 0.1  # the reform worked in the simulation
    assert d.method == "newcombe"
    assert d.lower <= true_change <= d.upper
    assert d.p_value < 0.001
    assert re.fullmatch(r"The recording rate rose from \d+\.\d% \(\d+\.\d-\d+\.\d\) to "
                        r"\d+\.\d% \(\d+\.\d-\d+\.\d\); a rise of \d+\.\d points \(95% CI "
                        r"\d+\.\d to \d+\.\d\)\.", d.sentence), d.sentence
    # Unrecorded crimes a year fell with the rate, compared from the standard errors.
    u = res.get("unrecorded_per_year")
    assert u.difference < 0 and u.method == "normal"
    # By strand too, where both audits have the strand.
    assert ("recording_rate", "violence") in {(x.measure, x.scope) for x in res.differences}
    # Same force, same length of period: nothing measured differently.
    assert res.warnings == []


def test_cli_compares_samples_by_spec_with_json_and_page(reform, tmp_path):
    runner = CliRunner()
    d = str(reform["dir"])
    r = runner.invoke(app, ["compare", f"{d}@{reform['before']}", f"{d}@{reform['after']}",
                            "--json", "--out", str(tmp_path / "page")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    rate = next(x for x in doc["differences"]
                if x["measure"] == "recording_rate" and x["scope"] == "all")
    assert rate["difference"] > 0 and rate["lower"] < rate["difference"] < rate["upper"]
    assert rate["sentence"].startswith("The recording rate rose from")
    html = (tmp_path / "page" / "compare.html").read_text(encoding="utf-8")
    assert 'id="chart-difference"' in html and "<svg" in html and "<script" not in html
    r = runner.invoke(app, ["compare", d])
    assert r.exit_code == 0, r.output
    assert "The recording rate rose from" in r.stdout


def test_report_of_a_project_with_two_audits_shows_the_comparison(reform, tmp_path):
    paths = ca.write_report(reform["dir"], tmp_path / "report.html")
    html = paths["html"].read_text(encoding="utf-8")
    section = re.search(r'<section id="comparison">(.*?)</section>', html, re.S)
    assert section, "no comparison section"
    text = section.group(1)
    assert "The recording rate rose from" in text
    assert "<svg" in text
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["comparison"]["kind"] == "pair"


def test_report_compare_other_project_warns_of_a_different_time_limit(reform, tmp_path):
    other = tmp_path / "kent-2014"
    with ca.Project.init(other, name="Kent", timeliness_hours=72) as p:
        ca.ingest(p, "canonical", reform["files"])
        ca.link(p, ca.LinkSettings(probabilistic=False))
        _audit(p, *BEFORE, seed=5, kind="stratified", size=500)
    r = CliRunner().invoke(app, ["report", str(other), "--compare", str(reform["dir"]),
                                 "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = re.search(r'<section id="comparison">(.*?)</section>', html, re.S).group(1)
    assert "The recording rate rose from" in section  # the 72-hour audit is the earlier one
    assert "timeliness limit differs" in section
    assert "mover" in section  # a stratified sample: design-based variances
    # The other project alone has one audit: no comparison section.
    alone = ca.write_report(other, tmp_path / "alone.html")["html"].read_text(encoding="utf-8")
    assert 'id="comparison"' not in alone


def test_quarterly_audits_give_a_trend_with_a_control_chart(reform, tmp_path):
    quarters = [(dt.date(2014, 4, 1), dt.date(2014, 6, 30)),
                (dt.date(2014, 10, 1), dt.date(2014, 12, 31)),
                (dt.date(2015, 4, 1), dt.date(2015, 6, 30)),
                (dt.date(2015, 10, 1), dt.date(2015, 12, 31))]
    with ca.Project.init(tmp_path / "quarterly", name="Kent") as p:
        ca.ingest(p, "canonical", reform["files"])
        ca.link(p, ca.LinkSettings(probabilistic=False))
        for i, (start, end) in enumerate(reversed(quarters)):  # drawn out of order
            _audit(p, start, end, seed=10 + i, size=300)
        res = ca.compare(p)
        areas = ca.compare(p, kind="areas", pairs=True)
    assert res.kind == "trend"
    assert [a.period_start for a in res.audits] == [q[0] for q in quarters]
    assert len(res.steps) == 3 and res.control is not None
    # The reform falls between the second and third quarters.
    assert res.steps[1].difference > 0.08
    assert res.homogeneity["p"] < 0.001
    page = write_page(res, tmp_path / "page")["html"].read_text(encoding="utf-8")
    assert 'id="chart-trend"' in page
    # The same audits as areas: a league table of design-based figures, best first.
    assert areas.kind == "areas" and len(areas.areas) == 4
    rates = [a.estimate for a in areas.areas]
    assert rates == sorted(rates, reverse=True)
    assert areas.areas[0].area.startswith("Kent 2015")  # after the reform
    assert len(areas.pairs) == 6 and all(d.p_adjusted >= d.p_value for d in areas.pairs)
    assert any("fewer than 5 areas" in n for n in areas.notes)


def test_asking_for_a_sample_that_was_never_estimated_is_one_clear_error(reform):
    with pytest.raises(ca.CrimeauditError, match="has no stored estimates"):
        ca.compare(Path(f"{reform['dir']}@Snothere"), reform["dir"])
