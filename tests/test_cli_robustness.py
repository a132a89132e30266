"""Damaged inputs, hostile content and a hostile machine, as a user meets them on the CLI.

Each test is one case of issue 14 and asserts what the user sees: one line on standard error
(never a traceback unless ``--debug``), the exit code, and files that must not change.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimeaudit.audit import AuditEstimates
from crimeaudit.audit.figures_store import store_run
from crimeaudit.cli import app
from crimeaudit.cli import common as cli_common
from crimeaudit.model.figures import Estimate
from crimeaudit.store import Project, WriteError

runner = CliRunner()


def one_line_error(result, code: int = 2) -> str:
    """The single line a failed command printed on standard error."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and "━" not in line]  # progress bars are not messages
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def no_traceback(result) -> None:
    """A command that either worked or said why in one line (exit 1 would be our bug)."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code != 0:
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1, result.stderr


@pytest.fixture
def project(tmp_path) -> Path:
    d = tmp_path / "p"
    assert runner.invoke(app, ["init", str(d)]).exit_code == 0
    return d


def project_with_estimates(d: Path) -> Path:
    """A project whose store holds what `estimate` would have stored (enough for a report)."""
    from crimeaudit.audit import wilson

    lo, hi = wilson(1344, 1500, 0.95)
    est = [Estimate("recording_rate", "all", 1344 / 1500, lo, hi, 0.95, "wilson", 1500, 1344,
                    1500)]
    with Project.init(d, name="Testshire") as p:
        store_run(p, AuditEstimates(
            estimates=est, design={"kind": "srs", "seed": 1, "frame": "incidents",
                                   "strata_by": []},
            level=0.95, method="auto", sample_id="S1",
            sample={"frame_size": 40_000, "size": 1500, "population": {"all": 40_000},
                    "allocation": {"all": 1500}},
            decisions={"decided": 1500, "undecided": 0, "cannot_tell": 0,
                       "auditors": ["jo"], "sources": ["sheet"]}))
    return d


# -- tracebacks only under --debug ---------------------------------------------------------------


def test_an_unexpected_error_is_one_line_and_its_traceback_needs_debug(monkeypatch):
    def broken():
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("crimeaudit.cli.ingest.list_profiles", broken)
    line = one_line_error(runner.invoke(app, ["profiles"]), code=1)
    assert line == ("internal error: RuntimeError: boom; run with --debug for the traceback, "
                    "and please report it")
    debug = runner.invoke(app, ["--debug", "profiles"])
    assert isinstance(debug.exception, RuntimeError)  # the traceback is shown, not swallowed


def test_a_user_error_shows_its_traceback_under_debug(tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    assert "exists and is not a folder" in one_line_error(runner.invoke(app, ["init", str(f)]))
    debug = runner.invoke(app, ["--debug", "init", str(f)])
    assert type(debug.exception).__name__ == "ProjectError"
    assert f.read_text() == "x"


@pytest.mark.parametrize("content", [
    b"incident_id,reported_at\r1,2020-01-01T10:00:00\r2,2020-01-02T10:00:00\r",
    b"incident_id,reported_at\r\n1,2020-01-01T10:00:00\r2,2020-01-02T10:00:00\n"
    b"3,2020-01-03T10:00:00\r\n",
], ids=["cr-only", "mixed"])
def test_odd_line_endings_never_print_a_traceback(project, tmp_path, monkeypatch, content):
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", "a-robustness-test-key-of-some-length")
    f = tmp_path / "incidents.csv"
    f.write_bytes(content)
    no_traceback(runner.invoke(app, ["ingest", str(project), "-p", "canonical", str(f)]))


@pytest.mark.parametrize("columns", [50_000, 1_000_000])
def test_a_file_with_too_many_columns_is_refused_in_one_line(project, tmp_path, columns):
    f = tmp_path / "incidents.csv"
    f.write_text(",".join(f"c{i}" for i in range(columns)) + "\n" + "1," * (columns - 1) + "1\n")
    line = one_line_error(runner.invoke(app, ["ingest", str(project), "-p", "canonical",
                                              str(f)]))
    assert str(f) in line and "nothing was loaded" in line
    assert "50,000 columns" in line if columns == 50_000 else "line 1 is over" in line


def test_a_directory_given_as_input_is_called_a_directory(project, tmp_path):
    line = one_line_error(runner.invoke(app, ["ingest", str(project), "-p", "canonical",
                                              str(tmp_path)]))
    assert "is a directory" in line and "no such file" not in line


def test_a_utf16_csv_is_called_utf16_not_binary(project, tmp_path):
    f = tmp_path / "incidents.csv"
    f.write_text("incident_id,reported_at\n1,2020-01-01T10:00:00\n", encoding="utf-16")
    line = one_line_error(runner.invoke(app, ["ingest", str(project), "-p", "canonical",
                                              str(f)]))
    assert "UTF-16" in line and "binary" not in line


def test_init_on_an_existing_file_is_one_line(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    line = one_line_error(runner.invoke(app, ["init", str(f)]))
    assert "exists and is not a folder" in line and f.read_text() == "keep me"


# -- profiles --check ---------------------------------------------------------------------------

PROFILE = """name: mine
targets:
  - table: incidents
    columns:
      incident_id: {{from: id}}
      reported_at: {{from: when, format: "{fmt}"}}
