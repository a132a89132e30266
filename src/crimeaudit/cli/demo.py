"""CLI verbs for the demo: ``crimeaudit demo [--out DIR] [--incidents N] [--seed N]``."""

from __future__ import annotations

from pathlib import Path

import typer

from crimeaudit.cli.common import console, handle_errors, progress, styled


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path("crimeaudit-demo"),
                                 help="Output folder (a previous demo there is replaced)."),
        incidents: int = typer.Option(60_000, min=500, help="Incidents to simulate."),
        seed: int = typer.Option(7, help="Seed for the simulation, sample and auditor."),
        sample_size: int = typer.Option(1500, min=10, help="Incidents to audit."),
        error_rate: float = typer.Option(0.0, help="Oracle auditor's error rate."),
    ) -> None:
        """Simulate a force like Kent in 2013, audit it and write the inspection report."""
        from crimeaudit.demo import run_demo

        with handle_errors():
            r = run_demo(out, incidents=incidents, seed=seed, sample_size=sample_size,
                         oracle_error_rate=error_rate, progress=progress())
        console.print(styled("\n", (str(r.headline), "bold"), "\n"), highlight=False)
        console.print(f"Report: {r.report.resolve()}\nFigures: {r.report_json.resolve()}\n"
                      f"Project: {r.project.resolve()}", highlight=False)
