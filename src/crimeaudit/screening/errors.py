"""The screen stage's user-facing error (printed as one clear line by the CLI)."""


from crimeaudit.errors import CrimeauditError


class ScreenError(CrimeauditError, ValueError):
    """A screening step that cannot run as asked (missing table, too few decisions...)."""
