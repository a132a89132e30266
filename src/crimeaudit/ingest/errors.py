"""The ingest stage's error: a mistake the user can fix, printed as one clear line."""


class IngestError(RuntimeError):
    """A file or profile that cannot be ingested (names the file, line or column)."""
