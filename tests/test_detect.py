"""Detectors on small calibration forces: each finds its injected effect and not an honest one."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from crimeaudit.detect import DetectInput, run_detection
from crimeaudit.detect.calibration import Injection, calibration_force
from crimeaudit.detect.funnel import funnel_test
from crimeaudit.uncertainty import bh_adjust


def _data(injection=None, n=20000, seed=11, **kw):
    t = calibration_force(n_crimes=n, seed=seed, injection=injection, **kw)
    return DetectInput.from_frames(crimes=t["crimes"], changes=t["classification_changes"])


def _best(findings, test, unit_part):
    hits = [f for f in findings if f.test == test and unit_part in f.unit]
    assert hits, f"no {test} finding for {unit_part}"
    return min(hits, key=lambda f: f.p_value)


@pytest.fixture(scope="module")
def honest_run():
    return run_detection(_data())


def test_honest_force_raises_no_findings(honest_run):
    assert len(honest_run.findings) > 50  # many units were tested...
    assert honest_run.significant() == []  # ...and none flagged after BH
    assert {"period_end", "deferral", "downgrading", "cancellations", "bunching"} <= set(
        honest_run.tests_run)
    assert "breaks" in honest_run.skipped  # needs counts, which a record-only force lacks


def test_quarter_end_cancellations_found_with_rate_ratio_near_injected():
    from crimeaudit.detect.period_end import period_end_records

    found = period_end_records(_data(Injection(cancel_multiplier=3.0), n=40000))
    f = _best(found, "period_end", "cancellations: all: quarter")
    # No targets declared: the quarter term is tested beyond month ends, exactly given the
    # months' totals (conservative for a nested term), so the p-value is modest for a x3 effect.
    assert f.p_value < 0.01
    assert f.lower < 3.0 < f.upper * 1.5 and f.effect > 1.5
    assert "last 3 days of each quarter" in f.sentence


def test_division_downgrading_found_in_that_division():
    from crimeaudit.detect.downgrading import reclassification_tests

    found = reclassification_tests(_data(Injection(downgrade_share=0.1, downgrade_division="D4")))
    f = _best(found, "downgrading", "downgrade rate, strand=violence")
    assert f.unit.endswith(": D4") and f.p_value < 0.001
    assert f.extra["chart"]["layer"][-1]["mark"]["type"] == "point"


def test_deferral_found_and_sized():
    from crimeaudit.detect.deferral import deferral_tests

    f = _best(deferral_tests(_data(Injection(deferral_probability=0.15))), "deferral",
              "all: quarter")
    assert f.p_value < 0.001 and f.effect > 1.5
    assert f.extra["observed"] > f.extra["expected"]


def test_bunching_below_threshold_found():
    from crimeaudit.detect.bunching import bunching_tests

    f = _best(bunching_tests(_data(Injection(bunching_share=0.1)), n_boot=30), "bunching",
              "threshold 200")
    assert f.p_value < 0.001 and f.lower > 0


def test_bh_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.001, 0.2, 0.03, 0.04, float("nan"), 0.5]
    q = bh_adjust(p)
    ref = multipletests([x for x in p if not math.isnan(x)], method="fdr_bh")[1]
    assert math.isnan(q[4])
    assert [round(x, 10) for x in q[:4] + q[5:]] == [round(x, 10) for x in ref]


def test_funnel_does_not_flag_small_units_for_noise():
    # One small unit with a high rate from 3 events out of 20: noise, not a signal.
    units = pd.DataFrame({"unit": list("ABCDEF"), "events": [100, 95, 105, 98, 102, 3],
                          "n": [2000, 2000, 2000, 2000, 2000, 20]})
    res = funnel_test(units).set_index("unit")
    assert res.loc["F", "p_value"] > 0.01


def test_run_json_is_valid_and_charts_render_as_vega_lite(honest_run):
    f = honest_run.findings[0]
    text = json.dumps(f.to_dict(), allow_nan=False, default=str)
    assert "vega-lite" in json.loads(text)["extra"]["chart"]["$schema"]


def test_targets_limit_strands_tested():
    from crimeaudit.detect.period_end import period_end_records
    from crimeaudit.detect.targets import parse_targets

    data = _data(n=8000)
    data.targets = parse_targets({"targets": [{"strand": "violence", "period": "quarter"}]})
    pe = period_end_records(data)
    assert pe and all(f.extra["period"] == "quarter" for f in pe)
    assert not any("strand=theft" in f.unit for f in pe)


def test_funnel_over_dispersion_is_the_same_in_blocks(monkeypatch):
    """The leave-one-out over-dispersion is computed a block of tested units at a time (a
    national project has some 15,000 officers: k x k matrices would need gigabytes); the
    figures do not depend on the block size."""
    import numpy as np
    import pandas as pd

    from crimeaudit.detect import funnel

    rng = np.random.default_rng(3)
    k = 1200
    n = rng.integers(1, 300, k).astype(float)
    units = pd.DataFrame({"unit": range(k), "events": rng.binomial(n.astype(int), 0.1), "n": n,
                          "expected": n * rng.uniform(0.05, 0.15, k)})
    results = []
    for block in (7, 512, 10**6):
        monkeypatch.setattr(funnel, "LOO_BLOCK", block)
        results.append(funnel.funnel_test(units, alternative="two-sided"))
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0], other, check_exact=False, rtol=1e-12)
    assert (results[0]["tau2"] > 0).any()
