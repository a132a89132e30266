"""The project folder, its store, atomic writes and the run log, through the CLI."""

import json

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from crimeaudit.cli import app
from crimeaudit.store import Project, ProjectError

runner = CliRunner()


def test_init_creates_a_project_with_empty_canonical_tables(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "p"), "--timeliness-hours", "72"])
    assert result.exit_code == 0, result.output
    with Project.open(tmp_path / "p") as p:
        assert p.config.timeliness_hours == 72
        assert p.engine.count("incidents") == 0
        assert set(p.engine.table("crimes").columns) >= {"crime_id", "offence_code", "status"}
    runs = [json.loads(line) for line in (tmp_path / "p" / "runs.jsonl").read_text().splitlines()]
    assert runs[0]["command"] == "init"


def test_init_twice_is_refused_without_traceback(tmp_path):
    runner.invoke(app, ["init", str(tmp_path / "p")])
    with pytest.raises(ProjectError, match="already a crimeaudit project"):
        Project.init(tmp_path / "p")


def test_opening_a_non_project_says_how_to_make_one(tmp_path):
    with pytest.raises(ProjectError, match="crimeaudit init"):
        Project.open(tmp_path)


def test_bad_settings_are_reported_with_the_file(tmp_path):
    Project.init(tmp_path / "p").close()
    (tmp_path / "p" / "project.yaml").write_text("confidence_level: 1.5\n")
    with pytest.raises(ProjectError, match="project.yaml"):
        Project.open(tmp_path / "p")


def test_failed_transaction_leaves_store_unchanged(tmp_path):
    with Project.init(tmp_path / "p") as p:
        p.engine.write("t", pa.table({"a": [1, 2]}))
        with pytest.raises(RuntimeError), p.engine.transaction():
            p.engine.write("t", pa.table({"a": [3]}), mode="append")
            raise RuntimeError("killed half-way")
        assert p.engine.count("t") == 2


def test_run_log_records_input_hashes(tmp_path):
    f = tmp_path / "in.csv"
    f.write_text("a\n1\n")
    with Project.init(tmp_path / "p") as p:
        entry = p.log_run("ingest", inputs=[f], counts={"read": 1})
    assert len(entry["inputs"][0]["sha256"]) == 64
    assert entry["counts"] == {"read": 1}


def test_an_engine_that_cannot_run_is_one_clear_line_naming_the_setting(tmp_path):
    """``engine: pyspark`` was accepted and silently ran DuckDB; now it says so and how to fix."""
    from crimeaudit.engine import EngineError

    Project.init(tmp_path / "p").close()
    cfg = tmp_path / "p" / "project.yaml"
    cfg.write_text(cfg.read_text().replace("engine: duckdb", "engine: pyspark"))
    with pytest.raises(EngineError, match=r"engine: pyspark.*set engine: duckdb"):
        Project.open(tmp_path / "p")
    result = runner.invoke(app, ["quarantine", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert "engine: pyspark" in result.output and "Traceback" not in result.output
    with pytest.raises(EngineError, match="engine: pyspark"):
        Project.init(tmp_path / "q", engine="pyspark")
    assert not (tmp_path / "q" / "project.yaml").exists()
