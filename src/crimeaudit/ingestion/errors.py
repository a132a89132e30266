"""The ingest stage's error: a mistake the user can fix, printed as one clear line."""


from crimeaudit.errors import CrimeauditError


class IngestError(CrimeauditError, RuntimeError):
    """A file or profile that cannot be ingested (names the file, line or column)."""
