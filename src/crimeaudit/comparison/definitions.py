"""What makes two audits measure different things: frame, period, timeliness limit, confidence
level, code lists. Each difference is a warning printed beside the comparison.

Two audits of the same force a year apart cover different periods by design: the periods are
stated in the notes, and only a difference in the *length* of the period (six months against
a year), a period not stated, or two samples of one project whose periods overlap (they may
share records, and the intervals assume independent samples) is a warning.

>>> from crimeaudit.comparison.audits import Audit
>>> a = Audit("Kent 2017", (), level=0.95, period_start="2017-01-01", period_end="2017-06-30",
...           timeliness_hours=24, code_lists="abc")
>>> b = Audit("Kent 2018", (), level=0.95, period_start="2018-01-01", period_end="2018-12-31",
...           timeliness_hours=72, code_lists="abc")
>>> warnings, notes = definition_differences(a, b)
>>> for w in warnings: print(w)  # doctest: +NORMALIZE_WHITESPACE
timeliness limit differs: Kent 2017 allowed 24 hours, Kent 2018 72 hours, so timeliness
  figures measure different things
audit periods differ in length: Kent 2017 covers 181 days (2017-01-01 to 2017-06-30),
  Kent 2018 365 days (2018-01-01 to 2018-12-31)
"""

from __future__ import annotations

from crimeaudit.comparison.audits import Audit

#: Periods whose lengths differ by more than this share are of different definitions.
PERIOD_TOLERANCE = 0.10


def _hours(h: float | None) -> str:
    return "not stated" if h is None else f"{h:g} hours"


def definition_differences(a: Audit, b: Audit) -> tuple[list[str], list[str]]:
    """``(warnings, notes)`` about how ``a`` and ``b`` were measured."""
    warnings: list[str] = []
    notes: list[str] = []
    if a.frame != b.frame:
        warnings.append(f"sampling frames differ: {a.label} sampled {a.frame}, {b.label} "
                        f"{b.frame}")
    if (a.timeliness_hours is not None and b.timeliness_hours is not None
            and a.timeliness_hours != b.timeliness_hours):
        warnings.append(f"timeliness limit differs: {a.label} allowed "
                        f"{_hours(a.timeliness_hours)}, {b.label} {_hours(b.timeliness_hours)}, "
                        "so timeliness figures measure different things")
    if abs(a.level - b.level) > 1e-9:
        warnings.append(f"confidence levels differ: {a.label} was estimated at "
                        f"{100 * a.level:g}%, {b.label} at {100 * b.level:g}%; both are "
                        "shown here at the comparison's level (intervals recomputed)")
    if a.code_lists and b.code_lists and a.code_lists != b.code_lists:
        warnings.append(f"code lists differ ({a.label}: {a.code_lists}, {b.label}: "
                        f"{b.code_lists}): offences may fall in different strands, so strand "
                        "figures may not be comparable")
    warnings += _period_warnings(a, b)
    if a.period_label not in a.label or b.period_label not in b.label:
        notes.append(f"periods: {a.label}: {a.period_label}; {b.label}: {b.period_label}")
    ka, kb = a.design.get("kind"), b.design.get("kind")
    if ka and kb and ka != kb:
        notes.append(f"designs differ ({a.label}: {ka}, {b.label}: {kb}); each figure keeps "
                     "its own design-based variance")
    if a.method != b.method:
        notes.append(f"estimation methods differ ({a.label}: {a.method}, {b.label}: "
                     f"{b.method})")
    return warnings, notes


def _period_warnings(a: Audit, b: Audit) -> list[str]:
    out = []
    missing = [x.label for x in (a, b) if x.period_start is None or x.period_end is None]
    if missing:
        out.append(f"audit period not fully stated for {' and '.join(missing)}: the periods "
                   "compared cannot be checked")
        return out
    da, db = a.period_days, b.period_days
    if abs(da - db) > PERIOD_TOLERANCE * max(da, db):
        out.append(f"audit periods differ in length: {a.label} covers {da} days "
                   f"({a.period_label}), {b.label} {db} days ({b.period_label})")
    same_project = a.source is not None and a.source == b.source
    overlap = a.period_start <= b.period_end and b.period_start <= a.period_end
    if same_project and overlap and a.sample_id != b.sample_id:
        out.append(f"{a.label} and {b.label} are samples of one project with overlapping "
                   "periods: they may share records, and the interval assumes independent "
                   "samples")
    return out


def common_differences(audits: list[Audit]) -> tuple[list[str], list[str]]:
    """Warnings and notes over many audits: each compared with the first, each message once."""
    warnings: list[str] = []
    notes: list[str] = []
    for other in audits[1:]:
        w, n = definition_differences(audits[0], other)
        warnings += [x for x in w if x not in warnings]
        notes += [x for x in n if x not in notes and not x.startswith("periods:")]
    return warnings, notes


__all__ = ["common_differences", "definition_differences"]
