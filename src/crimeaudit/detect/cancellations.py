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

from pydantic import Field

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.downgrading import funnel_findings, plural, strand_words
from crimeaudit.detect.funnel import standardised_counts
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding

TEST = "cancellations"
NOTE = "; indirectly standardised for strand mix"


class CancellationSettings(DetectorSettings):
    """Minimum data for the cancellation funnels."""

    min_cancellations: int = Field(10, ge=1, description=(
        "Cancellations needed before any cancellation test runs."))
    min_units: int = Field(3, ge=2, description=(
        "Divisions or officers needed to compare them on a funnel."))
    min_strand_cancellations: int = Field(30, ge=1, description=(
        "Cancellations a strand needs for its by-division funnel."))
    min_cancellations_with_reason: int = Field(30, ge=1, description=(
        "Cancellations with a recorded reason needed for the AVI-share funnels."))
    min_crimes_per_unit: int = Field(20, ge=1, description=(
        "Crimes a division or officer needs to be placed on a cancellation-rate funnel."))
    min_cancellations_per_unit: int = Field(10, ge=1, description=(
        "Cancellations with a reason a division or officer needs on the AVI-share funnel."))


def _rate_sentence(key: str, scope: str):
    def sentence(r) -> str:
        return (f"{key.capitalize()} {r.unit} cancelled {r.events:,} of {r.n:,} crimes{scope} "
                f"({100 * r.rate:.1f}%), against {100 * r.p0:.1f}% expected at the other "
                f"{plural(key)}' rates for the same strands.")
    return sentence


def _reader(key: str, measure: str) -> dict:
    """What a reader sees: a division is an area; an officer is named in the measure."""
    if key == "division":
        return {"area": lambda r: r.unit, "measure": measure}
    return {"measure": lambda r: f"{measure}, {key} {r.unit}"}


def cancellation_tests(data: DetectInput, settings: CancellationSettings | None = None,
                       skips: Skips | None = None) -> list[Finding]:
    """Funnel tests of cancellation rate and AVI share by division and officer (and strand)."""
    settings = settings or CancellationSettings()
    skips = skips if skips is not None else Skips()
    if not data.crime_has("status"):
        return []
    # Crimes per offence, division, officer and cancellation, counted in the engine: every
    # funnel below is a sum over its rows (weight ``n``).
    c = data.crime_mix()
    if skips.fewer(settings, "min_cancellations", int(c.loc[c["cancelled"], "n"].sum()),
                   "cancellations", unit="records"):
        return []
    out: list[Finding] = []
    lvl = data.level
    common = {"settings": settings, "skips": skips, "min_units": settings.min_units,
              "method_note": NOTE}
    keys = [k for k in ("division", "officer") if data.crime_has(k) and not skips.fewer(
        settings, "min_units", c[k].dropna().nunique(), plural(k), unit=f"by {k}")]
    for key in keys:
        units = standardised_counts(c, key, "cancelled", "strand", weight="n")
        out += funnel_findings(
            units, TEST, f"cancellation rate by {key}", "excess cancellation rate", "greater",
            lvl, _rate_sentence(key, ""), min_n=settings.min_crimes_per_unit,
            min_n_setting="min_crimes_per_unit", n_words="crimes",
            **_reader(key, "share of crimes cancelled"), **common)
    if "division" in keys:
        for s, mem in data.strand_members().items():
            if s == "all":
                continue
            sub = c[c["strand"].isin(mem)]
            if skips.fewer(settings, "min_strand_cancellations",
                           int(sub.loc[sub["cancelled"], "n"].sum()), "cancellations",
                           unit=f"strand={s}"):
                continue
            units = standardised_counts(sub, "division", "cancelled", "strand", weight="n")
            words = strand_words(data, s)
            out += funnel_findings(
                units, TEST, f"cancellation rate, strand={s}, by division",
                "excess cancellation rate", "greater", lvl,
                _rate_sentence("division", f" of {words}"), min_n=settings.min_crimes_per_unit,
                min_n_setting="min_crimes_per_unit", n_words="crimes",
                **_reader("division", f"share of crimes cancelled ({words})"), **common)
    can = c[c["cancelled"] & c["reason"].notna()]
    if data.crime_has("cancellation_reason") and not skips.fewer(
            settings, "min_cancellations_with_reason", int(can["n"].sum()),
            "cancellations with a reason", unit="AVI share"):
        can = can.assign(avi=can["reason"] == "avi")
        for key in keys:
            units = standardised_counts(can, key, "avi", "strand", weight="n")
            out += funnel_findings(
                units, TEST, f"AVI share of cancellations by {key}",
                "excess share of cancellations on AVI grounds", "greater", lvl,
                lambda r, key=key: (
                    f"{key.capitalize()} {r.unit} gave 'additional verifiable information' "
                    f"for {r.events:,} of {r.n:,} cancellations ({100 * r.rate:.1f}%), "
                    f"against {100 * r.p0:.1f}% expected at the other {plural(key)}' rates "
                    "for the same strands."), min_n=settings.min_cancellations_per_unit,
                min_n_setting="min_cancellations_per_unit", n_words="cancellations",
                **_reader(key, "share of cancellations on AVI grounds"), **common)
    return out


class Cancellations(Detector):
    """Test 4 (see the module notes)."""

    name = TEST
    question = ("Does a division or officer cancel more crimes, or cancel more on the "
                "discretionary AVI ground, than the others would for the same mix of strands?")
    needs = (("cancellations",),)
    Settings = CancellationSettings

    def run(self, data: DetectInput, settings: CancellationSettings,
            skips: Skips | None = None) -> list[Finding]:
        return cancellation_tests(data, settings, skips)
