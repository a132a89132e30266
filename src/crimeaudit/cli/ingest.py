"""CLI verbs for the ingest stage: ingest, profiles, quarantine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.table import Table

from crimeaudit.cli import ingest_views
from crimeaudit.cli.common import (
    UserError,
    console,
    handle_errors,
    open_project,
    print_json,
    progress,
)
from crimeaudit.cli.inputs import check_ingest_file
from crimeaudit.ingestion import (
    ingest,
    ingest_summary,
    ingested_files,
    list_profiles,
    quarantined_rows,
)
from crimeaudit.ingestion.check import check_profile


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
        as_of: str = typer.Option(
            None, "--as-of", metavar="DATE",
            help="When the export was taken (YYYY-MM-DD or an ISO time): orders the versions "
                 "of records sent again (default: the latest time in each file)."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Load files into the project's store; every row is loaded, excluded or quarantined.

        Incidents and crimes sent again become new versions (or identical re-sends that change
        nothing); a file ingested again from the same path replaces its earlier load."""
        with handle_errors():
            for f in files:
                check_ingest_file(f)
            when = _as_of(as_of)
        with open_project(directory) as project:
            report = ingest(project, profile, list(files), progress=progress(), table=table,
                            as_of=when)
        if as_json:
            print_json(report.to_dict())
            return
        # File names fold rather than being cut, numbers never wrap, and what happened to a
        # file is said on its own line under the table: all readable in 80 columns.
        t = Table()
        t.add_column("file", overflow="fold", ratio=2)
        t.add_column("tables", overflow="fold", ratio=1)
        for name in ("read", "loaded", "excluded", "quarantined"):
            t.add_column(name, no_wrap=True, justify="right")
        notes = []
        for f in report.files:
            t.add_row(str(Path(f.file).name),
                      ", ".join(f"{k} {v}" for k, v in f.tables.items()),
                      str(f.read), str(f.loaded), str(f.excluded), str(f.quarantined))
            if f.skipped or f.replaced:
                notes.append(f"{str(Path(f.file).name)}: " + (
                    "already ingested (the same bytes): nothing changed" if f.skipped
                    else "replaces its earlier load"))
        console.print(t)
        for note in notes:
            console.print(note, highlight=False)
        console.print(f"read {report.read} = loaded {report.loaded} + excluded "
                      f"{report.excluded} + quarantined {report.quarantined}")
        for name, c in report.versions.items():
            console.print(f"{name}: {c['new']} new, {c['changed']} new versions of records "
                          f"already loaded, {c['identical']} identical re-sends (unchanged)")
        if report.dangling:
            some = ", ".join(report.dangling_examples)
            console.print(f"{report.dangling} crimes point at incidents not loaded (such as "
                          f"{str(some)}); they link when those incidents are ingested",
                          highlight=False)
        ingest_views.ingest_lines(report, directory)
        if report.quarantined:
            console.print(f"See why: crimeaudit quarantine {directory}")

    @app.command("profiles")
    def profiles_cmd(
        files: list[Path] = typer.Argument(
            None, help="With --check: files to try the profile on (a dry run; nothing is "
                       "written to any project)."),
        check: str = typer.Option(
            None, "--check", metavar="PROFILE",
            help="Check this profile (a YAML file or a built-in name): required fields, "
                 "classes and statuses that exist, and with FILES what would be loaded, "
                 "excluded and quarantined per column, and the values no crosswalk lists. "
                 "Exits 1 when the profile cannot load rows correctly."),
        codes: Path = typer.Option(None, help="With --check: a folder of code lists "
                                              "(offences.csv ...) to check classes against."),
        as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    ) -> None:
        """List the built-in ingest profiles (or check one, on files, with --check)."""
        if files and check is None:
            with handle_errors():
                raise UserError("files are for --check PROFILE FILE...: name the profile")
        with handle_errors():
            if check is not None:
                for f in files or []:
                    check_ingest_file(f)
                result = check_profile(check, list(files or []), codes)
            else:
                profiles = list_profiles()
        if check is not None:
            if as_json:
                print_json(result.to_dict())
            else:
                ingest_views.profile_check(result, check)
            if not result.ok:
                raise typer.Exit(1)
            return
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
        summary: bool = typer.Option(
            False, "--summary", help="Counts instead of rows: per file read = loaded + "
                                     "excluded + quarantined, and the rows by reason."),
        as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    ) -> None:
        """Show quarantined rows: file, line, column and why each was not loaded."""
        if summary:
            with open_project(directory) as project:
                counts = ingest_summary(project, file=file)
            if as_json:
                print_json(counts)
            else:
                ingest_views.quarantine_summary(counts)
            return
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


def _as_of(text: str | None) -> dt.datetime | None:
    """``--as-of``: a date (the end of that day) or an ISO time; one clear line otherwise."""
    if not text:
        return None
    try:
        if len(text.strip()) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text.strip()), dt.time(23, 59, 59))
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"--as-of {text!r}: not a date (YYYY-MM-DD) or an ISO time") from None
