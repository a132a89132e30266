"""``crimeaudit compare --counts FILE --pairs --json`` against intervals computed independently
of crimeaudit: per area the Wilson score interval (statsmodels ``proportion_confint``, and R's
``prop.test(correct = FALSE)``), per pair Newcombe's hybrid score interval computed by hand
from those Wilson limits (Newcombe 1998, method 10), both to 0.1 percentage points.

Areas: the inspectorate's published 2014 counts for Greater Manchester (265 of 388) and
Hampshire (67 of 112), and synthetic areas generated here (named "Synthetic ...") so that
rates near 1 and small samples are covered too.

The R check needs only base R: it runs when ``Rscript`` is on the machine, skips otherwise,
and fails in CI (``CI=true``), where R is installed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from crimeaudit.cli import app

POINT = 0.001  # 0.1 percentage points


def _counts(tmp_path) -> tuple[pd.DataFrame, object]:
    rng = np.random.default_rng(12)
    rows = [("Greater Manchester", 265, 388), ("Hampshire", 67, 112)]
    for i, (n, p) in enumerate([(40, 0.97), (1500, 0.836), (1500, 0.966), (250, 0.7),
                                (900, 0.99), (75, 0.5)]):
        rows.append((f"Synthetic {i + 1}", int(rng.binomial(n, p)), n))
    frame = pd.DataFrame(rows, columns=["area", "recorded", "should_have_been"])
    path = tmp_path / "forces.csv"
    frame.to_csv(path, index=False)
    return frame, path


def _run_cli(path) -> dict:
    r = CliRunner().invoke(app, ["compare", "--counts", str(path), "--pairs", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _newcombe_by_hand(x_a, n_a, x_b, n_b, wilson) -> tuple[float, float]:
    """B minus A: Newcombe's method 10 from each proportion's Wilson limits."""
    p_a, p_b = x_a / n_a, x_b / n_b
    l_a, u_a = wilson(x_a, n_a)
    l_b, u_b = wilson(x_b, n_b)
    d = p_b - p_a
    return (d - math.sqrt((p_b - l_b) ** 2 + (u_a - p_a) ** 2),
            d + math.sqrt((u_b - p_b) ** 2 + (p_a - l_a) ** 2))


def _statsmodels_wilson(x, n):
    return proportion_confint(x, n, alpha=0.05, method="wilson")


def _check(doc: dict, frame: pd.DataFrame, wilson) -> None:
    by_area = {a["area"]: a for a in doc["areas"]}
    assert set(by_area) == set(frame.area)
    counts = {r.area: (r.recorded, r.should_have_been) for r in frame.itertuples()}
    for area, (x, n) in counts.items():
        lo, hi = wilson(x, n)
        got = by_area[area]
        assert got["n"] == n
        assert got["estimate"] == pytest.approx(x / n, abs=1e-12)
        assert abs(got["lower"] - lo) < POINT, (area, got["lower"], lo)
        assert abs(got["upper"] - hi) < POINT, (area, got["upper"], hi)
    k = len(frame)
    assert len(doc["pairs"]) == k * (k - 1) // 2
    for pair in doc["pairs"]:
        (x_a, n_a), (x_b, n_b) = counts[pair["a"]], counts[pair["b"]]
        lo, hi = _newcombe_by_hand(x_a, n_a, x_b, n_b, wilson)
        assert pair["difference"] == pytest.approx(x_b / n_b - x_a / n_a, abs=1e-12)
        assert abs(pair["lower"] - lo) < POINT, (pair["a"], pair["b"], pair["lower"], lo)
        assert abs(pair["upper"] - hi) < POINT, (pair["a"], pair["b"], pair["upper"], hi)
        # The test of no change agrees with the interval it is reported beside.
        assert (pair["p"] < 0.05) == (pair["lower"] > 0 or pair["upper"] < 0)
        assert pair["p_adjusted"] >= pair["p"] - 1e-12


def test_cli_counts_match_statsmodels_wilson_and_newcombe_by_hand(tmp_path):
    frame, path = _counts(tmp_path)
    doc = _run_cli(path)
    _check(doc, frame, _statsmodels_wilson)
    # The published pair, read as a commissioner would: Hampshire 8.5 points lower.
    gm_ha = next(p for p in doc["pairs"] if (p["a"], p["b"]) == ("Greater Manchester",
                                                                 "Hampshire"))
    assert round(100 * gm_ha["difference"], 1) == -8.5


R_WILSON = r"""
d <- read.csv(commandArgs(trailingOnly = TRUE)[1], stringsAsFactors = FALSE)
out <- t(sapply(seq_len(nrow(d)), function(i)
  prop.test(d$recorded[i], d$should_have_been[i], correct = FALSE)$conf.int))
write.csv(data.frame(area = d$area, lower = out[, 1], upper = out[, 2]),
          commandArgs(trailingOnly = TRUE)[2], row.names = FALSE)
"""


@pytest.fixture(scope="module")
def rscript():
    path = shutil.which("Rscript")
    if not path:
        message = "Rscript is not installed (Debian: r-base-core)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}: the reference check must run in CI")
        pytest.skip(message)
    return path


def test_cli_counts_match_wilson_from_r(tmp_path, rscript):
    frame, path = _counts(tmp_path)
    script = tmp_path / "wilson.R"
    script.write_text(R_WILSON, encoding="utf-8")
    out = tmp_path / "r.csv"
    done = subprocess.run([rscript, str(script), str(path), str(out)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    r = pd.read_csv(out)
    limits = {(row.area): (row.lower, row.upper) for row in r.itertuples()}
    counts = {row.area: (row.recorded, row.should_have_been) for row in frame.itertuples()}
    lookup = {counts[area]: lim for area, lim in limits.items()}
    _check(_run_cli(path), frame, lambda x, n: lookup[(x, n)])
