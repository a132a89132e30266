"""One detector contract: named settings with today's defaults, skip reasons a user can read,
inputs summarised in the engine (same findings from a project's store as from pandas), and
the detectors' table in docs/detect.md generated from the registry."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import ibis.expr.types as ir
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimeaudit.detect import (
    DETECTORS,
    DetectError,
    DetectInput,
    Detector,
    DetectorSettings,
    detect_project,
    project_input,
    run_detection,
)
from crimeaudit.detect.calibration import as_canonical, calibration_force
from crimeaudit.detect.calls import CALL_TYPE_RANKS
from crimeaudit.detect.inputs import INPUTS
from crimeaudit.detect.structural import NOT_COMPARABLE
from crimeaudit.errors import CrimeauditError
from crimeaudit.store.project import Project

ROOT = Path(__file__).parent.parent
# The thresholds the detectors used before they were named: the defaults must keep them, or
# every finding of every earlier run would change.
TODAY = {
    "period_end": {"min_events": 30, "min_days": 60, "min_days_with_reports": 60,
                   "min_months": 24, "min_monthly_total": 200},
    "deferral": {"min_reports": 500, "min_crossings": 20},
    "downgrading": {"min_units": 3, "min_downgrades_per_strand": 5, "min_crimes_per_unit": 20,
                    "min_reclassifications_per_unit": 10, "min_pair_crimes_per_area": 20,
                    "not_comparable": NOT_COMPARABLE},
    "cancellations": {"min_cancellations": 10, "min_units": 3, "min_strand_cancellations": 30,
                      "min_cancellations_with_reason": 30, "min_crimes_per_unit": 20,
                      "min_cancellations_per_unit": 10},
    "bunching": {"thresholds": (("46", 200.0),), "min_values_near_threshold": 200,
                 "window_share": 0.1, "bootstrap_resamples": 100, "seed": 0},
    "displacement": {"min_periods": 6, "min_pair_total": 100, "min_months": 6,
                     "min_strand_crimes": 50, "not_comparable": NOT_COMPARABLE},
    "breaks": {"min_points": 16, "min_median_count": 10, "trim": 0.15, "max_gap_periods": 2},
    "releases": {"min_crimes_compared": 100, "min_changed": 5, "min_units": 3,
                 "min_crimes_per_unit": 20},
    # Added with the calls-for-service data (issue 11); it never runs on a force's own
    # records (incidents and crimes together), so the simulated calibration is unchanged.
    "calls": {"min_calls": 200, "min_events": 30, "min_units": 3, "min_calls_per_unit": 20,
              "min_months": 12, "min_days": 60,
              "unfounded": ["unfounded", "false complaint"],
              "report_written": ["crime_recorded", "report written", "report made", "arrest",
                                 "citation issued"],
              "call_type_ranks": [tuple(r) for r in CALL_TYPE_RANKS]},
    # The integrity analytics (issue 16): none of them fires on the compliant simulated
    # forces of tests/test_detect_integrity.py.
    "references": {"min_sequence_records": 100, "min_density": 0.5,
                   "tolerated_missing_share": 0.001, "max_gap": 1000, "max_blocks": 10,
                   "gaps_listed": 10},
    "near_duplicates": {"min_crimes": 200, "tolerated_share": 0.001, "min_units": 3,
                        "min_crimes_per_unit": 20, "groups_listed": 20},
    "property_digits": {"min_values": 300, "min_values_per_unit": 100, "min_units": 3,
                        "round_unit": 100.0, "nonconformity_mad": 0.015,
                        "bootstrap_resamples": 200, "seed": 0},
}


def _tables(n=6000, seed=3):
    return calibration_force(n_crimes=n, seed=seed)


def _data(n=6000, seed=3):
    t = _tables(n, seed)
    return DetectInput.from_frames(crimes=t["crimes"], changes=t["classification_changes"])


def _key(f):
    return (f.test, f.unit, f.effect, f.lower, f.upper, f.p_value, f.q_value, f.n, f.sentence)


@pytest.fixture(scope="module")
def small_run():
    return run_detection(_data())


def test_every_detector_meets_the_contract():
    assert [d.name for d in DETECTORS] == list(TODAY)
    for d in DETECTORS:
        assert isinstance(d, Detector) and issubclass(d.Settings, DetectorSettings)
        assert d.question.endswith("?") and "\n" not in d.question
        assert d.needs and all(i in INPUTS for alt in d.needs for i in alt), d.name
        for name, f in d.Settings.model_fields.items():
            assert f.description and f.default is not None, (d.name, name)


def test_defaults_are_the_thresholds_the_tests_were_calibrated_with():
    assert {d.name: d.Settings().model_dump() for d in DETECTORS} == TODAY


def test_no_unnamed_minimum_is_left_in_the_detectors():
    # A bare "at least N" on a count decides silently whether a test runs: it must be a setting.
    bare = re.compile(r"(\.sum\(\)|len\([^)]*\)|nunique\(\)|\.size)\s*(<|<=|>|>=)\s*(\d\d|[2-9])")
    for d in DETECTORS:
        path = ROOT / "src/crimeaudit/detect" / f"{type(d).__module__.rsplit('.', 1)[1]}.py"
        hits = [line for line in path.read_text().splitlines() if bare.search(line)]
        assert hits == [], (path.name, hits)


def test_settings_are_validated_with_one_line_errors():
    data = _data(n=500)
    cases = {
        "unknown detector 'bunchng'": {"bunchng": {}},
        "bunching: unknown setting 'min_values'": {"bunching": {"min_values": 5}},
        "bunching.min_values_near_threshold": {"bunching": {"min_values_near_threshold": "x"}},
        "deferral.min_crossings": {"deferral": {"min_crossings": 0}},
        "bunching.thresholds": {"bunching": {"thresholds": [["46"]]}},
    }
    for expected, settings in cases.items():
        with pytest.raises(DetectError) as info:
            run_detection(data, settings=settings)
        msg = str(info.value)
        assert expected in msg and "\n" not in msg, msg
        assert isinstance(info.value, CrimeauditError)


def test_missing_inputs_are_named_in_words(small_run):
    assert small_run.skipped["breaks"] == (
        "needs aggregate counts (monthly, quarterly or rolling 12-month)")
    assert small_run.skipped["releases"].startswith("needs crime records and a previous release")
    assert small_run.skipped["displacement"] == (
        "needs aggregate counts (monthly, quarterly or rolling 12-month) "
        "or crime records and incidents")
    # A force's own records (incidents with crimes) are not calls-for-service data.
    assert small_run.skipped["calls"].startswith("needs calls for service with their clearance")


def test_units_left_out_name_the_setting_and_its_value(small_run):
    notes = small_run.units_skipped["period_end"]
    # A 6,000-crime force has fewer than 30 rape cancellations, for instance.
    assert any(re.search(r"fewer than min_events=30 \S", n) for n in notes), notes
    summary = small_run.summary()
    assert summary["units_skipped"] == small_run.units_skipped
    assert summary["settings"]["deferral"] == TODAY["deferral"]


def test_a_test_stopped_by_a_threshold_says_which(small_run):
    run = run_detection(_data(), settings={"bunching": {"min_values_near_threshold": 10**6}})
    assert "bunching" not in run.tests_run
    assert run.skipped["bunching"].startswith(
        "offence=46: fewer than min_values_near_threshold=1000000 crimes with property values "
        "near 200")
    # Only bunching changed: every other finding is the same.
    others = [_key(f)[:2] for f in small_run.findings if f.test != "bunching"]
    assert sorted(others) == sorted(_key(f)[:2] for f in run.findings)


def test_lowering_a_minimum_tests_more_units(small_run):
    run = run_detection(_data(), settings={"deferral": {"min_crossings": 1}})
    before = {f.unit for f in small_run.findings if f.test == "deferral"}
    after = {f.unit for f in run.findings if f.test == "deferral"}
    assert before < after
    assert not any("min_crossings" in n for n in run.units_skipped.get("deferral", []))


def test_project_store_and_pandas_give_the_same_findings(tmp_path):
    t = _tables(n=8000, seed=9)
    with Project.init(tmp_path / "force") as p:
        canon = as_canonical(t)
        p.engine.write("crimes", canon["crimes"])
        p.engine.write("classification_changes", canon["classification_changes"])
        data = project_input(p)
        # The full tables stay in the engine; the detectors ask for summaries.
        assert isinstance(data.crimes, ir.Table) and isinstance(data.changes, ir.Table)
        from_store = run_detection(data)
    from_pandas = run_detection(DetectInput.from_frames(
        crimes=t["crimes"], changes=t["classification_changes"]))
    assert len(from_store.findings) > 50
    assert [_key(f) for f in from_store.findings] == [_key(f) for f in from_pandas.findings]


def test_boundary_reports_keep_every_deferral_trial():
    # The engine sends only reports near a boundary; the trials must be exactly those built
    # from every report.
    from crimeaudit.detect.deferral import boundary_trials

    crimes = _tables(n=4000)["crimes"]
    data = DetectInput.from_frames(crimes=crimes)
    full = crimes.assign(strand=data.strand_of(crimes["offence_code"]),
                         reported_at=pd.to_datetime(crimes["reported_at"]),
                         recorded_at=pd.to_datetime(crimes["recorded_at"]))
    cols = ["kind", "boundary", "hours_before", "crossed", "strand", "bin", "weekday"]
    for window in (1, 3, 7, 14):
        near = data.boundary_reports(window)
        assert len(near) < len(crimes) or window >= 13
        a = boundary_trials(full, window)[cols].sort_values(cols).reset_index(drop=True)
        b = boundary_trials(near, window)[cols].sort_values(cols).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_findings_json_gives_every_reader_field_and_charts_once(small_run):
    from crimeaudit.detect.findings_file import finding_from_json, write_charts
    from crimeaudit.detect.runner import write_findings_json

    buf = io.StringIO()
    write_findings_json(small_run, buf)
    text = buf.getvalue()
    payload = json.loads(text)
    got = payload["findings"]
    assert len(got) == len(small_run.findings)
    for d, f in zip(got, small_run.findings, strict=True):
        assert {"test", "area", "measure", "date", "effect", "p", "q", "rank"} <= set(d)
        # Six significant digits for a reader (the store keeps every digit).
        for got_x, x in ((d["effect"]["value"], f.effect), (d["effect"]["lower"], f.lower),
                         (d["effect"]["upper"], f.upper), (d["p"], f.p_value),
                         (d["q"], f.q_value)):
            assert got_x == pytest.approx(x, rel=1e-5, nan_ok=True)
        assert d["area"] and d["significant"] == (f.q_value < 0.05)
        # Names, not codes: no measure is an offence code or a strand key.
        assert not re.search(r"\b\d{1,3}[A-Z]\b|strand=", d["measure"]), d["measure"]
        back = finding_from_json(d)
        assert (back.test, back.unit, back.sentence, back.n) == (f.test, f.unit, f.sentence,
                                                                 f.n)
    assert [d["rank"] for d in got] == list(range(1, len(got) + 1))
    # Charts are not inside the findings: each is named by id and written once.
    assert "$schema" not in text
    charts = io.StringIO()
    n = write_charts(small_run.findings, charts)
    specs = json.loads(charts.getvalue())["charts"]
    assert n == len(specs) < len(got)  # the units of one funnel share its chart
    assert {d["chart"] for d in got if d["chart"]} == set(specs)
    # One finding a line (cheap to write, easy to grep).
    assert len(text.splitlines()) >= len(small_run.findings) + 2
    buf = io.StringIO()
    write_findings_json(small_run, buf, strict=False)
    assert len(json.loads(buf.getvalue())["findings"]) == len(small_run.findings)


def test_detectors_table_in_the_docs_matches_the_registry():
    from crimeaudit.detect.catalogue import with_table

    doc = (ROOT / "docs/detect.md").read_text(encoding="utf-8")
    assert with_table(doc) == doc, (
        "docs/detect.md is out of date: .venv/bin/python -m crimeaudit.detect.catalogue "
        "docs/detect.md")
    for d in DETECTORS:
        assert f"| `{d.name}` | {d.question} |" in doc


def test_cli_set_overrides_a_setting_and_rejects_a_bad_one(tmp_path):
    from crimeaudit.cli import app

    d = tmp_path / "force"
    canon = as_canonical(_tables(n=3000))
    with Project.init(d) as p:
        p.engine.write("crimes", canon["crimes"])
    res = CliRunner().invoke(app, ["detect", str(d), "--set", "deferral.min_crossings=-1"])
    assert res.exit_code == 2 and "deferral.min_crossings" in res.output
    res = CliRunner().invoke(app, ["detect", str(d), "--set", "deferral.min_crossings=1",
                                   "--set", "bunching.bootstrap_resamples=0", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["summary"]["settings"]["deferral"]["min_crossings"] == 1
    assert out["summary"]["findings"] == len(out["findings"])
    assert detect_project(d).settings["deferral"]["min_crossings"] == 20  # not remembered
