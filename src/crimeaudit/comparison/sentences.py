"""The sentence a commissioner can quote: both figures with their intervals, the change and its
interval, in plain words.

Over time (two audits of one force) the change is a rise or a fall:

>>> from crimeaudit.model import Estimate
>>> a = Estimate("recording_rate", "all", 0.836, 0.818, 0.855, 0.95, "wilson", 1500)
>>> b = Estimate("recording_rate", "all", 0.966, 0.956, 0.975, 0.95, "wilson", 1500)
>>> print(change_sentence(a, b, 0.130, 0.108, 0.152, 0.95))  # doctest: +NORMALIZE_WHITESPACE
The recording rate rose from 83.6% (81.8-85.5) to 96.6% (95.6-97.5); a rise of 13.0 points
(95% CI 10.8 to 15.2).
>>> print(change_sentence(b, a, -0.130, -0.152, -0.108, 0.95))  # doctest: +NORMALIZE_WHITESPACE
The recording rate fell from 96.6% (95.6-97.5) to 83.6% (81.8-85.5); a fall of 13.0 points
(95% CI 10.8 to 15.2).

Between two areas it is a difference:

>>> print(change_sentence(a, b, 0.130, 0.108, 0.152, 0.95, between=("Kent", "Essex")))
... # doctest: +NORMALIZE_WHITESPACE
The recording rate was 83.6% (81.8-85.5) in Kent and 96.6% (95.6-97.5) in Essex; Essex is
13.0 points higher (95% CI 10.8 to 15.2).
"""

from __future__ import annotations

import math

from crimeaudit.model.figures import Estimate

SUBJECTS = {
    "recording_rate": "the recording rate",
    "timeliness": "the share of crimes recorded within the time limit",
    "classification_accuracy": "the share of recorded crimes correctly classified",
    "cancellation_wrong": "the share of cancellations that were wrong",
    "victim_told": "the share of victims told of a cancellation",
    "unrecorded_per_year": "unrecorded crimes a year",
}
SCOPES = {"violence": "violence against the person", "sexual": "sexual offences",
          "rape": "rape", "robbery": "robbery", "burglary": "burglary", "theft": "theft",
          "criminal_damage": "criminal damage", "other": "other crime"}


def subject(measure: str, scope: str) -> str:
    """What is measured, in words, with its scope.

    >>> subject("recording_rate", "violence")
    'the recording rate for violence against the person'
    >>> subject("timeliness", "division=North")
    'the share of crimes recorded within the time limit in the North division'
    """
    text = SUBJECTS.get(measure, measure.replace("_", " "))
    if scope == "all":
        return text
    if scope.startswith("division="):
        return f"{text} in the {scope.split('=', 1)[1]} division"
    return f"{text} for {SCOPES.get(scope, scope.replace('_', ' '))}"


def rounded(x: float) -> str:
    """A count to two significant figures, as the report's headline gives it.

    >>> rounded(6431.0), rounded(87.2), rounded(float("inf"))
    ('6,400', '87', 'unbounded')
    """
    if not math.isfinite(x):
        return "unbounded"
    if abs(x) < 100:
        return f"{x:,.0f}"
    digits = int(math.floor(math.log10(abs(x)))) - 1
    return f"{round(x, -digits):,.0f}"


def figure(e: Estimate) -> str:
    """``83.6% (81.8-85.5)`` or ``6,400 (5,300-7,800)``.

    >>> figure(Estimate("recording_rate", "all", 0.683, 0.635, 0.727, 0.95, "wilson", 388))
    '68.3% (63.5-72.7)'
    """
    if e.unit == "proportion":
        return f"{100 * e.estimate:.1f}% ({100 * e.lower:.1f}-{100 * e.upper:.1f})"
    return f"{rounded(e.estimate)} ({rounded(e.lower)}-{rounded(e.upper)})"


def _amount(x: float, unit: str) -> str:
    return f"{100 * x:.1f} points" if unit == "proportion" else rounded(x)


def _bound(x: float, unit: str) -> str:
    return f"{100 * x:.1f}" if unit == "proportion" else rounded(x)


def change_sentence(a: Estimate, b: Estimate, difference: float, lower: float, upper: float,
                    level: float, between: tuple[str, str] | None = None) -> str:
    """The quotable sentence for ``b - a`` with interval ``[lower, upper]``.

    ``between`` names two areas (then the sentence compares them) instead of two times. An
    interval that includes no change says so.
    """
    unit = a.unit
    what = subject(a.measure, a.scope)
    ci = f"{100 * level:.0f}% CI"
    unclear = lower <= 0 <= upper
    if between is not None:
        name_a, name_b = between
        head = (f"{what[0].upper()}{what[1:]} was {figure(a)} in {name_a} and {figure(b)} in "
                f"{name_b}")
        if _amount(abs(difference), unit) in ("0.0 points", "0"):
            return (f"{head}; no difference ({ci} {_bound(lower, unit)} to "
                    f"{_bound(upper, unit)}).")
        word = "higher" if difference > 0 else "lower"
        lo, hi = (lower, upper) if difference > 0 else (-upper, -lower)
        tail = (f"{name_b} is {_amount(abs(difference), unit)} {word} ({ci} "
                f"{_bound(lo, unit)} to {_bound(hi, unit)})")
        return f"{head}; {tail}" + (", which is not a clear difference." if unclear else ".")
    if _amount(abs(difference), unit) in ("0.0 points", "0"):
        return (f"{what[0].upper()}{what[1:]} was {figure(a)} and then {figure(b)}; no change "
                f"(difference {_amount(difference, unit)}, {ci} {_bound(lower, unit)} to "
                f"{_bound(upper, unit)}).")
    rose = difference > 0
    verb, noun = ("rose", "rise") if rose else ("fell", "fall")
    lo, hi = (lower, upper) if rose else (-upper, -lower)
    text = (f"{what[0].upper()}{what[1:]} {verb} from {figure(a)} to {figure(b)}; a {noun} of "
            f"{_amount(abs(difference), unit)} ({ci} {_bound(lo, unit)} to {_bound(hi, unit)})")
    return text + (", which could be no change." if unclear else ".")


__all__ = ["change_sentence", "figure", "rounded", "subject"]
