"""`crimeaudit detect DIR` end to end on a small project."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from crimeaudit.cli import app
from crimeaudit.detect.calibration import Injection, as_canonical, calibration_force
from crimeaudit.store.project import Project


def _project(tmp_path, injection=None, n_crimes=12000):
    d = tmp_path / "force"
    t = as_canonical(calibration_force(n_crimes=n_crimes, seed=5, injection=injection))
    with Project.init(d) as p:
        p.engine.write("crimes", t["crimes"])
        p.engine.write("classification_changes", t["classification_changes"])
    return d


def test_detect_writes_findings_table_and_json(tmp_path):
    d = _project(tmp_path, Injection(downgrade_share=0.15, downgrade_division="D2"))
    res = CliRunner().invoke(app, ["detect", str(d)])
    assert res.exit_code == 0, res.output
    assert "findings at q < 0.05" in res.output
    payload = json.loads((d / "reports" / "findings.json").read_text())
    units = [f["unit"] for f in payload["findings"] if f["q"] < 0.05]
    assert any("downgrade rate" in u and u.endswith("D2") for u in units)
    with Project.open(d) as p:
        assert p.engine.count("findings") == len(payload["findings"])
    # The charts are written once beside the findings, and every finding names its chart.
    charts = json.loads((d / "reports" / "charts.json").read_text())["charts"]
    assert {f["chart"] for f in payload["findings"] if f["chart"]} <= set(charts)
    assert len(charts) < len(payload["findings"])
    # Printed by area and test: the injected division's downgrading comes first.
    first_area = res.output.split("rank = evidence and effect together):\n", 1)[1]
    assert first_area.splitlines()[0].strip() == "D2"


def test_detect_area_shows_one_areas_findings(tmp_path):
    d = _project(tmp_path, Injection(downgrade_share=0.15, downgrade_division="D2"))
    res = CliRunner().invoke(app, ["detect", str(d), "--area", "d2"])
    assert res.exit_code == 0, res.output
    assert "D2: " in res.output and "#1 In division D2" in res.output
    listed = [line for line in res.output.splitlines() if line.strip().startswith("#")]
    assert listed and all("D2" in line for line in listed)
    res = CliRunner().invoke(app, ["detect", str(d), "--area", "D2", "--json"])
    out = json.loads(res.output)
    assert out["findings"] and {f["area"] for f in out["findings"]} == {"D2"}
    ranks = [f["rank"] for f in out["findings"]]
    assert ranks == sorted(ranks) and ranks[0] == 1
    res = CliRunner().invoke(app, ["detect", str(d), "--area", "D22"])
    assert res.exit_code == 2 and "did you mean D2" in res.output


def test_detect_json_and_bad_targets(tmp_path):
    d = _project(tmp_path, n_crimes=4000)
    bad = tmp_path / "targets.yaml"
    bad.write_text("targets:\n  - strand: violence\n    period: fortnight\n")
    res = CliRunner().invoke(app, ["detect", str(d), "--targets", str(bad)])
    assert res.exit_code == 2
    assert "targets.yaml" in res.output and "period" in res.output
    good = tmp_path / "good.yaml"
    good.write_text("targets:\n  - strand: violence\n    period: quarter\n")
    res = CliRunner().invoke(app, ["detect", str(d), "--targets", str(good), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["summary"]["findings"] == len(out["findings"])
