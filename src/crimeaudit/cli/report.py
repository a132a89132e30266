"""CLI verbs for the report stage: ``crimeaudit report DIR [--out FILE]``."""

from __future__ import annotations

from pathlib import Path

import typer

from crimeaudit.cli.common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        out: Path = typer.Option(None, help="HTML file to write (default DIR/reports/report.html);"
                                            " report.json is written beside it."),
        compare: list[Path] = typer.Option(
            None, "--compare", help="Another audit's project folder to compare with (a "
                                    "comparison section); may be given more than once."),
        area: str = typer.Option(
            None, "--area", help="Write one area's report (a force, borough, division or "
                                 "other area as the data names it; default file "
                                 "reports/report-<area>.html)."),
        as_json: bool = typer.Option(False, "--json", help="Print the files written as JSON."),
    ) -> None:
        """Write the inspection report (self-contained HTML) and its figures as JSON.

        A project with no audit estimates (public data, perhaps with detect run) gets the
        public-data report: what was loaded, excluded and quarantined, findings by area with
        their charts, release differences and methods.
        """
        from crimeaudit.report import write_report

        with handle_errors():
            paths = write_report(directory, out, compare=compare or (), area=area)
        if as_json:
            print_json({"html": str(paths["html"]), "json": str(paths["json"])})
            return
        console.print(f"Wrote {paths['html']}\nWrote {paths['json']}")
