"""Ingest: any force's exports and the main public crime datasets into the project store.

>>> from crimeaudit.ingest import list_profiles
>>> "ons-pfa" in list_profiles()
True
"""

from crimeaudit.ingest.errors import IngestError
from crimeaudit.ingest.load import FileReport, IngestReport, canonical_table_for, ingest
from crimeaudit.ingest.profile import Profile, list_profiles, load_profile
from crimeaudit.ingest.quarantine import ingested_files, quarantined_rows

__all__ = [
    "FileReport", "IngestError", "IngestReport", "Profile", "canonical_table_for", "ingest",
    "ingested_files", "list_profiles", "load_profile", "quarantined_rows",
]
