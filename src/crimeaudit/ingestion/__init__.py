"""Ingest: any force's exports and the main public crime datasets into the project store.

>>> from crimeaudit.ingestion import list_profiles
>>> "ons-pfa" in list_profiles()
True
"""

from crimeaudit.ingestion.errors import IngestError
from crimeaudit.ingestion.load import FileReport, IngestReport, canonical_table_for, ingest
from crimeaudit.ingestion.profile import Profile, list_profiles, load_profile
from crimeaudit.ingestion.quarantine import ingested_files, quarantined_rows

__all__ = [
    "FileReport", "IngestError", "IngestReport", "Profile", "canonical_table_for", "ingest",
    "ingested_files", "list_profiles", "load_profile", "quarantined_rows",
]
