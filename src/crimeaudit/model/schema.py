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
    ("final_call_type", "string", False, "The type the call was closed as, where the source "
     "gives one (call_type is the opening type)."),
    ("source_closing_description", "string", False, "The source's own clearance or disposition "
     "text, as published."),
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
    ("offence_code", "string", True, "Current offence class (HOCR-style code, see offences; "
     "'unclassified' where the source's category has no class in the code list)."),
    ("source_offence_code", "string", False, "The source's own offence code, if crosswalked."),
    ("source_offence_description", "string", False, "The source's own offence description."),
    ("status", "string", True, "'recorded' or 'cancelled'."),
    ("cancellation_reason", "string", False, "Reason key from cancellation_reasons, if cancelled."),
    ("cancelled_at", "timestamp", False, "When the record was cancelled."),
    ("outcome", "string", False, "Outcome type code (OC1, OC18, ...)."),
    ("source_outcome_description", "string", False, "The source's own outcome text, as "
     "published."),
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

# -- the tables each stage writes ----------------------------------------------------------------
# One registry: a stage names its table by these objects (never by a string of its own), the
# store creates them from these schemas, and docs/data-model.md is rendered from them.

INGEST_FILES = _t(
    "ingest_files", ("sha256", "profile"),
    "ingest: one row per file ingested (its counts reconcile: read = loaded + excluded + "
    "quarantined).",
    ("file", "string", False, "The file's path as given."),
    ("sha256", "string", False, "SHA-256 of the file's bytes (the same file is not loaded twice)."),
    ("profile", "string", False, "The profile it was read with."),
    ("table", "string", False, "The canonical table(s) it fed, ','-separated."),
    ("read", "int", False, "Rows read."),
    ("loaded", "int", False, "Rows loaded."),
    ("excluded", "int", False, "Rows outside the profile's scope (see ingest_exclusions)."),
    ("quarantined", "int", False, "Rows quarantined (see quarantine)."),
    ("time", "string", False, "When it was ingested (UTC, ISO 8601)."),
)

QUARANTINE = _t(
    "quarantine", ("sha256", "line"),
    "ingest: every input row not loaded, with the file, line, column and reason.",
    ("file", "string", False, "The file."),
    ("sha256", "string", False, "SHA-256 of the file."),
    ("profile", "string", False, "The profile."),
    ("table", "string", False, "The canonical table the row was meant for."),
    ("line", "int", False, "Line number in the file (1 = header)."),
    ("column", "string", False, "The column at fault, if one."),
    ("reason", "string", False, "Why the row was not loaded, in words."),
    ("raw", "string", False, "The row as read, personal fields pseudonymised."),
    ("time", "string", False, "When it was quarantined."),
)

INGEST_EXCLUSIONS = _t(
    "ingest_exclusions", ("sha256", "profile", "table", "column", "value"),
    "ingest: rows outside a profile's scope (not crimes, or records the profile does not "
    "take), counted by file, rule and source value; they are not errors (see quarantine).",
    ("file", "string", False, "The file."),
    ("sha256", "string", False, "SHA-256 of the file."),
    ("profile", "string", False, "The profile."),
    ("table", "string", False, "The canonical table the rows would have gone to."),
    ("column", "string", False, "The source column the rule reads."),
    ("value", "string", False, "The source value that put the rows out of scope."),
    ("reason", "string", False, "The profile's reason for the rule."),
    ("rows", "int", False, "Rows excluded."),
    ("first_line", "int", False, "Line of the first of them (1 = header)."),
    ("time", "string", False, "When (UTC, ISO 8601)."),
)

def _versions_of(table: Table, name: str) -> Table:
    """The versions table of a record table: its columns (personal ones pseudonymised as in
    the table itself) and the hash that names one version's content."""
    cols = tuple(Column(c.name, c.type, False, c.meaning, c.personal) for c in table.columns)
    return Table(name, (table.key[0], "version_hash"),
                 meaning=f"ingest: every distinct content each {table.name[:-1]} record has "
                 f"arrived with (stored once per record and content); `{table.name}` holds the "
                 f"one in effect at the reference date (see record_sightings).",
                 columns=(*cols, Column("version_hash", "string", False,
                                        "MD5 of the row's values except source: equal values, "
                                        "equal hash.")))


