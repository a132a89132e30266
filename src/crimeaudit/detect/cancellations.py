"""Test 4, cancellation patterns: rate and reason mix by strand, division and officer.

Each unit's cancellation rate (cancelled / recorded, by the crime's strand) and its share of
cancellations on the discretionary AVI ground ("additional verifiable information shows no
crime") are compared with the other units on a funnel plot with Spiegelhalter's over-dispersion
(see :mod:`crimeaudit.detect.funnel`), so small units are not flagged for noise and large units
are not flagged for trivial differences.
"""

from __future__ import annotations

import pandas as pd

from crimeaudit.detect.downgrading import funnel_findings, plural
from crimeaudit.detect.funnel import unit_counts
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding

TEST = "cancellations"


def cancellation_tests(data: DetectInput) -> list[Finding]:
    """Funnel tests of cancellation rate and AVI share by strand, division and officer."""
    c = data.crimes
    if c is None or "status" not in c:
        return []
    c = c.assign(cancelled=c["status"] == "cancelled")
    if c["cancelled"].sum() < 10:
        return []
    out: list[Finding] = []
    lvl = data.level
    keys = [k for k in ("strand", "division", "officer") if k in c and c[k].nunique() >= 3]
    for key in keys:
        units = unit_counts(c, key, "cancelled")
        out += funnel_findings(
            units, TEST, f"cancellation rate by {key}", "excess cancellation rate",
            "greater", lvl,
            lambda r, key=key: (
                f"{key.capitalize()} {r.unit} cancelled {r.events:,} of {r.n:,} crimes "
                f"({100 * r.rate:.1f}%), against {100 * r.p0:.1f}% for the other {plural(key)}."))
    can = c[c["cancelled"] & c["cancellation_reason"].notna()] if "cancellation_reason" in c \
        else pd.DataFrame()
    if len(can) >= 30:
        can = can.assign(avi=can["cancellation_reason"] == "avi")
        for key in keys:
            units = unit_counts(can, key, "avi")
            out += funnel_findings(
                units, TEST, f"AVI share of cancellations by {key}",
                "excess share of cancellations on AVI grounds", "greater", lvl,
                lambda r, key=key: (
                    f"{key.capitalize()} {r.unit} gave 'additional verifiable information' "
                    f"for {r.events:,} of {r.n:,} cancellations ({100 * r.rate:.1f}%), "
                    f"against {100 * r.p0:.1f}% for the other {plural(key)}."), min_n=10)
    return out
