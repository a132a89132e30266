"""The screen stage's user-facing error (printed as one clear line by the CLI)."""


class ScreenError(ValueError):
    """A screening step that cannot run as asked (missing table, too few decisions...)."""
