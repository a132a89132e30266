"""What the detectors read: the canonical tables, as small pandas frames with derived columns.

Detectors never reach into a source format: they take the canonical ``crimes``,
``incidents``, ``classification_changes`` and ``counts`` tables (from a project store, Ibis
tables, Arrow tables or pandas frames). Only the columns a test needs are pulled from the
engine, so a 1M-incident force stays within memory.

>>> import pandas as pd
>>> crimes = pd.DataFrame({"crime_id": ["a"], "recorded_at": [pd.Timestamp("2020-01-01")],
...                        "offence_code": ["8N"], "status": ["recorded"]})
>>> data = DetectInput.from_frames(crimes=crimes)
>>> data.crimes["strand"].tolist(), data.has_records
(['violence'], True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from crimeaudit.detect.targets import Targets
from crimeaudit.model.codes import CodeLists, load_code_lists

CRIME_COLUMNS = (
    "crime_id", "incident_id", "reported_at", "recorded_at", "offence_code", "status",
    "cancellation_reason", "cancelled_at", "outcome", "property_value", "division", "officer",
)
INCIDENT_COLUMNS = ("incident_id", "reported_at", "call_type", "closing_code", "division")
CHANGE_COLUMNS = ("crime_id", "changed_at", "from_code", "to_code", "changed_by")
COUNT_COLUMNS = (
    "source", "area", "offence", "offence_group", "period_start", "period_end", "period_type",
    "count", "adjustment",
)


def to_frame(data: Any, columns: tuple[str, ...]) -> pd.DataFrame | None:
    """A pandas frame of the wanted columns (those present) from Ibis, Arrow or pandas data."""
    if data is None:
        return None
    if isinstance(data, pd.DataFrame):
        df = data
    elif isinstance(data, pa.Table):
        keep = [c for c in columns if c in data.column_names]
        df = data.select(keep).to_pandas()
    else:  # an Ibis table expression: select first, so only needed columns leave the engine
        keep = [c for c in columns if c in data.columns]
        df = data.select(keep).to_pandas()
    df = df[[c for c in columns if c in df.columns]].copy()
    return df if len(df) else None


@dataclass
class DetectInput:
    """The canonical tables a detection run reads, plus code lists, targets and settings."""

    crimes: pd.DataFrame | None = None
    incidents: pd.DataFrame | None = None
    changes: pd.DataFrame | None = None
    counts: pd.DataFrame | None = None
    previous_crimes: pd.DataFrame | None = None
    codes: CodeLists = field(default_factory=load_code_lists)
    targets: Targets = field(default_factory=Targets)
    level: float = 0.95
    timeliness_hours: float = 24.0

    @classmethod
    def from_frames(
        cls,
        crimes: Any = None,
        incidents: Any = None,
        changes: Any = None,
        counts: Any = None,
        previous_crimes: Any = None,
        **settings: Any,
    ) -> DetectInput:
        """Build from any mix of Ibis tables, Arrow tables and pandas frames."""
        data = cls(
            crimes=to_frame(crimes, CRIME_COLUMNS),
            incidents=to_frame(incidents, INCIDENT_COLUMNS),
            changes=to_frame(changes, CHANGE_COLUMNS),
            counts=to_frame(counts, COUNT_COLUMNS),
            previous_crimes=to_frame(previous_crimes, CRIME_COLUMNS),
            **settings,
        )
        data._derive()
        return data

    def _derive(self) -> None:
        codes = self.codes
        known = codes.offences
        if self.crimes is not None:
            c = self.crimes
            for col in ("reported_at", "recorded_at", "cancelled_at"):
                if col in c:
                    c[col] = pd.to_datetime(c[col])
            strand = {k: o.strand for k, o in known.items()}
            rank = {k: o.seriousness_rank for k, o in known.items()}
            c["strand"] = c["offence_code"].map(strand).fillna("unknown")
            c["rank"] = c["offence_code"].map(rank)
            if "division" not in c:
                c["division"] = None
        if self.changes is not None:
            ch = self.changes
            ch["changed_at"] = pd.to_datetime(ch["changed_at"])
            rank = {k: o.seriousness_rank for k, o in known.items()}
            fr, to = ch["from_code"].map(rank), ch["to_code"].map(rank)
            # Same rule as CodeLists.is_downgrade, vectorised; unknown codes are neither.
            ch["direction"] = "same"
            ch.loc[to < fr, "direction"] = "down"
            ch.loc[to > fr, "direction"] = "up"
            ch.loc[fr.isna() | to.isna(), "direction"] = "unknown"
            ch["from_strand"] = ch["from_code"].map({k: o.strand for k, o in known.items()})
        if self.incidents is not None:
            self.incidents["reported_at"] = pd.to_datetime(self.incidents["reported_at"])
        if self.counts is not None:
            k = self.counts
            k["period_start"] = pd.to_datetime(k["period_start"])
            k["period_end"] = pd.to_datetime(k["period_end"])
            k["count"] = k["count"].astype(float)

    @property
    def has_records(self) -> bool:
        return self.crimes is not None and len(self.crimes) > 0

    def strands_of(self, code_strand: str) -> list[str]:
        """A crime strand and its parents (``rape`` -> rape, sexual, all)."""
        out, s = [], code_strand
        while s:
            out.append(s)
            s = self.codes.strand_parent.get(s)
        return out or ["all"]

    def strand_members(self) -> dict[str, list[str]]:
        """Each strand and the most-specific strands it contains (for per-strand subsets)."""
        members: dict[str, list[str]] = {}
        for s in self.codes.strand_parent:
            members[s] = [t for t in self.codes.strand_parent if s in self.strands_of(t)]
        return members
