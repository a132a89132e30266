"""Project verbs: init."""

from __future__ import annotations

from pathlib import Path

import typer

from crimeaudit.cli.common import console, handle_errors, styled
from crimeaudit.store import Project


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        directory: Path = typer.Argument(..., help="Folder for the new audit project."),
        name: str = typer.Option(None, help="A name for the audit (default: folder name)."),
        timeliness_hours: float = typer.Option(
            24.0, help="Crimes must be recorded within this many hours of the report."
        ),
        confidence_level: float = typer.Option(0.95, help="Confidence level of every interval."),
    ) -> None:
        """Create an audit project: a folder with the embedded store, settings and a run log."""
        with handle_errors():
            p = Project.init(
                directory, name=name, timeliness_hours=timeliness_hours,
                confidence_level=confidence_level,
            )
            try:
                p.log_run("init", params={"name": p.config.name})
            finally:
                p.close()
        console.print(styled("Created audit project ", (p.config.name, "bold"),
                             f" in {directory}"))
        console.print(f"Next: crimeaudit ingest {directory} --profile canonical FILE...")
