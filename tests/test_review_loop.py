"""The registrar's review loop: partial sheets, stale sheets refused, progress shown."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from crimeaudit.audit import (
    AuditError,
    draw_sample,
    estimate,
    export_review,
    import_review,
    latest_decisions,
    load_sample,
    oracle_review,
)
from crimeaudit.audit.status import audit_status
from crimeaudit.store import Project
from test_audit import make_force

FILL = ("should_record", "recorded", "correctly_classified", "correct_class",
        "within_time_limit", "cancellation_valid", "victim_told")


@pytest.fixture
def project(tmp_path):
    p = Project.init(tmp_path / "force")
    for name, table in make_force().items():
        p.engine.write(name, table)
    yield p
    p.close()


def _answers(project, sample_id):
    """What a careful auditor would write: the oracle's decisions, read back."""
    oracle_review(project, sample_id)
    ans = latest_decisions(project, sample_id).set_index("record_id")
    return ans


def _fill(sheet_csv, answers, out, rows=None, flip=False):
    sheet = pd.read_csv(sheet_csv, dtype=str, keep_default_na=False)
    keep = sheet.index if rows is None else rows
    for col in FILL:
        sheet.loc[keep, col] = sheet.loc[keep, "record_id"].map(answers[col]).fillna("")
    sheet.loc[keep, "auditor"] = "R.Egistrar"
    if flip:
        # The auditor wrongly says no crime should have been recorded for the first record
        # where one should.
        flip = sheet.index[sheet.should_record == "yes"][0]
        sheet.loc[flip, "should_record"] = "no"
        sheet.loc[flip, ["recorded", "correctly_classified", "correct_class",
                         "within_time_limit"]] = ""
    sheet.to_csv(out, index=False, quoting=csv.QUOTE_ALL)
    return out


def test_a_partial_sheet_imports_and_status_shows_progress(tmp_path, project):
    sample = draw_sample(project, kind="srs", size=60, seed=4)
    paths = export_review(project)
    # The answers come from another project copy so this one has no decisions yet.
    other = Project.init(tmp_path / "other")
    for name, table in make_force().items():
        other.engine.write(name, table)
    draw_sample(other, kind="srs", size=60, seed=4)
    answers = _answers(other, sample.sample_id)
    other.close()
    done = _fill(paths["csv"], answers, tmp_path / "part.csv", rows=list(range(20)))
    r = import_review(project, done)
    assert r.stored == 20 and r.not_reviewed == 40
    status = audit_status(project).set_index("sample_id").loc[sample.sample_id]
    assert (status["decided"], status["undecided"]) == (20, 40)
    assert status["by_auditor"] == {"R.Egistrar": 20}
    res = estimate(project)
    rate = res.get("recording_rate")
    assert any("only 20 of 60 sampled records are decided" in w for w in rate.warnings)


def test_an_old_sheet_cannot_revert_newer_decisions(tmp_path, project):
    sample = draw_sample(project, kind="srs", size=30, seed=6)
    first = export_review(project, out=tmp_path / "round1")
    other = Project.init(tmp_path / "other")
    for name, table in make_force().items():
        other.engine.write(name, table)
    draw_sample(other, kind="srs", size=30, seed=6)
    answers = _answers(other, sample.sample_id)
    other.close()
    old = _fill(first["csv"], answers, tmp_path / "old.csv", flip=True)
    import_review(project, old)
    # A later round: a fresh export, a corrected decision on the same record.
    second = export_review(project, out=tmp_path / "round2")
    new = _fill(second["csv"], answers, tmp_path / "new.csv")
    import_review(project, new)
    old_rows = pd.read_csv(old, dtype=str, keep_default_na=False)
    rid = old_rows.record_id[(old_rows.should_record == "no")
                             & (old_rows.record_id.map(answers.should_record) == "yes")].iloc[0]
    assert latest_decisions(project, sample.sample_id).set_index("record_id").loc[
        rid, "should_record"] == answers.loc[rid, "should_record"]
    # Re-importing the old sheet is refused, naming the newer batch; nothing changes.
    with pytest.raises(AuditError, match="exported before newer decisions.*new.csv"):
        import_review(project, old)
    assert latest_decisions(project, sample.sample_id).set_index("record_id").loc[
        rid, "should_record"] == answers.loc[rid, "should_record"]
    # --force supersedes on purpose.
    import_review(project, old, force=True)
    assert latest_decisions(project, sample.sample_id).set_index("record_id").loc[
        rid, "should_record"] != answers.loc[rid, "should_record"]


def test_two_auditors_filling_copies_of_one_export_for_different_records(tmp_path, project):
    sample = draw_sample(project, kind="srs", size=40, seed=8)
    paths = export_review(project)
    other = Project.init(tmp_path / "other")
    for name, table in make_force().items():
        other.engine.write(name, table)
    draw_sample(other, kind="srs", size=40, seed=8)
    answers = _answers(other, sample.sample_id)
    other.close()
    a = _fill(paths["csv"], answers, tmp_path / "a.csv", rows=list(range(0, 20)))
    b = _fill(paths["csv"], answers, tmp_path / "b.csv", rows=list(range(20, 40)))
    import_review(project, a)
    assert import_review(project, b).stored == 20  # not stale: other records
    assert audit_status(project).set_index("sample_id").loc[sample.sample_id, "undecided"] == 0
    assert len(load_sample(project, sample.sample_id)) == 40


def test_status_and_a_stale_sheet_from_the_command_line(tmp_path, project):
    import json

    from typer.testing import CliRunner

    from crimeaudit.cli import app

    runner = CliRunner()
    d = str(project.path)
    sample = draw_sample(project, kind="srs", size=20, seed=9)
    project.close()
    r = runner.invoke(app, ["status", d, "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)[0]
    assert (row["sample_id"], row["decided"], row["undecided"]) == (sample.sample_id, 0, 20)
    r = runner.invoke(app, ["status", d])
    assert r.exit_code == 0 and sample.sample_id in r.stdout
