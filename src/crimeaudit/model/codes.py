"""Code lists: offence classes, strands, cancellation reasons, outcomes, incident types.

The lists ship as CSV files in ``crimeaudit/model/data`` and a user may replace any of them by
passing a folder holding files of the same names.

>>> codes = load_code_lists()
>>> codes.offence("8N").strand
'violence'
>>> codes.strands_of("19C")
['rape', 'sexual', 'all']
>>> codes.is_downgrade("8N", "105A")
True
>>> codes.ancestry("rape")
['rape', 'sexual', 'all']
>>> codes.call_type_strand("DOMESTIC"), codes.call_type_strand("NOISE")
('violence', 'other')
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

#: The offence class of a crime whose source category has no class in the code list: it is
#: loaded (with its source category in ``source_offence_description``), never lost. Not a row
#: of ``offences.csv``, so it has no strand or seriousness rank and is never a downgrade.
UNCLASSIFIED = "unclassified"

_FILES = ("offences", "strands", "cancellation_reasons", "outcomes", "incident_types")


@dataclass(frozen=True)
class Offence:
    code: str
    description: str
    offence_group: str
    strand: str
    seriousness_rank: int


@dataclass(frozen=True)
class CodeLists:
    """All code lists, with the lookups every stage needs."""

    offences: dict[str, Offence]
    strand_parent: dict[str, str | None]
    strand_description: dict[str, str]
    cancellation_reasons: dict[str, dict[str, str]]
    outcomes: dict[str, dict[str, str]]
    incident_types: dict[str, dict[str, str]]

    def offence(self, code: str) -> Offence:
        try:
            return self.offences[code]
        except KeyError:
            raise KeyError(f"unknown offence code {code!r}") from None

    def ancestry(self, strand: str) -> list[str]:
        """A strand and every strand containing it, most specific first (ends with ``all``).

        The one place strand nesting is followed: estimates, plans and detectors all use it.
        An unknown strand has no ancestry but ``all``.
        """
        if strand not in self.strand_parent:
            return ["all"] if "all" in self.strand_parent else []
        out, s = [], strand
        while s and s not in out:
            out.append(s)
            s = self.strand_parent.get(s)
        return out

    def strands_of(self, code: str) -> list[str]:
        """The strand of an offence and every strand containing it, most specific first."""
        return self.ancestry(self.offence(code).strand)

    def call_type_strand(self, call_type: str | None) -> str:
        """The strand a crime reported under ``call_type`` most likely falls in (``other``
        for call types that do not usually disclose a crime, and for unknown ones).

        From the ``strand`` column of ``incident_types.csv``: known for every incident before
        anyone audits it, so samples are stratified and records linked by it.
        """
        row = self.incident_types.get(call_type or "")
        return (row or {}).get("strand") or "other"

    @property
    def call_type_strands(self) -> dict[str, str]:
        """Every call type with a strand (``incident_types.csv``), for vectorised mapping."""
        return {k: v["strand"] for k, v in self.incident_types.items() if v.get("strand")}

    def in_strand(self, code: str, strand: str) -> bool:
        return strand in self.strands_of(code)

    def codes_in_strand(self, strand: str) -> list[str]:
        return [c for c in self.offences if self.in_strand(c, strand)]

    def is_downgrade(self, from_code: str, to_code: str) -> bool:
        """True when ``to_code`` ranks less serious than ``from_code``."""
        return self.offence(to_code).seriousness_rank < self.offence(from_code).seriousness_rank

    def cancellation_reason_for_c_code(self, c_code: str) -> str:
        for reason, row in self.cancellation_reasons.items():
            if row["c_code"].upper() == c_code.strip().upper():
                return reason
        raise KeyError(f"unknown cancellation code {c_code!r}")

    @property
    def strands(self) -> list[str]:
        return list(self.strand_parent)


def _read(folder: Path | None, name: str) -> list[dict[str, str]]:
    if folder is not None and (folder / f"{name}.csv").exists():
        text = (folder / f"{name}.csv").read_text(encoding="utf-8-sig")
    else:
        text = resources.files("crimeaudit.model").joinpath(f"data/{name}.csv").read_text(
            encoding="utf-8"
        )
    return list(csv.DictReader(text.splitlines()))


@lru_cache(maxsize=8)
def load_code_lists(folder: str | Path | None = None) -> CodeLists:
    """Load the shipped code lists, or a user's replacements from ``folder``."""
    folder = Path(folder) if folder else None
    offences = {
        r["code"]: Offence(
            r["code"], r["description"], r["offence_group"], r["strand"],
            int(r["seriousness_rank"]),
        )
        for r in _read(folder, "offences")
    }
    strands = _read(folder, "strands")
    parent = {r["strand"]: (r["parent"] or None) for r in strands}
    for o in offences.values():
        if o.strand not in parent:
            raise ValueError(f"offence {o.code} names unknown strand {o.strand!r}")
    return CodeLists(
        offences=offences,
        strand_parent=parent,
        strand_description={r["strand"]: r["description"] for r in strands},
        cancellation_reasons={r["reason"]: r for r in _read(folder, "cancellation_reasons")},
        outcomes={r["code"]: r for r in _read(folder, "outcomes")},
        incident_types={r["code"]: r for r in _read(folder, "incident_types")},
    )