CRIME_VERSIONS = _versions_of(CRIMES, "crime_versions")
INCIDENT_VERSIONS = _versions_of(INCIDENTS, "incident_versions")

#: The record tables that keep versions, and where their versions live.
VERSIONED: dict[str, Table] = {"incidents": INCIDENT_VERSIONS, "crimes": CRIME_VERSIONS}

RECORD_SIGHTINGS = _t(
    "record_sightings", ("record_table", "record_id", "sha256", "profile"),
    "ingest: every incident and crime row of every file loaded (new, a new version, or an "
    "identical re-send), with the version it carried and the export's as-of time. The latest "
    "sighting as of the reference date decides which version `incidents`/`crimes` hold; "
    "`crimeaudit unload` removes a file's sightings.",
    ("record_table", "string", False, "'incidents' or 'crimes'."),
    ("record_id", "string", False, "The incident or crime id."),
    ("version_hash", "string", False, "The version it carried (crime_versions, "
     "incident_versions)."),
    ("as_of", "timestamp", False, "When the export was taken: ingest --as-of, else the latest "
     "timestamp in the file (-infinity: in the store before versions were kept)."),
    ("load_seq", "int", False, "Order of the load (breaks ties between equal as_of)."),
    ("sha256", "string", False, "The file (null: in the store before versions were kept)."),
    ("profile", "string", False, "The profile it was read with."),
)

RECORD_STATE = _t(
    "record_state", ("reference_date",),
    "ingest: the reference date `incidents` and `crimes` were last built for (a change of the "
    "project's reference_date rebuilds them when the project is opened).",
    ("reference_date", "date", False, "Records as they stood at the end of this day (null: the "
     "latest version of each)."),
    ("built_at", "string", False, "When (UTC, ISO 8601)."),
)

LINKS = _t(
    "links", ("crime_id", "incident_id"),
    "link: incident-crime pairs, exact on references then probabilistic (Splink). Stages read "
    "them through crimeaudit.linkage.linked_pairs, the one definition of linked.",
    ("incident_id", "string", False, "The incident."),
    ("crime_id", "string", False, "The crime record linked to it."),
    ("match_probability", "float", False, "1 for a reference; Splink's probability otherwise."),
    ("method", "string", False, "'exact' or 'probabilistic'."),
)

LINK_RUNS = _t(
    "link_runs", ("linked_at",),
    "link: the last link run, and the state of the tables it linked (when incidents, crimes "
    "or ingested files have changed since, the exact references are recomputed on the fly).",
    ("linked_at", "string", False, "When (UTC)."),
    ("incidents", "int", False, "Incidents in the store when linked."),
    ("crimes", "int", False, "Crimes in the store when linked."),
    ("ingest_files", "int", False, "Files ingested when linked."),
    ("threshold", "float", False, "Least match probability of a probabilistic link."),
    ("exact", "int", False, "Exact links."),
    ("probabilistic", "int", False, "Probabilistic links."),
)

SCREEN_SCORES = _t(
    "screen_scores", ("incident_id",),
    "screen: for every incident, P(a crime should have been recorded), its likely class and "
    "the rules that fired.",
    ("incident_id", "string", False, "The incident."),
    ("p_crime", "float", False, "The screen model's probability that a crime was disclosed."),
    ("predicted_offence", "string", False, "The most likely offence class."),
    ("rule_hits", "string", False, "Ids of the screening rules that matched, ';'-separated."),
    ("model_version", "string", False, "Which model scored it."),
)

