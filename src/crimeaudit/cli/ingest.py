"""CLI verbs for the ingest stage (registered by crimeaudit.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the app (filled in as the stage is built)."""
