"""The ingest verbs as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crimeaudit.cli import app

FIX = Path(__file__).parent / "fixtures" / "ingest"
runner = CliRunner()


def test_ingest_then_quarantine(tmp_path, monkeypatch):
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", "cli-key-0123456789")
    d = tmp_path / "p"
    assert runner.invoke(app, ["init", str(d)]).exit_code == 0
    f = FIX / "2019-06-city-of-london-outcomes.csv"
    res = runner.invoke(app, ["ingest", str(d), "--profile", "police-uk-outcomes", str(f),
                              "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    (fr,) = rep["files"]
    assert fr["read"] == fr["loaded"] + fr["excluded"] + fr["quarantined"]
    assert fr["quarantined"] > 0 and fr["excluded"] == 0
    assert (rep["read"], rep["excluded"]) == (fr["read"], 0)
    res = runner.invoke(app, ["quarantine", str(d), "--reason", "no crimes row", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["quarantine"]) == fr["quarantined"]
    assert out["files"][0]["read"] == fr["read"]
    res = runner.invoke(app, ["quarantine", str(d), "--file", "no-such-file", "--json"])
    assert json.loads(res.stdout)["quarantine"] == []
    # a second ingest of the same file is skipped, not doubled
    res = runner.invoke(app, ["ingest", str(d), "-p", "police-uk-outcomes", str(f)],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "already ingested" in res.output


def test_unreadable_file_is_one_clear_line(tmp_path):
    d = tmp_path / "p"
    runner.invoke(app, ["init", str(d)])
    empty = tmp_path / "crimes.csv"
    empty.write_bytes(b"")
    res = runner.invoke(app, ["ingest", str(d), "-p", "canonical", str(empty)])
    assert res.exit_code == 2
    assert "crimes.csv" in res.output and "empty" in res.output
    assert "Traceback" not in res.output


def test_profiles_lists_builtins_and_checks_user_files(tmp_path):
    res = runner.invoke(app, ["profiles", "--json"])
    assert res.exit_code == 0
    names = json.loads(res.stdout)
    assert {"canonical", "police-uk-street", "ons-pfa", "seattle-calls"} <= set(names)
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\ntargets:\n  - table: crimez\n")
    res = runner.invoke(app, ["profiles", "--check", str(bad)])
    assert res.exit_code == 2 and "crimez" in res.output
