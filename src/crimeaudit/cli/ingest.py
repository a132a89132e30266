"""CLI verbs for the ingest stage: ingest, profiles, quarantine."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from crimeaudit.cli.common import console, handle_errors, open_project, print_json, progress
from crimeaudit.cli.inputs import check_ingest_file
from crimeaudit.ingestion import (
    ingest,
    ingested_files,
    list_profiles,
    load_profile,
    quarantined_rows,
)


def register(app: typer.Typer) -> None:
    """Add ``ingest``, ``profiles`` and ``quarantine`` to the app."""

    @app.command("ingest")
    def ingest_cmd(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        files: list[Path] = typer.Argument(..., help="Files to load (CSV or Parquet)."),
        profile: str = typer.Option(..., "--profile", "-p",
                                    help="Built-in profile name or a profile YAML file."),
        table: str = typer.Option(None, help="Canonical profile: the table the files feed "
                                             "(default: from each file's name)."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Load files into the project's store; every row is loaded or quarantined."""
        with handle_errors():
            for f in files:
                check_ingest_file(f)
        with open_project(directory) as project:
            report = ingest(project, profile, list(files), progress=progress(), table=table)
        if as_json:
            print_json(report.to_dict())
            return
        t = Table("file", "tables", "read", "loaded", "quarantined", "")
        for f in report.files:
            t.add_row(Path(f.file).name, ", ".join(f"{k} {v}" for k, v in f.tables.items()),
                      str(f.read), str(f.loaded), str(f.quarantined),
                      "already ingested, skipped" if f.skipped else "")
        console.print(t)
        console.print(f"read {report.read} = loaded {report.loaded} + quarantined "
                      f"{report.quarantined}")
        if report.quarantined:
            console.print(f"See why: crimeaudit quarantine {directory}")

    @app.command("profiles")
    def profiles_cmd(
        check: Path = typer.Option(None, help="Validate this profile YAML file and say so."),
        as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    ) -> None:
        """List the built-in ingest profiles (or validate your own with --check)."""
        with handle_errors():
            if check is not None:
                p = load_profile(check)
                console.print(f"{check}: valid profile {p.name!r} "
                              f"({', '.join(t.table for t in p.targets) or 'canonical'})")
                return
            profiles = list_profiles()
        if as_json:
            print_json(profiles)
            return
        t = Table("profile", "description")
        for name, desc in profiles.items():
            t.add_row(name, desc)
        console.print(t)

    @app.command("quarantine")
    def quarantine_cmd(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        file: str = typer.Option(None, help="Only files whose path contains this text."),
        reason: str = typer.Option(None, help="Only reasons containing this text."),
        limit: int = typer.Option(50, help="Show at most this many rows (0: all)."),
        as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    ) -> None:
        """Show quarantined rows: file, line, column and why each was not loaded."""
        with open_project(directory) as project:
            rows = quarantined_rows(project, file=file, reason=reason, limit=limit or None)
            ledger = ingested_files(project)
        if as_json:
            print_json({"files": ledger, "quarantine": rows})
            return
        t = Table("file", "line", "column", "reason", "row")
        for r in rows:
            t.add_row(Path(r["file"]).name, str(r["line"]), r["column"] or "", r["reason"],
                      (r["raw"] or "")[:60])
        console.print(t)
        total = sum(f["quarantined"] for f in ledger)
        console.print(f"{len(rows)} shown of {total} quarantined rows in {len(ledger)} files")
