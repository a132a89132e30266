"""CLI verbs for the report stage: ``crimeaudit report DIR [--out FILE]``."""

from __future__ import annotations

from pathlib import Path

import typer

from crimeaudit.cli.common import console, handle_errors


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        out: Path = typer.Option(None, help="HTML file to write (default DIR/reports/report.html);"
                                            " report.json is written beside it."),
        compare: list[Path] = typer.Option(
            None, "--compare", help="Another audit's project folder to compare with (a "
                                    "comparison section); may be given more than once."),
    ) -> None:
        """Write the inspection report (self-contained HTML) and its figures as JSON."""
        from crimeaudit.report import write_report

        with handle_errors():
            paths = write_report(directory, out, compare=compare or ())
        console.print(f"Wrote {paths['html']}\nWrote {paths['json']}")
