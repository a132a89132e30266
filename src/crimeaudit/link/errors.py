"""The link stage's user-facing error (printed as one clear line by the CLI)."""


class LinkError(ValueError):
    """Linkage that cannot run as asked (missing table, bad threshold...)."""
