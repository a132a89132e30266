"""Findings a reader can use: ranked by evidence and effect together, one area at a time,
sentences that never overstate, structural comparisons left out with a reason, series
analysed across their gaps, and calls-for-service data tested."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimeaudit.detect import DetectError, DetectInput, run_detection
from crimeaudit.detect.base import Skips
from crimeaudit.detect.reading import rank_findings, select_area, strength
from crimeaudit.model.figures import Finding
from crimeaudit.uncertainty import bh_adjust

ENDS = pd.date_range("2007-03-31", "2018-12-31", freq="QE")


def rolling_counts(step_area=None, step_at="2012-06-30", step=0.0, gap=None, areas=12,
                   seed=4, offences=("Robbery",)):
    """Rolling 12-month totals of areas whose share of national is steady (AR(1) noise in
    quarterly flows), one of them stepping by ``step`` from ``step_at``; ``gap``: a quarter
    no area has (as the ONS file's quarantined 2017-12)."""
    rng = np.random.default_rng(seed)
    rows = []
    flow_ends = pd.date_range(ENDS[0] - pd.offsets.QuarterEnd(3), ENDS[-1], freq="QE")
    for offence in offences:
        for i in range(areas):
            name = f"Area {i}"
            size = rng.uniform(400, 3000)
            ar = np.zeros(flow_ends.size)
            for t in range(1, ar.size):
                ar[t] = 0.5 * ar[t - 1] + rng.normal(0, 0.03)
            level = np.where((flow_ends >= pd.Timestamp(step_at)) & (name == step_area),
                             1 + step, 1.0)
            flows = rng.poisson(size * level * np.exp(ar))
            rolling = np.convolve(flows, np.ones(4), "valid")
            for e, r in zip(ENDS, rolling, strict=True):
                if gap is not None and e == pd.Timestamp(gap):
                    continue
                rows.append({"source": "synthetic", "area": name, "offence": offence,
                             "period_start": e, "period_end": e, "period_type": "rolling_12m",
                             "count": float(r), "adjustment": False, "offence_group": None})
    return pd.DataFrame(rows)


# -- ranking, verdicts, intervals --------------------------------------------------------------

@pytest.fixture(scope="module")
def break_run():
    counts = rolling_counts("Area 3", step=0.4, gap="2013-12-31",
                            offences=("Robbery", "Burglary"))
    return run_detection(DetectInput.from_frames(counts=counts))


def test_ranking_orders_but_never_changes_p_or_q(break_run):
    fs = break_run.findings
    assert [f.extra["rank"] for f in fs] == list(range(1, len(fs) + 1))
    # q-values are BH over the same p-values, whatever the order.
    assert [f.q_value for f in fs] == pytest.approx(bh_adjust([f.p_value for f in fs]))
    sig = [f.q_value < 0.05 for f in fs]
    assert sig == sorted(sig, reverse=True)  # every significant finding first
    s = [strength(f) for f in fs if f.q_value < 0.05]
    assert s == sorted(s, reverse=True) and s and s[0] > 0


def test_rank_weighs_effect_and_evidence_together():
    def f(effect, q, name):
        return Finding("breaks", name, effect, 0, 0, "step", q / 10, q, ".",
                       extra={"scale": "relative", "area": name})
    ranked = rank_findings([f(0.02, 1e-12, "tiny but certain"), f(2.0, 0.049, "large, weak"),
                            f(0.5, 1e-4, "large and clear"), f(3.0, 0.3, "not significant")])
    # A large, clear effect first; a tiny certain one and a large barely significant one
    # both below it; a finding that is not significant after them, whatever its size.
    assert [x.extra["area"] for x in ranked] == [
        "large and clear", "tiny but certain", "large, weak", "not significant"]


def test_no_sentence_presents_an_interval_as_evidence_when_q_says_otherwise(break_run):
    for f in break_run.findings:
        if f.q_value < 0.05:
            assert "Significant after allowing for all" in f.sentence
        else:
            assert "Not significant once all" in f.sentence
            assert f.sentence.endswith("not evidence of a change.")
        assert "stepped by" not in f.sentence
        # The break's interval allows for every date tried: it excludes no change exactly
        # when the per-series p-value is below 5%.
        excludes = f.lower > 0 or f.upper < 0
        assert excludes == (f.p_value < 0.05), (f.unit, f.p_value, f.lower, f.upper)
        lo, hi = f.extra["interval_given_date"]
        assert f.lower <= lo and hi <= f.upper  # the date-conditional one is narrower


def test_series_with_a_gap_are_analysed_across_it(break_run):
    stepped = {f.extra["measure"]: f for f in break_run.findings
               if f.extra["area"] == "Area 3"}
    f = stepped["share of national Robbery"]
    assert f.q_value < 0.05 and f.effect == pytest.approx(0.4, abs=0.15)
    assert "2012-03-31" <= f.extra["date"] <= "2012-09-30"
    assert f.extra["gaps"] == ["2013-12-31"]
    assert "analysed across the gap" in f.sentence
    # Both sides of the gap are used: 47 quarters of totals give 46 flows, none cut.
    assert f.n == len(ENDS) - 1
    chart = f.extra["chart"]
    assert any(layer["mark"].get("color") == "grey" for layer in chart["layer"])


def test_a_gap_does_not_raise_false_alarms():
    counts = rolling_counts(gap="2013-12-31", areas=20, seed=11,
                            offences=("Robbery", "Burglary", "Theft"))
    run = run_detection(DetectInput.from_frames(counts=counts))
    assert len(run.findings) >= 55 and run.significant() == []


# -- one area at a time -------------------------------------------------------------------------

def test_area_is_matched_by_name_and_an_unknown_one_is_named():
    fs = [Finding("breaks", x, 0.1, 0, 0.2, "e", 0.1, 0.2, ".", extra={"area": x})
          for x in ("Kent", "Tower Hamlets 027B", "Tower Hamlets 001A", "Essex")]
    assert [f.unit for f in select_area(fs, "kent")] == ["Kent"]
    assert len(select_area(fs, "Tower Hamlets")) == 2
    with pytest.raises(DetectError, match="did you mean Kent"):
        select_area(fs, "Kentt")


# -- structural comparisons ---------------------------------------------------------------------

def _pairs(extra_areas):
    rows = []
    rng = np.random.default_rng(2)
    for i in range(8):
        serious = rng.integers(300, 400)
        rows += [(f"Force {i}", "Domestic burglary", serious),
                 (f"Force {i}", "All other theft offences", 1000 - serious)]
    rows += extra_areas
    k = pd.DataFrame(rows, columns=["area", "offence", "count"])
    k = k.assign(source="ons-pfa", period_type="rolling_12m", adjustment=False,
                 period_start=pd.Timestamp("2018-12-31"), period_end=pd.Timestamp("2018-12-31"),
                 offence_group=None, count=k["count"].astype(float))
    return k


def test_structural_areas_are_left_out_with_their_reason():
    from crimeaudit.detect.downgrading import pair_ratio_tests

    k = _pairs([("British Transport Police", "Domestic burglary", 0),
                ("British Transport Police", "All other theft offences", 4000),
                ("Airside", "Domestic burglary", 0),
                ("Airside", "All other theft offences", 900)])
    skips = Skips()
    found = pair_ratio_tests(DetectInput.from_frames(counts=k), skips=skips)
    areas = {f.extra["area"] for f in found}
    assert areas == {f"Force {i}" for i in range(8)}
    why = {e["area"]: e["reason"] for e in skips.excluded}
    assert why["British Transport Police"].startswith("a transport police force")
    assert why["Airside"].startswith("recorded no burglary of the serious class at all")
    # The other areas are compared with each other only: the same as without those areas.
    alone = pair_ratio_tests(DetectInput.from_frames(counts=_pairs([])))
    assert [f.p_value for f in found] == pytest.approx([f.p_value for f in alone])


# -- calls for service --------------------------------------------------------------------------

CLEAR = ["REPORT WRITTEN (NO ARREST)", "ASSISTANCE RENDERED", "UNABLE TO LOCATE INCIDENT",
         "ORAL WARNING GIVEN"]


def calls_frame(unfounded_beat=None, quarter_end_downgrades=0.0, seed=6, n=24000):
    """Seattle-like calls: initial and final types, clearance text, beat; optionally a beat
    that clears 8% of its calls as unfounded (others 2%) and assault calls closed as
    disturbances more in the last 3 days of each quarter."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2021-01-01", "2023-12-31", freq="D")
    when = days[rng.integers(0, days.size, n)] + pd.to_timedelta(rng.integers(0, 86400, n),
                                                                  unit="s")
    beat = rng.choice([f"B{i}" for i in range(1, 7)], n)
    initial = rng.choice(["ASLT - WITH OR W/O WPNS", "THEFT - ALL OTHER", "DISTURBANCE",
                         "MISCELLANEOUS"], n)
    p_unf = np.where(beat == unfounded_beat, 0.08, 0.02)
    closing = np.where(rng.random(n) < p_unf, "FALSE COMPLAINT/UNFOUNDED",
                       rng.choice(CLEAR, n))
    end = (pd.Series(when).dt.month.isin([3, 6, 9, 12])
           & (pd.Series(when).dt.days_in_month - pd.Series(when).dt.day < 3)).to_numpy()
    p_down = 0.05 + np.where(end, quarter_end_downgrades, 0.0)
    final = np.where((initial == "ASLT - WITH OR W/O WPNS") & (rng.random(n) < p_down),
                     "DISTURBANCE - FIGHT", initial)
    return pd.DataFrame({"incident_id": [f"C{i}" for i in range(n)], "reported_at": when,
                         "call_type": initial, "final_call_type": final,
                         "source_closing_description": closing, "division": beat})


def test_calls_detector_finds_a_beat_and_quarter_end_downgrades():
    data = DetectInput.from_frames(incidents=calls_frame("B4", quarter_end_downgrades=0.25))
    run = run_detection(data)
    assert run.tests_run == ["calls"]
    sig = run.significant()
    assert any(f.extra["area"] == "B4" and "unfounded" in f.extra["measure"] for f in sig)
    down = [f for f in sig if "less serious type" in f.extra["measure"]
            and "quarter" in f.unit]
    assert down and down[0].effect > 2
    facts = run.facts["calls"]["measures"]
    assert facts["downgraded"]["of"] < facts["unfounded"]["of"]  # only ranked pairs count


def test_honest_calls_raise_nothing_and_force_records_are_not_calls():
    run = run_detection(DetectInput.from_frames(incidents=calls_frame(seed=8)))
    assert len(run.findings) >= 20 and run.significant() == []
    # A force's own export (incidents and crimes together) is left to the other tests.
    from crimeaudit.detect.calibration import calibration_force

    t = calibration_force(n_crimes=2000, seed=1)
    both = DetectInput.from_frames(crimes=t["crimes"], incidents=calls_frame(n=500))
    assert both.disposition_kind() is None


def test_incident_reports_with_undated_resolutions_are_tested_as_calls():
    rng = np.random.default_rng(3)
    n = 6000
    when = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 730 * 86400, n),
                                                        unit="s")
    crimes = pd.DataFrame({"crime_id": [f"R{i}" for i in range(n)], "recorded_at": when,
                           "reported_at": when, "offence_code": "49",
                           "status": np.where(rng.random(n) < 0.03, "cancelled", "recorded"),
                           "outcome": "Open or Active",
                           "division": rng.choice(["Central", "Mission", "Park", "Bayview"], n)})
    data = DetectInput.from_frames(crimes=crimes)
    assert data.disposition_kind() == "reports"
    run = run_detection(data)
    units = [f.unit for f in run.findings if f.test == "calls"]
    assert any("by beat or district" in u for u in units)
    assert not any("without a report" in u for u in units)  # every row is a report