AUDIT_SAMPLES = _t(
    "audit_samples", ("sample_id", "record_id"),
    "sample: one row per sampled record, with its stratum and inclusion probability.",
    ("sample_id", "string", False, "The sample (fixed by design, seed and frame size)."),
    ("record_type", "string", False, "'incident', or 'crime' for a crime linked to no incident "
     "or a cancelled crime."),
    ("record_id", "string", False, "The incident or crime id."),
    ("stratum", "string", False, "Its stratum ('all' for unstratified designs)."),
    ("strand", "string", False, "Strand from the call type (incidents) or offence (crimes)."),
    ("division", "string", False, "Division."),
    ("inclusion_probability", "float", False, "Probability the design gave it of selection."),
    ("weight", "float", False, "1 / inclusion probability."),
    ("design", "string", False, "'srs', 'stratified' or 'pps'."),
    ("seed", "int", False, "The seed of the draw."),
)

AUDIT_DESIGNS = _t(
    "audit_designs", ("sample_id",),
    "sample: one row per sample drawn, with its design and the stratum sizes.",
    ("sample_id", "string", False, "The sample."),
    ("design", "string", False, "'srs', 'stratified' or 'pps'."),
    ("params", "string", False, "The whole design as JSON."),
    ("strata", "string", False, "Per stratum its frame size N and sample size n, as JSON."),
    ("frame_size", "int", False, "Records in the frame."),
    ("sample_size", "int", False, "Records drawn."),
    ("drawn_at", "string", False, "When it was drawn (UTC)."),
)

AUDIT_DECISIONS = _t(
    "audit_decisions", ("decision_id",),
    "review: every auditor decision, append-only; a correction is a new row that supersedes.",
    ("decision_id", "int", False, "Increasing id; the highest per record is current."),
    ("sample_id", "string", False, "The sample."),
    ("record_type", "string", False, "'incident' or 'crime'."),
    ("record_id", "string", False, "The record decided."),
    ("should_record", "string", False, "yes | no | cannot_tell."),
    ("recorded", "string", False, "yes | no."),
    ("correctly_classified", "string", False, "yes | no."),
    ("correct_class", "string", False, "The offence code it should have had."),
    ("within_time_limit", "string", False, "yes | no."),
    ("cancellation_valid", "string", False, "yes | no."),
    ("victim_told", "string", False, "yes | no."),
    ("auditor", "string", False, "Who decided.", True),
    ("notes", "string", False, "Free text."),
    ("decided_at", "timestamp", False, "When it was stored (UTC)."),
    ("source", "string", False, "The sheet file, or 'oracle'."),
    ("batch", "string", False, "The import it came in."),
    ("supersedes", "int", False, "The decision_id it replaces, if any."),
    ("review", "string", False, "'first', 'second' (a blind second review of the same record) "
     "or 'adjudication' (a lead's resolution of a disagreement)."),
    ("prev_hash", "string", False, "row_hash of the previous row (64 zeros for the first)."),
    ("row_hash", "string", False, "SHA-256 of prev_hash and this row's fields: the chain that "
     "`crimeaudit verify` checks."),
)

ESTIMATE_RUNS = _t(
    "estimate_runs", ("run_id",),
    "estimate: one row per sample estimated with one method at one level.",
    ("run_id", "string", False, "sample/method/level: the same three replace each other."),
    ("sample_id", "string", False, "The sample."),
    ("frame", "string", False, "'incidents' (recording audit) or 'cancellations'."),
    ("requested_method", "string", False, "auto, wilson, clopper-pearson, linearised or ppi."),
    ("level", "float", False, "Confidence level."),
    ("by", "string", False, "Groupings estimated (JSON list)."),
    ("design", "string", False, "The sample's design (JSON)."),
    ("sample", "string", False, "Frame size, sample size and strata (JSON)."),
    ("decisions", "string", False, "Decided, undecided, cannot tell, auditors (JSON)."),
    ("estimated_at", "string", False, "When (UTC)."),
)

