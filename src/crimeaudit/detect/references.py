"""Integrity test, crime reference numbers: gaps in the sequence and numbers used twice.

A force's crime system hands out reference numbers in order (``CR-000123``, ``46/12345/19``).
In a complete export every number between the first and the last of a sequence is there: a run
of missing numbers is a record deleted, never exported, or a number skipped, and an auditor's
first question (ACL and IDEA run the same "gaps" test on any ledger). A number seen twice
under different spellings (``CR-123`` and ``cr-0123``) is a number reused.

**Sequences.** The serial of a reference is its longest run of digits; the rest, upper-cased
with the serial replaced by ``#``, names its sequence (``CR-#``, ``46/#/19``: a division's or
a year's own numbering is its own sequence). A sequence is tested when it has at least
``min_sequence_records`` records and they fill at least ``min_density`` of the numbers
between its first and last (ids that are not sequential, or an extract of a few offences, are
skipped with the reason). A jump of more than ``max_gap`` numbers is read as a new block (a
system change, or one reference typed far out of range), noted, and not counted as a gap.

**Gaps by month and division.** Records are ordered by number; a gap (numbers missing between
two consecutive records) belongs to the month in which the record before it was made, and to
its division when the sequence is a division's own (else to the force, naming the divisions
on either side). Each month of each sequence is one unit: missing numbers as a share of the
numbers the month spans, with a Clopper-Pearson interval, tested one-sided against
``tolerated_missing_share`` (numbers a system may skip on its own) by an exact binomial test.

>>> import pandas as pd
>>> split_reference(pd.Series(["CR-000123", "46/12345/19", "x"])).to_dict("list")
{'sequence': ['CR-#', '46/#/19', None], 'number': [123.0, 12345.0, nan], 'width': [6, 5, 0]}
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field
from scipy import stats

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.charts import bar_chart
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding
from crimeaudit.uncertainty import clopper_pearson

TEST = "references"
_DIGITS = r"(\d+)"
_RUN = re.compile(r"\d+")
#: How many examples a note names (the rest are counted).
SHOWN = 5


class ReferenceSettings(DetectorSettings):
    """When a run of references counts as a sequence, and what a system may skip."""

    min_sequence_records: int = Field(100, ge=2, description=(
        "Records a reference sequence needs before its gaps are tested."))
    min_density: float = Field(0.5, gt=0, le=1, description=(
        "Share of the numbers between a sequence's first and last that must be present for "
        "it to count as a sequence (ids that are not numbered in order are skipped)."))
    tolerated_missing_share: float = Field(0.001, ge=0, lt=1, description=(
        "Share of numbers a crime system may skip on its own (abandoned entries); a month "
        "is tested for missing more than this."))
    max_gap: int = Field(1000, ge=1, description=(
        "A jump of more numbers than this is read as a new block of numbers (a system "
        "change, a typed reference far out), noted but not tested as a gap."))
    max_blocks: int = Field(10, ge=1, description=(
        "A sequence broken by jumps (see max_gap) into more blocks than this is not numbered "
        "in order and is not tested."))
    gaps_listed: int = Field(10, ge=1, description=(
        "Largest gaps listed in each month's finding (first and last missing number)."))


def split_reference(refs: pd.Series) -> pd.DataFrame:
    """``sequence`` (the reference with its longest digit run, the first of equals, as ``#``,
    upper case, no spaces around),
    ``number`` (that digit run as a number; both missing where there are no digits) and
    ``width`` (its digits, zero padding included)."""
    text = pc.utf8_upper(pc.utf8_trim_whitespace(pa.array(refs.astype(object), pa.string())))
    # The common case, one run of digits, in Arrow kernels; several runs row by row.
    runs = pc.fill_null(pc.count_substring_regex(text, _DIGITS), 0).to_numpy()
    one = pa.array(runs == 1)
    seq = pc.if_else(one, pc.replace_substring_regex(text, _DIGITS, "#"), None)
    digits = pc.if_else(one, pc.replace_substring_regex(text, r"\D+", ""), None)
    sequence = np.asarray(seq.to_pylist(), dtype=object)
    number = pc.cast(digits, pa.float64()).to_numpy(zero_copy_only=False).copy()
    width = pc.fill_null(pc.utf8_length(digits), 0).to_numpy().astype(np.int64)
    several = np.flatnonzero(runs > 1)
    for i, t in zip(several, text.take(pa.array(several, pa.int64())).to_pylist(),
                    strict=True):
        run = max(_RUN.finditer(t), key=lambda m: m.end() - m.start())  # first of equals
        sequence[i] = t[:run.start()] + "#" + t[run.end():]
        number[i], width[i] = float(run.group()), run.end() - run.start()
    out = pd.DataFrame({"sequence": sequence, "number": number, "width": width},
                       index=refs.index)
    out["sequence"] = out["sequence"].astype(object).where(out["sequence"].notna(), None)
    return out


def _references(data: DetectInput) -> pd.DataFrame:
    c = data.crimes
    cols = [x for x in ("crime_id", "recorded_at", "division") if x in c.columns]
    df = c.select(cols).to_pandas()
    if "division" not in df:
        df["division"] = None
    return pd.concat([df, split_reference(df["crime_id"])], axis=1)


def reference_tests(data: DetectInput, settings: ReferenceSettings | None = None,
                    skips: Skips | None = None) -> list[Finding]:
    """Gaps by sequence and month, and references used twice (see the module notes)."""
    settings = settings or ReferenceSettings()
    skips = skips if skips is not None else Skips()
    refs = _references(data)
    out: list[Finding] = []
    numbered = refs[refs["number"].notna()]
    if len(numbered) < len(refs):
        skips.note(f"{len(refs) - len(numbered):,} crime references without digits not "
                   "tested")
    facts = {"sequences_tested": 0, "missing_numbers": 0, "reused_numbers": 0}
    # Hashed ids (data.police.uk) make a "sequence" of nearly every record: one note for all
    # the sequences too small to test, not one each.
    sizes = numbered["sequence"].value_counts()
    small = sizes[sizes < settings.min_sequence_records]
    if len(small):
        skips.note(f"{len(small):,} reference sequence{'s' if len(small) > 1 else ''} with "
                   f"fewer than min_sequence_records={settings.min_sequence_records} records "
                   f"({int(small.sum()):,} records) not tested"
                   + (f" (e.g. {small.index[0]})" if len(small) <= SHOWN else ""))
    numbered = numbered[~numbered["sequence"].isin(small.index)]
    for seq, g in numbered.groupby("sequence", sort=True):
        numbers = np.unique(g["number"].to_numpy())
        steps = np.diff(numbers) - 1
        jumps = np.flatnonzero(steps > settings.max_gap)
        if len(jumps) + 1 > settings.max_blocks:
            skips.note(f"sequence {seq}: {len(jumps) + 1:,} blocks of numbers (more than "
                       f"max_blocks={settings.max_blocks}): not numbered in order")
            continue
        for j in jumps[:SHOWN]:
            skips.note(f"sequence {seq}: numbers jump from {numbers[j]:.0f} to "
                       f"{numbers[j + 1]:.0f} (more than max_gap={settings.max_gap:,}): read "
                       "as a new block of numbers, not as a gap")
        if len(jumps) > SHOWN:
            skips.note(f"sequence {seq}: {len(jumps) - SHOWN:,} more jumps of more than "
                       f"max_gap={settings.max_gap:,}")
        span = len(numbers) + steps[steps <= settings.max_gap].sum()
        distinct = len(numbers)
        if distinct / span < settings.min_density:
            skips.note(f"sequence {seq}: {distinct:,} numbers over a span of {span:,.0f} "
                       f"(fewer than min_density={settings.min_density:g} present): not "
                       "numbered in order")
            continue
        facts["sequences_tested"] += 1
        reused = _reused(g, seq, data.level)
        facts["reused_numbers"] += len(reused)
        out += reused
        gaps = _gap_findings(g, seq, data.level, settings)
        facts["missing_numbers"] += int(sum(f.extra["events"] for f in gaps))
        out += gaps
    skips.facts.update(facts)
    return out


def _gap_findings(g: pd.DataFrame, seq: str, level: float,
                  settings: ReferenceSettings) -> list[Finding]:
    width = int(g["width"].mode().iloc[0])
    g = g.sort_values(["number", "crime_id"]).drop_duplicates("number")
    g = g.assign(month=pd.to_datetime(g["recorded_at"]).dt.to_period("M").astype(str))
    numbers = g["number"].to_numpy()
    missing = np.append(np.diff(numbers) - 1, 0).astype(np.int64)
    missing[missing > settings.max_gap] = 0  # a new block of numbers, noted, not a gap
    g = g.assign(missing=missing, next_number=np.append(numbers[1:], np.nan),
                 next_division=np.append(g["division"].to_numpy()[1:], None))
    divisions = g["division"].dropna().unique()
    own = divisions[0] if len(divisions) == 1 else None
    months = g.groupby("month").agg(records=("number", "size"), missing=("missing", "sum"))
    chart = bar_chart([{"month": m, "missing numbers": int(r.missing)}
                       for m, r in months.iterrows()], "month", "missing numbers",
                      f"Missing reference numbers by month, sequence {seq}")
    p_ok = settings.tolerated_missing_share
    out = []
    for month, r in months.iterrows():
        k, n = int(r.missing), int(r.records + r.missing)
        lo, hi = clopper_pearson(k, n, level)
        p = float(stats.binom.sf(k - 1, n, p_ok)) if k else 1.0
        holes = g[(g["month"] == month) & (g["missing"] > 0)].nlargest(
            settings.gaps_listed, "missing")
        listed = [{"first_missing": _ref(seq, row.number + 1, width),
                   "last_missing": _ref(seq, row.next_number - 1, width),
                   "missing": int(row.missing),
                   "after": row.crime_id, "division_before": row.division,
                   "division_after": row.next_division} for row in holes.itertuples()]
        where = f"in {own}" if own else "force-wide"
        if k:
            biggest = listed[0]
            around = sorted({str(x) for x in (biggest["division_before"],
                                              biggest["division_after"]) if x is not None})
            sentence = (f"Sequence {seq} ({where}), records made in {month}: {k:,} reference "
                        f"numbers missing among {n:,} ({100 * k / n:.2f}%); the largest gap is "
                        f"{biggest['first_missing']} to {biggest['last_missing']} "
                        f"({biggest['missing']:,} numbers"
                        + (f", between records of {' and '.join(around)}" if around else "")
                        + "). Deleted or unexported records, or numbers skipped; rows "
                          "quarantined at ingest also leave gaps.")
        else:
            sentence = (f"Sequence {seq} ({where}), records made in {month}: no reference "
                        f"number missing among {n:,}.")
        out.append(Finding(
            test=TEST, unit=f"gaps, sequence {seq}: {month}", effect=k / n, lower=lo,
            upper=hi, effect_name="share of reference numbers missing", p_value=p,
            q_value=float("nan"), sentence=sentence, level=level,
            method=(f"gaps in the sorted reference numbers; Clopper-Pearson interval; exact "
                    f"binomial test against {p_ok:g} skipped (one-sided)"),
            n=n,
            extra={"area": own or "all", "date": month, "scale": "difference",
                   "rate": k / n, "comparison_rate": p_ok, "events": k,
                   "measure": f"reference numbers missing, sequence {seq}",
                   "gaps": listed, "chart": chart, "highlight": month}))
    return out


def _ref(seq: str, number: float, width: int = 0) -> str:
    """A reference of ``seq`` as the force writes it: ``_ref("CR-#", 12, 6)`` is CR-000012."""
    return seq.replace("#", str(int(number)).zfill(width), 1)


def _reused(g: pd.DataFrame, seq: str, level: float) -> list[Finding]:
    """A number held by more than one record (different spellings of one reference)."""
    twice = g[g.duplicated("number", keep=False)].sort_values(["number", "crime_id"])
    if twice.empty:
        return []
    width = int(g["width"].mode().iloc[0])
    groups = [{"number": _ref(seq, num, width), "references": list(x["crime_id"]),
               "divisions": sorted({str(d) for d in x["division"].dropna()})}
              for num, x in twice.groupby("number")]
    k, n = len(groups), int(g["number"].nunique())
    lo, hi = clopper_pearson(k, n, level)
    shown = "; ".join(" = ".join(x["references"]) for x in groups[:SHOWN])
    return [Finding(
        test=TEST, unit=f"reused numbers, sequence {seq}", effect=k / n, lower=lo, upper=hi,
        effect_name="share of reference numbers held by more than one record",
        p_value=0.0, q_value=float("nan"),
        sentence=(f"Sequence {seq}: {k:,} reference numbers are held by more than one crime "
                  f"record, spelt differently ({shown}{'; ...' if k > SHOWN else ''}). A number "
                  "should identify one crime."),
        level=level, method="the same serial in one sequence after case, spaces and zero "
                            "padding are set aside; any reuse is a finding",
        n=n, extra={"area": "all", "scale": "difference", "rate": k / n,
                    "comparison_rate": 0.0, "events": k,
                    "measure": f"reference numbers reused, sequence {seq}",
                    "reused": groups[:100]})]


class References(Detector):
    """Integrity test, crime reference numbers (see the module notes)."""

    name = TEST
    question = ("Are crime reference numbers missing from the middle of their sequence, by "
                "month and division, or is one number used by more than one record?")
    needs = (("crimes",),)
    Settings = ReferenceSettings

    def run(self, data: DetectInput, settings: ReferenceSettings,
            skips: Skips | None = None) -> list[Finding]:
        return reference_tests(data, settings, skips)


__all__ = ["ReferenceSettings", "References", "reference_tests", "split_reference"]
