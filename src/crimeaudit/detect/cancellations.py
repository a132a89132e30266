"""Test 4, cancellation patterns: rate and reason mix by strand, division and officer.

Each unit's cancellation rate (cancelled / recorded) and its share of cancellations on the
discretionary AVI ground ("additional verifiable information shows no crime") are compared with
the other units on a funnel plot with Spiegelhalter's over-dispersion (see
:mod:`crimeaudit.detect.funnel`), so small units are not flagged for noise and large units are
not flagged for trivial differences.

Strands are not exchangeable: sexual offences are cancelled more often than shoplifting, and
records made in error (later cancelled as such) fall mostly in the minor strands. So strands
are not compared with each other; within each strand, divisions are compared, and divisions and
officers are compared across all crime, each against the rate the *other* units have for the
same mix of strands (indirect standardisation).
"""

from __future__ import annotations

import pandas as pd

from crimeaudit.detect.downgrading import funnel_findings, plural
from crimeaudit.detect.funnel import standardised_counts
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding

TEST = "cancellations"
MIN_STRAND_CANCELLATIONS = 30
NOTE = "; indirectly standardised for strand mix"


def _rate_sentence(key: str, scope: str):
    def sentence(r) -> str:
        return (f"{key.capitalize()} {r.unit} cancelled {r.events:,} of {r.n:,} {scope}crimes "
                f"({100 * r.rate:.1f}%), against {100 * r.p0:.1f}% expected at the other "
                f"{plural(key)}' rates for the same strands.")
    return sentence


def cancellation_tests(data: DetectInput) -> list[Finding]:
    """Funnel tests of cancellation rate and AVI share by division and officer (and strand)."""
    c = data.crimes
    if c is None or "status" not in c:
        return []
    c = c.assign(cancelled=c["status"] == "cancelled")
    if c["cancelled"].sum() < 10:
        return []
    out: list[Finding] = []
    lvl = data.level
    keys = [k for k in ("division", "officer") if k in c and c[k].nunique() >= 3]
    for key in keys:
        units = standardised_counts(c, key, "cancelled", "strand")
        out += funnel_findings(
            units, TEST, f"cancellation rate by {key}", "excess cancellation rate", "greater",
            lvl, _rate_sentence(key, ""), method_note=NOTE)
    if "division" in keys:
        for s, mem in data.strand_members().items():
            sub = c[c["strand"].isin(mem)]
            if s == "all" or sub["cancelled"].sum() < MIN_STRAND_CANCELLATIONS:
                continue
            units = standardised_counts(sub, "division", "cancelled", "strand")
            out += funnel_findings(
                units, TEST, f"cancellation rate, strand={s}, by division",
                "excess cancellation rate", "greater", lvl,
                _rate_sentence("division", f"{s} "), method_note=NOTE)
    can = c[c["cancelled"] & c["cancellation_reason"].notna()] if "cancellation_reason" in c \
        else pd.DataFrame()
    if len(can) >= 30:
        can = can.assign(avi=can["cancellation_reason"] == "avi")
        for key in keys:
            units = standardised_counts(can, key, "avi", "strand")
            out += funnel_findings(
                units, TEST, f"AVI share of cancellations by {key}",
                "excess share of cancellations on AVI grounds", "greater", lvl,
                lambda r, key=key: (
                    f"{key.capitalize()} {r.unit} gave 'additional verifiable information' "
                    f"for {r.events:,} of {r.n:,} cancellations ({100 * r.rate:.1f}%), "
                    f"against {100 * r.p0:.1f}% expected at the other {plural(key)}' rates "
                    "for the same strands."), min_n=10, method_note=NOTE)
    return out
