"""Areas that cannot be compared with the others on a pair of offences, and why.

The pair tests (:mod:`downgrading`, :mod:`displacement`) compare an area's serious share of
a related pair (residential burglary against other theft, robbery against theft from the
person) with the other areas'. Some areas differ for reasons that have nothing to do with
recording: a transport police force polices railways, where there are almost no homes; the
City of London has about 8,600 residents and half a million daytime workers; an airport
command has travellers, not households. On the ONS file the first four findings of the whole
run were such artefacts ("British Transport Police recorded 0.0% of its burglary pair as the
serious class"). They are left out of the comparison (and of the other areas' comparison
rate), each with its reason, by two rules:

- the area's name matches a pattern of :data:`NOT_COMPARABLE` (a setting of each pair test:
  ``not_comparable``, pattern -> reason, matched in full and ignoring case);
- the area recorded none of one side of the pair at all (no residential burglary): a share of
  0% or 100% is a structural fact, not a recording pattern to rank.

>>> not_comparable("British Transport Police", NOT_COMPARABLE)[:30]
'a transport police force: it p'
>>> not_comparable("City of London 001B", NOT_COMPARABLE) is None
True
>>> one_sided("Airside", serious=0, minor=312, pair="burglary")
'recorded no burglary of the serious class at all (0 of 312): a structural difference, \
not a share to compare'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: Area name patterns (full match, case ignored) that a pair comparison leaves out, with why.
NOT_COMPARABLE: dict[str, str] = {
    r"british transport police( \(btp\))?": (
        "a transport police force: it polices the railways, where there are almost no homes "
        "or residents, so its mix of offences is not a territorial force's"),
    r"city of london( police)?": (
        "the City of London has about 8,600 residents and half a million daytime workers: "
        "little residential crime, much theft from the person, unlike any residential area"),
    r".*(heathrow|airports?).*": (
        "an airport command: travellers, not households, so no residential burglary and "
        "thefts of luggage instead"),
    r"action fraud|cifas|uk finance": (
        "a national fraud reporting body, not a territorial police force"),
}


def not_comparable(area: str, patterns: Mapping[str, str]) -> str | None:
    """The reason ``area`` cannot be compared (its first matching pattern), or ``None``."""
    name = str(area).strip()
    for pattern, reason in patterns.items():
        if re.fullmatch(pattern, name, re.IGNORECASE):
            return reason
    return None


def one_sided(area: str, serious: float, minor: float, pair: str) -> str | None:
    """The reason an area with none of one side of a pair cannot be compared, or ``None``."""
    if serious > 0 and minor > 0:
        return None
    side = "serious" if serious <= 0 else "minor"
    n = int(minor if serious <= 0 else serious)
    return (f"recorded no {pair} of the {side} class at all (0 of {n:,}): a structural "
            "difference, not a share to compare")


__all__ = ["NOT_COMPARABLE", "not_comparable", "one_sided"]
