"""The link stage's user-facing error (printed as one clear line by the CLI)."""


from crimeaudit.errors import CrimeauditError


class LinkError(CrimeauditError, ValueError):
    """Linkage that cannot run as asked (missing table, bad threshold...)."""