ESTIMATES = _t(
    "estimates", ("run_id", "measure", "scope"),
    "estimate: every published figure with its standard error, interval and method.",
    ("run_id", "string", False, "The estimation run (estimate_runs)."),
    ("position", "int", False, "Order within the run."),
    ("sample_id", "string", False, "The sample."),
    ("measure", "string", False, "recording_rate, timeliness, ..., unrecorded_per_year."),
    ("scope", "string", False, "'all', a strand, 'division=NAME' or 'division=NAME, "
     "strand=S'."),
    ("estimate", "float", False, "The estimate."),
    ("se", "float", False, "Its design-based standard error."),
    ("lower", "float", False, "Lower end of the interval (null: unbounded)."),
    ("upper", "float", False, "Upper end of the interval (null: unbounded)."),
    ("level", "float", False, "Confidence level of the interval."),
    ("method", "string", False, "Estimator and interval actually used."),
    ("unit", "string", False, "'proportion' or 'crimes'."),
    ("numerator", "float", False, "Unweighted sample count in the numerator."),
    ("denominator", "float", False, "Unweighted sample count in the denominator."),
    ("n", "int", False, "Sampled records the figure rests on."),
    ("n_effective", "float", False, "The design's effective sample size (Kish)."),
    ("notes", "string", False, "How it was computed, in words."),
    ("warnings", "string", False, "What a reader must see beside it (JSON list)."),
    ("extra", "string", False, "Method details (JSON)."),
)

FINDINGS = _t(
    "findings", ("test", "unit"),
    "detect: every test of target pressure run, with its effect, interval, p and BH q-value.",
    ("test", "string", False, "The detector."),
    ("unit", "string", False, "What was tested (force, division, strand, area...)."),
    ("effect", "float", False, "The effect estimated."),
    ("lower", "float", False, "Lower end of its interval."),
    ("upper", "float", False, "Upper end of its interval."),
    ("effect_name", "string", False, "What the effect measures."),
    ("p_value", "float", False, "p-value."),
    ("q_value", "float", False, "Benjamini-Hochberg q-value across every test of the run."),
    ("sentence", "string", False, "The finding in words."),
    ("level", "float", False, "Confidence level."),
    ("method", "string", False, "The test used."),
    ("n", "int", False, "Events or units it rests on."),
    ("extra", "string", False, "Details and chart (JSON)."),
)

STAGE_TABLES: dict[str, Table] = {
    t.name: t for t in (INGEST_FILES, QUARANTINE, INGEST_EXCLUSIONS, CRIME_VERSIONS,
                        INCIDENT_VERSIONS, RECORD_SIGHTINGS, RECORD_STATE, LINKS, LINK_RUNS,
                        SCREEN_SCORES, AUDIT_SAMPLES, AUDIT_DESIGNS, AUDIT_DECISIONS,
                        ESTIMATE_RUNS, ESTIMATES, FINDINGS)
}
#: Every table of a project's store: the canonical tables and each stage's own.
STORE_TABLES: dict[str, Table] = {**TABLES, **STAGE_TABLES}

#: The (table, column) pairs that hold an offence class of the code list.
OFFENCE_COLUMNS = frozenset({
    ("crimes", "offence_code"), ("classification_changes", "from_code"),
    ("classification_changes", "to_code"), ("truth_crimes", "true_offence_code"),
    ("truth_incidents", "true_offence_code")})

INCIDENT_CLOSING_CODES = ("CRIME_RECORDED", "NFA", "ADVICE_GIVEN", "REFERRED", "NO_TRACE")
CRIME_STATUSES = ("recorded", "cancelled")


def render_markdown(tables: dict[str, Table] | None = None) -> str:
    """Tables as Markdown (``docs/data-model.md`` embeds the canonical and the stage tables,
    checked by a test).

    >>> "| incident_id | string | yes |" in render_markdown()
    True
    >>> "### `estimates`" in render_markdown(STAGE_TABLES)
    True
    """
    out: list[str] = []
    for t in (TABLES if tables is None else tables).values():
        out += [f"### `{t.name}`", "", t.meaning, "", f"Key: {', '.join(t.key)}", ""]
        out += ["| column | type | required | personal | meaning |", "|---|---|---|---|---|"]
        for c in t.columns:
            out.append(
                f"| {c.name} | {c.type} | {'yes' if c.required else 'no'} | "
                f"{'yes' if c.personal else ''} | {c.meaning} |"
            )
        out.append("")
    return "\n".join(out)
