"""The canonical tables every source becomes inside crimeaudit.

Each table is a list of :class:`Column` (name, type, required, meaning). The same definitions
drive the simulator's output, the ingest validation, the empty tables created by
``crimeaudit init`` and ``docs/data-model.md``.

>>> from crimeaudit.model.schema import TABLES
>>> [c.name for c in TABLES["classification_changes"].columns]
['crime_id', 'changed_at', 'from_code', 'to_code', 'changed_by']
>>> TABLES["crimes"].arrow_schema().field("recorded_at").type
TimestampType(timestamp[us])
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    type: str
    required: bool
    meaning: str
    personal: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return _TYPES[self.type]


@dataclass(frozen=True)
class Table:
    """A canonical table: its name, key and columns."""

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    meaning: str

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=not c.required) for c in self.columns]
        )

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


def _t(name: str, key: tuple[str, ...], meaning: str, *cols: tuple) -> Table:
    return Table(name, key, tuple(Column(*c) for c in cols), meaning)


INCIDENTS = _t(
    "incidents",
    ("incident_id",),
    "The command-and-control log: one row per report from the public.",
    ("incident_id", "string", True, "Force incident reference (unique)."),
    ("reported_at", "timestamp", True, "When the report was received."),
    ("call_type", "string", False, "Opening (call) type, e.g. ASSAULT, ASB, WELFARE."),
    ("closing_code", "string", False, "How the incident was closed, e.g. CRIME_RECORDED, NFA."),
    ("narrative", "string", False, "Free text written by the call handler and officer."),
    ("location", "string", False, "Where it happened (street, beat or area; not an address)."),
    ("latitude", "float", False, "WGS84 latitude, if known."),
    ("longitude", "float", False, "WGS84 longitude, if known."),
    ("division", "string", False, "Division, district or borough command unit."),
    ("officer", "string", False, "Attending officer (pseudonym).", True),
    ("victim", "string", False, "Victim or caller (pseudonym).", True),
    ("crime_refs", "string", False, "Crime references noted on the incident, ';'-separated."),
    ("source", "string", False, "Where the row came from (profile and file)."),
)

CRIMES = _t(
    "crimes",
    ("crime_id",),
    "Crime records: one row per recorded crime, including cancelled ones.",
    ("crime_id", "string", True, "Force crime reference (unique)."),
    ("incident_id", "string", False, "The incident the crime came from, if referenced."),
    ("reported_at", "timestamp", False, "When the crime was reported."),
    ("recorded_at", "timestamp", True, "When the crime record was created."),
    ("offence_code", "string", True, "Current offence class (HOCR-style code, see offences)."),
    ("source_offence_code", "string", False, "The source's own offence code, if crosswalked."),
    ("source_offence_description", "string", False, "The source's own offence description."),
    ("status", "string", True, "'recorded' or 'cancelled'."),
    ("cancellation_reason", "string", False, "Reason key from cancellation_reasons, if cancelled."),
    ("cancelled_at", "timestamp", False, "When the record was cancelled."),
    ("outcome", "string", False, "Outcome type code (OC1, OC18, ...)."),
    ("property_value", "float", False, "Value of property stolen or damaged, where relevant."),
    ("division", "string", False, "Division that owns the record."),
    ("officer", "string", False, "Officer in the case (pseudonym).", True),
    ("victim", "string", False, "Victim (pseudonym).", True),
    ("location", "string", False, "Where it happened (street, beat or area)."),
    ("latitude", "float", False, "WGS84 latitude, if known."),
    ("longitude", "float", False, "WGS84 longitude, if known."),
    ("source", "string", False, "Where the row came from (profile and file)."),
)

CLASSIFICATION_CHANGES = _t(
    "classification_changes",
    ("crime_id", "changed_at"),
    "Every change of a crime's offence class.",
    ("crime_id", "string", True, "The crime reclassified."),
    ("changed_at", "timestamp", True, "When the class changed."),
    ("from_code", "string", True, "Offence code before the change."),
    ("to_code", "string", True, "Offence code after the change."),
    ("changed_by", "string", False, "Who changed it (pseudonym).", True),
)

COUNTS = _t(
    "counts",
    ("source", "area", "offence", "period_start", "period_type"),
    "Aggregate public data: counts of crimes by area, offence and period.",
    ("source", "string", True, "Dataset (profile) the count came from."),
    ("area", "string", True, "Force area, borough or other unit."),
    ("offence", "string", True, "Offence as named by the source."),
    ("offence_group", "string", False, "Broader group as named by the source."),
    ("period_start", "date", True, "First day of the period counted."),
    ("period_end", "date", True, "Last day of the period counted."),
    ("period_type", "string", True, "'month', 'quarter', 'year' or 'rolling_12m'."),
    ("count", "float", True, "Number of crimes; negative values are adjustments."),
    ("adjustment", "bool", False, "True where the source marks or implies an adjustment."),
)

TRUTH_INCIDENTS = _t(
    "truth_incidents",
    ("incident_id",),
    "Simulator ground truth for incidents (never present for real forces).",
    ("incident_id", "string", True, "The incident."),
    ("discloses_crime", "bool", True, "Should a crime have been recorded?"),
    ("true_offence_code", "string", False, "The correct class, if a crime was disclosed."),
    ("recorded", "bool", True, "Was a crime record created for it?"),
)

TRUTH_CRIMES = _t(
    "truth_crimes",
    ("crime_id",),
    "Simulator ground truth for crime records.",
    ("crime_id", "string", True, "The crime record."),
    ("true_offence_code", "string", True, "The correct class."),
    ("correctly_classified", "bool", True, "Is the recorded class the correct one?"),
    ("downgraded", "bool", True, "Was it recorded or reclassified below the correct class?"),
    ("cancellation_valid", "bool", False, "For cancelled records: were the grounds valid?"),
    ("victim_told", "bool", False, "For cancelled records: was the victim told?"),
    ("true_incident_id", "string", False, "The incident it truly came from (none: no incident)."),
    ("incident_ref_lost", "bool", True, "Was the incident reference left off the record?"),
)

RECORD_TABLES = (INCIDENTS, CRIMES, CLASSIFICATION_CHANGES)
TRUTH_TABLES = (TRUTH_INCIDENTS, TRUTH_CRIMES)
TABLES: dict[str, Table] = {
    t.name: t for t in (*RECORD_TABLES, COUNTS, *TRUTH_TABLES)
}

INCIDENT_CLOSING_CODES = ("CRIME_RECORDED", "NFA", "ADVICE_GIVEN", "REFERRED", "NO_TRACE")
CRIME_STATUSES = ("recorded", "cancelled")


def render_markdown() -> str:
    """The canonical tables as Markdown (``docs/data-model.md`` embeds this, checked by a test).

    >>> "| incident_id | string | yes |" in render_markdown()
    True
    """
    out: list[str] = []
    for t in TABLES.values():
        out += [f"### `{t.name}`", "", t.meaning, "", f"Key: {', '.join(t.key)}", ""]
        out += ["| column | type | required | personal | meaning |", "|---|---|---|---|---|"]
        for c in t.columns:
            out.append(
                f"| {c.name} | {c.type} | {'yes' if c.required else 'no'} | "
                f"{'yes' if c.personal else ''} | {c.meaning} |"
            )
        out.append("")
    return "\n".join(out)
