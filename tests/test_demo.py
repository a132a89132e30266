"""``crimeaudit demo`` end to end on a small simulated force: the real pipeline, then the
report's stated interval against the simulation's ground truth."""

from __future__ import annotations

import json
import re

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from crimeaudit.cli import app
from crimeaudit.demo import MARKER, DemoError, run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "crimeaudit-demo"
    r = CliRunner().invoke(app, ["demo", "--out", str(out), "--incidents", "4000",
                                 "--sample-size", "700", "--seed", "3"])
    assert r.exit_code == 0, r.output
    return out, r.output


def _true_recording_rate(sim) -> float:
    """Crimes recorded / crimes that should have been, from the truth tables: disclosing
    incidents, plus crime records with no incident behind them (recorded by definition)."""
    ti = pq.read_table(sim / "truth_incidents.parquet")
    tc = pq.read_table(sim / "truth_crimes.parquet")
    disclosing = ti.filter(ti["discloses_crime"])
    recorded = pc.sum(disclosing["recorded"].cast("int64")).as_py()
    no_incident = pc.sum(pc.is_null(tc["true_incident_id"]).cast("int64")).as_py()
    return (recorded + no_incident) / (disclosing.num_rows + no_incident)


def test_demo_report_interval_covers_the_simulated_truth(demo):
    out, output = demo
    doc = json.loads((out / "project" / "reports" / "report.json").read_text())
    rate = doc["headline"]["rate"]
    truth = _true_recording_rate(out / "simulated")
    assert rate["lower"] <= truth <= rate["upper"], (truth, rate)
    # The printed headline is the report's, with the interval it states.
    html = (out / "project" / "reports" / "report.html").read_text()
    stated = re.search(r"\(95% CI ([\d.]+)-([\d.]+)%\)", doc["headline"]["sentence"])
    assert float(stated.group(1)) / 100 <= truth <= float(stated.group(2)) / 100
    assert doc["headline"]["sentence"] in html
    assert "An estimated" in output and "report.html" in output


def test_demo_report_has_cancellations_detection_and_oracle(demo):
    out, _ = demo
    doc = json.loads((out / "project" / "reports" / "report.json").read_text())
    measures = {e["measure"] for e in doc["estimates"]}
    assert {"recording_rate", "timeliness", "classification_accuracy", "cancellation_wrong",
            "victim_told", "unrecorded_per_year"} <= measures
    frames = [a["design"]["frame"] for a in doc["audits"]]
    assert sorted(frames) == ["cancellations", "incidents"]
    assert doc["detection"] is not None
    html = (out / "project" / "reports" / "report.html").read_text()
    assert "oracle auditor" in html and "kent-2013" in html


def test_demo_replaces_its_own_folder_but_refuses_any_other(demo, tmp_path):
    out, _ = demo
    assert (out / MARKER).exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.docx").write_text("precious")
    with pytest.raises(DemoError, match="not a crimeaudit demo folder"):
        run_demo(other, incidents=500)
    assert (other / "thesis.docx").read_text() == "precious"
    r = CliRunner().invoke(app, ["demo", "--out", str(other), "--incidents", "500"])
    assert r.exit_code == 2 and "not a crimeaudit demo folder" in r.output


def test_rerunning_the_demo_replaces_the_previous_one(tmp_path):
    from crimeaudit.demo import _prepare

    out = tmp_path / "crimeaudit-demo"
    _prepare(out)
    (out / "project").mkdir()
    (out / "project" / "stale.txt").write_text("old run")
    _prepare(out)
    assert (out / MARKER).exists() and not (out / "project").exists()
