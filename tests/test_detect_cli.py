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
    units = [f["unit"] for f in payload["findings"] if f["q_value"] < 0.05]
    assert any("downgrade rate" in u and u.endswith("D2") for u in units)
    with Project.open(d) as p:
        assert p.engine.count("findings") == len(payload["findings"])


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
