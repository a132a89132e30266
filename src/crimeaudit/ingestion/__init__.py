"""Ingest: any force's exports and the main public crime datasets into the project store.

>>> from crimeaudit.ingestion import list_profiles
>>> "ons-pfa" in list_profiles()
True
"""

from crimeaudit.ingestion.errors import IngestError
from crimeaudit.ingestion.load import FileReport, IngestReport, canonical_table_for, ingest
from crimeaudit.ingestion.profile import Profile, list_profiles, load_profile, profile_problems
from crimeaudit.ingestion.quarantine import (
    excluded_rows,
    ingest_summary,
    ingested_files,
    quarantined_rows,
)
from crimeaudit.ingestion.record_history import RecordHistory, history
from crimeaudit.ingestion.undo import UnloadReport, unload

__all__ = [
    "FileReport", "IngestError", "IngestReport", "Profile", "canonical_table_for",
    "excluded_rows", "ingest", "ingest_summary", "ingested_files", "list_profiles",
    "load_profile", "profile_problems", "quarantined_rows",
    "RecordHistory", "UnloadReport", "history", "unload",
]
