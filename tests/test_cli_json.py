"""Every verb that prints results has ``--json``: simulate, scenarios, report and verify too."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crimeaudit.cli import app

runner = CliRunner()


def _json(*args) -> object:
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_scenarios_and_simulate_print_json(tmp_path):
    listed = _json("scenarios", "--json")
    names = [s["name"] for s in listed]
    assert "kent-2013" in names and all(s["description"] for s in listed)
    assert _json("simulate", "--list", "--json") == listed
    out = _json("simulate", "--scenario", "kent-2013", "--seed", 3, "--incidents", 300,
                "--out", tmp_path / "force", "--json")
    assert out["scenario"] == "kent-2013" and out["seed"] == 3
    assert out["rows"]["incidents"] == 300
    assert all(Path(f).exists() for f in out["files"].values())


def test_report_and_verify_print_json(tmp_path):
    runner.invoke(app, ["simulate", "--scenario", "kent-2013", "--seed", 3, "--incidents", 300,
                        "--out", str(tmp_path / "force")])
    project = tmp_path / "audit"
    assert runner.invoke(app, ["init", str(project)]).exit_code == 0
    r = runner.invoke(app, ["ingest", str(project), "--profile", "canonical",
                            *map(str, sorted((tmp_path / "force").glob("*.parquet")))])
    assert r.exit_code == 0, r.output
    written = _json("report", project, "--json")
    assert Path(written["html"]).is_file() and Path(written["json"]).is_file()
    checked = _json("verify", project, "--json")
    assert checked["intact"] is True and checked["checked"] == 0 and checked["broken_at"] is None