"""


@pytest.mark.parametrize("fmt", ["%Q/%m/%Y", "YYYY-MM-DD", "%d/%m/%"])
def test_check_refuses_a_bad_date_format(tmp_path, fmt):
    f = tmp_path / "mine.yaml"
    f.write_text(PROFILE.format(fmt=fmt))
    line = one_line_error(runner.invoke(app, ["profiles", "--check", str(f)]))
    assert "reported_at.format" in line and "date format" in line and ": valid profile" not in line


def test_check_refuses_a_bad_unpivot_regex(tmp_path):
    f = tmp_path / "wide.yaml"
    f.write_text(PROFILE.format(fmt="%Y-%m") + "unpivot: {pattern: '(20\\d\\d-'}\n")
    line = one_line_error(runner.invoke(app, ["profiles", "--check", str(f)]))
    assert "unpivot.pattern" in line and "not a regular expression" in line


def test_check_accepts_a_good_profile(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(PROFILE.format(fmt="%-d/%m/%Y %H:%M"))
    result = runner.invoke(app, ["profiles", "--check", str(f)])
    assert result.exit_code == 0 and "valid profile 'mine'" in result.stdout


def test_a_profile_that_is_not_utf8_names_the_line(tmp_path):
    f = tmp_path / "latin.yaml"
    f.write_bytes(PROFILE.format(fmt="%Y").encode() + b"description: caf\xe9\n")
    line = one_line_error(runner.invoke(app, ["profiles", "--check", str(f)]))
    assert "line 7" in line and "not UTF-8" in line


def test_check_never_echoes_a_file_that_is_not_a_profile(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.write_text("root:$6$s3cr3tHash:19000:0:99999:7:::\n"
                      "daemon:*:19000:0:99999:7:::\nbad: [unclosed\n")
    for f in (shadow, Path("/etc/shadow")):
        if f.exists() and os.access(f, os.R_OK):
            result = runner.invoke(app, ["profiles", "--check", str(f)])
            line = one_line_error(result)
            assert "not a profile YAML" in line or "not valid YAML" in line
            assert "s3cr3t" not in result.output and "root:" not in result.output
            assert "daemon" not in result.output


# -- review sheets ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content", "said"), [
    ("sheet.csv", "incident_id,should_record\n1,yes\n".encode("utf-16"), "UTF-16"),
    ("sheet.csv", b"incident_id\n\x00\x01\x02\x03binary", "binary data"),
    ("sheet.csv", b"incident_id,notes\n1,caf\xe9\n", "line 2"),
    ("sheet.xlsx", b"\x00\x01not a zip at all", "not an XLSX workbook"),
    ("sheet.xlsx", b"PK\x03\x04 a damaged zip", "not a readable XLSX workbook"),
])
def test_a_broken_review_sheet_is_one_line(project, tmp_path, name, content, said):
    f = tmp_path / name
    f.write_bytes(content)
    line = one_line_error(runner.invoke(app, ["review", "import", str(project), str(f)]))
    assert said in line and str(f) in line


# -- the machine: permissions, full disk, damaged store -----------------------------------------


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "64m"):
    """A small filesystem of its own (root only): None where mounting is not possible."""
    where.mkdir()
    if os.geteuid() != 0:
        yield None
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_project_folder_that_is_not_writable_is_one_line(tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        d = (disk or tmp_path) / "p"
        Project.init(d).close()
        before = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}
        if disk is not None:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        else:
            d.chmod(0o555)
            if os.access(d, os.W_OK):
                pytest.skip("permissions are not enforced for this user")
        try:
            line = one_line_error(runner.invoke(app, ["quarantine", str(d)]))
            assert "not writable" in line and str(d) in line
            assert {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()} == before
        finally:
            d.chmod(0o755) if disk is None else None


def test_a_full_disk_is_one_line_and_leaves_the_old_report_whole(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "disk", size="8m") as disk:
        d = project_with_estimates((disk or tmp_path) / "p")
        assert runner.invoke(app, ["report", str(d)]).exit_code == 0
        report = d / "reports" / "report.html"
        before = report.read_bytes()
        if disk is not None:
            filler = disk / "filler"
            with contextlib.suppress(OSError), open(filler, "wb") as f:
                while True:
                    f.write(b"\0" * (1 << 16))
        else:  # no tmpfs: the disk fills as the report is written
            def full(fd):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr("crimeaudit.store.files.os.fsync", full)
        line = one_line_error(runner.invoke(app, ["report", str(d)]))
        assert "No space left on device" in line and "report" in line
        assert report.read_bytes() == before
        assert not [p for p in report.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_store_of_garbage_is_one_line(project):
    (project / "store.duckdb").write_bytes(os.urandom(50_000))
    line = one_line_error(runner.invoke(app, ["quarantine", str(project)]))
    assert "store.duckdb" in line and "damaged" in line


def test_a_bad_run_log_line_is_skipped_with_a_warning(tmp_path):
    d = project_with_estimates(tmp_path / "p")
    with open(d / "runs.jsonl", "a", encoding="utf-8") as f:
        f.write('{"time": "2020-01-01", "comm\n[1, 2]\n')
    result = runner.invoke(app, ["report", str(d)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, result.stderr
    assert "runs.jsonl: line 1 is not a run record; skipped" in warnings[0]
    assert "runs.jsonl: line 2 is not a run record; skipped" in warnings[1]
    assert (d / "reports" / "report.html").exists()


# -- outputs never follow links ----------------------------------------------------------------


def test_the_report_replaces_a_link_never_its_target(tmp_path):
    d = project_with_estimates(tmp_path / "p")
    outside = tmp_path / "precious.txt"
    outside.write_text("not yours")
    (d / "reports").mkdir(exist_ok=True)
    (d / "reports" / "report.html").symlink_to(outside)
    (d / "reports" / "report.json").symlink_to(outside)
    result = runner.invoke(app, ["report", str(d)])
    assert result.exit_code == 0, result.output
    assert outside.read_text() == "not yours"
    assert not (d / "reports" / "report.html").is_symlink()
    assert "<html" in (d / "reports" / "report.html").read_text().lower()


def test_a_linked_reports_folder_is_refused(tmp_path):
    d = project_with_estimates(tmp_path / "p")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (d / "reports").symlink_to(elsewhere, target_is_directory=True)
    line = one_line_error(runner.invoke(app, ["report", str(d)]))
    assert "symbolic link" in line
    assert list(elsewhere.iterdir()) == []


def test_a_linked_run_log_is_refused_and_its_target_unchanged(project, tmp_path, monkeypatch):
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", "a-robustness-test-key-of-some-length")
    outside = tmp_path / "precious.txt"
    outside.write_text("not yours")
    (project / "runs.jsonl").unlink()
    (project / "runs.jsonl").symlink_to(outside)
    f = tmp_path / "incidents.csv"
    f.write_text("incident_id,reported_at\nI1,2020-01-01T10:00:00\n")
    line = one_line_error(runner.invoke(app, ["ingest", str(project), "-p", "canonical",
                                              str(f)]))
    assert "runs.jsonl: is a symbolic link" in line
    with Project.open(project) as p, pytest.raises(WriteError, match="symbolic link"):
        p.log_run("estimate")
    assert outside.read_text() == "not yours"


# -- Rich markup in data and file names ---------------------------------------------------------

HOSTILE = ["[/]", "[bold]x[/bold]", "[link=file:///etc]"]


def test_markup_in_rows_and_file_names_prints_literally(tmp_path, monkeypatch):
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", "a-robustness-test-key-of-some-length")
    monkeypatch.setattr(cli_common.console, "width", 400)
    monkeypatch.setattr(cli_common.err_console, "width", 400)
    d = tmp_path / "[bold]x[/bold]"  # a folder "[bold]x[" holding "bold]": a legal path
    result = runner.invoke(app, ["init", str(d)])
    assert result.exit_code == 0 and f"in {d}" in result.stdout, result.output
    folder = tmp_path / "[link=file:"
    folder.mkdir()
    f = folder / "incidents[x].csv"
    rows = "".join(f"I{i},not a date {m}\n" for i, m in enumerate(HOSTILE))
    f.write_text("incident_id,reported_at\n" + rows, encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(d), "-p", "canonical", str(f)])
    assert result.exit_code == 0, result.output
    assert "incidents[x].csv" in result.stdout and f"quarantine {d}" in result.stdout
    result = runner.invoke(app, ["quarantine", str(d)])
    assert result.exit_code == 0, result.output
    for m in HOSTILE:
        assert m in result.stdout
    assert "incidents[x].csv" in result.stdout
    # and in an error message naming the file
    line = one_line_error(runner.invoke(app, ["ingest", str(d), "-p", "canonical",
                                              str(folder / "[/]missing.csv")]))
    assert "[/]missing.csv" in line


def test_an_error_message_with_markup_prints_literally(tmp_path):
    f = tmp_path / "[bold]x[" / "[link=file:" / "etc]"
    f.parent.mkdir(parents=True)
    f.write_text("x")
    line = one_line_error(runner.invoke(app, ["init", str(f)]))
    assert str(f) in line



# -- the CLI and the Python API refuse a bad input file with one and the same line ---------------

@pytest.mark.parametrize("case", ["directory", "utf16-no-bom", "columns"])
def test_ingest_says_the_same_line_from_the_cli_and_the_python_api(project, tmp_path, case):
    import crimeaudit
    from crimeaudit.ingestion import IngestError

    if case == "directory":
        bad = tmp_path / "exports"
        bad.mkdir()
    elif case == "utf16-no-bom":
        bad = tmp_path / "incidents.csv"
        bad.write_bytes("incident_id,reported_at\n1,2020-01-01T10:00:00\n".encode("utf-16-le"))
    else:
        bad = tmp_path / "incidents.csv"
        bad.write_text(",".join(f"c{i}" for i in range(20_000)) + "\n")
    line = one_line_error(runner.invoke(app, ["ingest", str(project), "-p", "canonical",
                                              str(bad)]))
    with pytest.raises(IngestError) as exc:
        crimeaudit.ingest(project, "canonical", [bad])
    assert str(exc.value) in line and str(bad) in line


# -- every command removes what a killed ingest left, not only the next ingest -------------------

@pytest.mark.parametrize("argv", [["status"], ["quarantine"], ["verify"], ["estimate"]])
def test_any_command_removes_a_killed_ingests_clear_copy(project, argv):
    stale = project / "ingest-tmp"
    stale.mkdir()
    (stale / "0123.utf8.csv").write_text("incident_id,victim\nI1,Zebedee Quintrell\n")
    runner.invoke(app, [*argv, str(project)])  # whatever it answers: it opened the project
    assert not stale.exists()
    assert not [x for x in project.rglob("*") if x.is_file() and b"Zebedee" in x.read_bytes()]


# -- more outputs that never follow a link -------------------------------------------------------

def test_simulate_replaces_links_in_its_output_folder_never_their_targets(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("not yours")
    out = tmp_path / "sim"
    out.mkdir()
    for name in ("incidents.parquet", "manifest.json"):
        (out / name).symlink_to(outside)
    r = runner.invoke(app, ["simulate", "-s", "kent-2013", "-n", "500", "--seed", "3",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert outside.read_text() == "not yours"
    assert not (out / "incidents.parquet").is_symlink()
    import pyarrow.parquet as pq

    assert pq.read_table(out / "incidents.parquet").num_rows == 500


def test_a_samples_json_record_replaces_a_link_never_its_target(tmp_path):
    from crimeaudit.audit import draw_sample
    from test_audit import make_force

    outside = tmp_path / "precious.txt"
    outside.write_text("not yours")
    with Project.init(tmp_path / "p") as p:
        for name, table in make_force(120).items():
            p.engine.write(name, table)
        first = draw_sample(p, kind="srs", size=10, seed=5)
        record = p.path / "audit" / f"sample-{first.sample_id}.json"
        record.unlink()
        record.symlink_to(outside)
        again = draw_sample(p, kind="srs", size=10, seed=5)  # the same seed, the same sample
    assert again.sample_id == first.sample_id
    assert outside.read_text() == "not yours" and not record.is_symlink()
    assert first.sample_id in record.read_text()
