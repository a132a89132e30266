"""The report from the figures contract: Estimate/Finding objects written where the stages
write them, rendered to HTML and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crimeaudit.audit import AuditEstimates
from crimeaudit.audit.figures_store import store_run
from crimeaudit.detect.findings_file import CHARTS_FILE, write_charts, write_findings
from crimeaudit.model.figures import FIGURES_VERSION, Estimate, Finding
from crimeaudit.report import ReportError, collect, one_in, write_report
from crimeaudit.report.html import render
from crimeaudit.store import Project

STRANDS = {"all": (1344, 1500), "violence": (380, 450), "sexual": (70, 90), "rape": (20, 26)}


def _estimates() -> list[Estimate]:
    from crimeaudit.audit import wilson

    out = []
    for scope, (x, n) in STRANDS.items():
        for measure in ("recording_rate", "timeliness", "classification_accuracy"):
            lo, hi = wilson(x, n, 0.95)
            out.append(Estimate(measure, scope, x / n, lo, hi, 0.95, "wilson", n, x, n))
        r = x / n
        out.append(Estimate("unrecorded_per_year", scope, 50_000 * (1 - r) / r,
                            50_000 * (1 - hi) / hi, 50_000 * (1 - lo) / lo, 0.95,
                            "C(1-r)/r at the wilson interval", n, unit="crimes"))
    out.append(Estimate("cancellation_wrong", "all", 0.2, 0.1, 0.3, 0.95, "wilson", 60, 12, 60))
    out.append(Estimate("victim_told", "all", 0.8, 0.7, 0.9, 0.95, "wilson", 60, 48, 60))
    return out


def _finding() -> Finding:
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "data": {"values": [{"day": d, "crimes": 10 + (d > 25) * 8} for d in range(1, 31)]},
            "mark": "bar", "encoding": {"x": {"field": "day", "type": "ordinal"},
                                        "y": {"field": "crimes", "type": "quantitative"}}}
    return Finding("period_end", "force", 1.8, 1.4, 2.3, "rate ratio", 1e-6, 1e-4,
                   "Recording jumps in the last days of each month.", method="poisson",
                   n=900, extra={"chart": spec})


def project_with_figures(tmp: Path, detection: bool = False, estimates=None) -> Path:
    """A project whose reports folder holds what the audit (and detection) would write."""
    d = tmp / "proj"
    with Project.init(d, name="Testshire") as p:
        src = tmp / "crimes.csv"
        src.write_text("id\n1\n", encoding="utf-8")
        p.log_run("ingest", inputs=[src], params={"profile": "canonical"})
        p.log_run("sample", params={"kind": "srs", "seed": 11, "size": 1500})
        est = _estimates() if estimates is None else estimates
        store_run(p, AuditEstimates(
            estimates=est, design={"kind": "srs", "seed": 11, "frame": "incidents",
                                   "strata_by": []},
            level=0.95, method="auto", sample_id="S1",
            sample={"frame_size": 40_000, "size": 1500, "population": {"all": 40_000},
                    "allocation": {"all": 1500}},
            decisions={"decided": 1500, "undecided": 0, "cannot_tell": 3,
                       "auditors": ["jo"], "sources": ["sheet"]}))
        reports = p.folder("reports")
        if detection:
            f = _finding()
            quiet = Finding("bunching", "force", 0.1, -0.2, 0.4, "excess", 0.5, 0.8, "Nothing.")
            # As crimeaudit detect writes them: findings, and their charts once, beside them.
            with open(reports / "findings.json", "w", encoding="utf-8") as fp:
                write_findings([f, quiet], {"summary": {"tests_run": ["period_end", "bunching"],
                                                        "skipped": {}}}, fp)
            with open(reports / CHARTS_FILE, "w", encoding="utf-8") as fp:
                write_charts([f, quiet], fp)
    return d


def test_headline_states_rate_interval_and_unrecorded_from_the_figures(tmp_path):
    paths = write_report(project_with_figures(tmp_path))
    html = paths["html"].read_text(encoding="utf-8")
    head = re.search(r'id="headline">(.*?)</p>', html, re.S).group(1)
    assert "An estimated 89.6% of crimes that should have been recorded were recorded" in head
    assert "(95% CI 88.0-91.0%)" in head
    assert "one crime in ten" in head
    # 50,000 x (1 - 0.896) / 0.896 = 5,804 a year, rounded to two figures in the sentence.
    assert "some 5,800 a year" in head


def test_every_figure_row_shows_interval_method_and_n(tmp_path):
    html = write_report(project_with_figures(tmp_path))["html"].read_text(encoding="utf-8")
    table = re.search(r'<table class="figures" id="strand-table">(.*?)</table>', html,
                      re.S).group(1)
    rows = re.findall(r"<tr><td>(.*?)</tr>", table, re.S)
    assert [re.match(r"[^<]*", r).group(0) for r in rows] == [
        "All crime", "Violence against the person", "Sexual offences", "Rape"]
    for r in rows:
        assert " to " in r and "wilson" in r
    assert "380 of 450" in table
    assert html.count("<svg") >= 5  # recording, cancellations x2, timeliness, classification


def test_report_is_self_contained_and_deterministic(tmp_path):
    d = project_with_figures(tmp_path, detection=True)
    first = write_report(d)["html"].read_bytes()
    second = write_report(d)["html"].read_bytes()
    assert first == second
    text = first.decode()
    assert "<script" not in text
    assert not re.search(r'(src|href)="https?:', text)
    assert "Recording jumps in the last days of each month." in text
    assert "Nothing." not in text  # q = 0.8: not reported as a sign of target pressure


def test_report_json_carries_the_figures_contract(tmp_path):
    paths = write_report(project_with_figures(tmp_path, detection=True))
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["figures_version"] == FIGURES_VERSION
    est = [Estimate.from_dict(e) for e in doc["estimates"]]
    assert Estimate("recording_rate", "all", 1344 / 1500, 0, 0, 0.95, "wilson", 1500) in [
        Estimate(e.measure, e.scope, e.estimate, 0, 0, e.level, e.method, e.n) for e in est]
    assert doc["runs"][0]["inputs"][0]["sha256"]
    assert "chart" not in doc["detection"]["findings"][0]["extra"]


def test_report_says_plainly_when_detection_was_not_run(tmp_path):
    html = write_report(project_with_figures(tmp_path))["html"].read_text(encoding="utf-8")
    assert "Detection was not run" in html


def test_reproducibility_block_lists_input_hashes_and_seed(tmp_path):
    d = project_with_figures(tmp_path)
    html = write_report(d)["html"].read_text(encoding="utf-8")
    sha = Project.open(d).runs()[0]["inputs"][0]["sha256"]
    assert re.search(rf"crimes.csv</td><td class=\"mono\">{sha}", html)
    assert "seed 11" in html
    assert "crimes.csv" in html


def test_no_estimates_is_a_clear_error(tmp_path):
    with Project.init(tmp_path / "p"):
        pass
    with pytest.raises(ReportError, match="run crimeaudit estimate"):
        collect(tmp_path / "p")


def test_no_overall_rate_does_not_invent_a_headline(tmp_path):
    est = [e for e in _estimates() if not (e.scope == "all" and e.measure == "recording_rate")]
    doc = collect(project_with_figures(tmp_path, estimates=est))
    assert "No overall recording rate" in render(doc)


@pytest.mark.parametrize(("rate", "phrase"), [(0.9, "one crime in ten"),
                                              (0.81, "one crime in five"),
                                              (0.67, "one crime in three"),
                                              (0.99, "one crime in 100")])
def test_one_in_phrase_is_computed_from_the_rate(rate, phrase):
    assert one_in(rate) == phrase


def test_cli_report_writes_both_files(tmp_path):
    from typer.testing import CliRunner

    from crimeaudit.cli import app

    d = project_with_figures(tmp_path)
    out = tmp_path / "out" / "kent.html"
    r = CliRunner().invoke(app, ["report", str(d), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.exists() and out.with_suffix(".json").exists()
    r = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert r.exit_code == 2
