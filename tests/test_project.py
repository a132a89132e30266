"""The project folder, its store, atomic writes and the run log, through the CLI."""

import json
import os
import signal
import subprocess
import sys

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from crimeaudit.cli import app
from crimeaudit.store import Project, ProjectError, ProjectWarning, WriteError

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


def test_an_engine_that_cannot_run_is_one_clear_line_naming_the_setting(tmp_path, monkeypatch):
    """``engine: pyspark`` on a machine without Java (or PySpark): one line saying so and how
    to fix it, and no project written."""
    from crimeaudit.engine import EngineError, pyspark

    monkeypatch.setattr(pyspark, "_SESSION", None)
    monkeypatch.setattr(pyspark, "spark_available", lambda: "Java is not installed")
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


# -- one command at a time: the project lock, with real processes -------------------------------

HOLD = """
import sys, time
from crimeaudit.store import Project
p = Project.open(sys.argv[1])
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
p.close()
"""


def _hold(d, seconds: float) -> subprocess.Popen:
    """Another process that opens the project and keeps it open for ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(d), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crimeaudit", *args], capture_output=True,
                          text=True, timeout=300)


def test_a_second_command_says_which_command_holds_the_project(tmp_path):
    d = tmp_path / "p"
    Project.init(d).close()
    holder = _hold(d, 120)
    try:
        done = _cli("--wait", "0.5", "quarantine", str(d))
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f"{d} is busy" in errors[0] and f"pid {holder.pid}" in errors[0]
    assert "python" in errors[0] and "since" in errors[0] and "--wait" in errors[0]


def test_a_second_command_waits_for_the_first_to_finish(tmp_path):
    d = tmp_path / "p"
    Project.init(d).close()
    holder = _hold(d, 5)  # longer than the second command takes to start
    done = _cli("--wait", "120", "quarantine", str(d))
    holder.wait()
    assert done.returncode == 0, done.stderr
    assert "waiting up to 120 s" in done.stderr
    assert not (d / ".lock").exists()


def test_a_lock_left_by_a_killed_command_is_ignored(tmp_path):
    d = tmp_path / "p"
    Project.init(d).close()
    holder = _hold(d, 120)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert str(holder.pid) in (d / ".lock").read_text()  # left behind by kill -9
    done = _cli("--wait", "0", "quarantine", str(d))
    assert done.returncode == 0, done.stderr
    assert not (d / ".lock").exists()


def test_one_process_may_open_its_project_twice(tmp_path):
    d = tmp_path / "p"
    with Project.init(d) as a, Project.open(d) as b:
        assert b.engine.count("incidents") == 0 and (d / ".lock").exists()
        b.close()
        assert (d / ".lock").exists()  # a still holds it
        a.log_run("still mine")
    assert not (d / ".lock").exists()


# -- files are written safely: never through a link, never torn --------------------------------


def test_no_output_is_written_through_a_symbolic_link(tmp_path):
    from crimeaudit.store.files import append_text, open_for_write, write_bytes, write_text

    outside = tmp_path / "precious.txt"
    outside.write_text("not yours")
    def through_open_for_write(path):
        with open_for_write(path) as fp:
            fp.write("new")

    for name, write in (("a.html", lambda p: write_text(p, "new")),
                        ("b.xlsx", lambda p: write_bytes(p, b"new")),
                        ("c.json", through_open_for_write)):
        link = tmp_path / name
        link.symlink_to(outside)
        write(link)
        assert not link.is_symlink() and link.read_text() == "new"
    log = tmp_path / "runs.jsonl"
    log.symlink_to(outside)
    with pytest.raises(WriteError, match="symbolic link"):
        append_text(log, "{}\n")
    assert outside.read_text() == "not yours"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from crimeaudit.store.files import open_for_write

    f = tmp_path / "report.html"
    f.write_text("old")
    with pytest.raises(RuntimeError), open_for_write(f) as fp:
        fp.write("half")
        raise RuntimeError("killed half-way")
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_bad_run_log_line_is_skipped_with_a_warning(tmp_path):
    with Project.init(tmp_path / "p") as p:
        with open(p.path / "runs.jsonl", "a", encoding="utf-8") as f:
            f.write("not json\n")
        p.log_run("estimate")
        with pytest.warns(ProjectWarning, match="runs.jsonl: line 1 is not a run record"):
            runs = p.runs()
    assert [r["command"] for r in runs] == ["estimate"]
