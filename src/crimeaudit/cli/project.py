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
        engine: str = typer.Option(
            "duckdb", help="duckdb (embedded, the default) or pyspark (national data: needs "
            "pip install 'crimeaudit[spark]' and Java 17; see docs/spark.md)."),
    ) -> None:
        """Create an audit project: a folder with the store, settings and a run log.

        Every later command runs on the project's engine: the embedded DuckDB store by
        default, or Spark (--engine pyspark), with the same results.
        """
        with handle_errors():
            if engine not in ("duckdb", "pyspark"):
                raise typer.BadParameter(f"--engine {engine}: use duckdb or pyspark")
            p = Project.init(
                directory, name=name, timeliness_hours=timeliness_hours,
                confidence_level=confidence_level, engine=engine,
            )
            try:
                p.log_run("init", params={"name": p.config.name, "engine": engine})
            finally:
                p.close()
        console.print(styled("Created audit project ", (p.config.name, "bold"),
                             f" in {directory}"))
        console.print(f"Next: crimeaudit ingest {directory} --profile canonical FILE...")
