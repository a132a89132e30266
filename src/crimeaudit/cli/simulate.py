"""CLI verbs for the simulate stage (registered by crimeaudit.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

from crimeaudit.cli.common import UserError, console, print_json, progress, styled


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``scenarios`` to the app."""
    app.command("simulate")(simulate)
    app.command("scenarios")(scenarios)


def simulate(
    scenario: str = typer.Option(None, "--scenario", "-s",
                                 help="Built-in scenario name or path to a scenario YAML."),
    seed: int = typer.Option(None, "--seed", help="Random seed (same seed, same files)."),
    incidents: int = typer.Option(None, "--incidents", "-n",
                                  help="Number of incidents (default: the scenario's volume)."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder to write the tables to."),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
    force_code: str = typer.Option(
        None, "--force-code", help="Prefix every identifier and division with this code (such "
        "as KNT), so that several simulated forces load into one project."),
    list_: bool = typer.Option(False, "--list", help="List the built-in scenarios and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows and files as JSON."),
) -> None:
    """Simulate a police force's incidents and crimes, with the ground truth to audit them."""
    from crimeaudit.simulation import ScenarioError
    from crimeaudit.simulation import simulate as run

    if list_:
        scenarios(as_json)
        return
    missing = [name for name, v in (("--scenario", scenario), ("--seed", seed), ("--out", out))
               if v is None]
    if missing:
        raise UserError(f"simulate needs {', '.join(missing)} (or --list to see scenarios)")
    if fmt not in ("parquet", "csv"):
        raise UserError(f"--format must be parquet or csv, not {fmt!r}")
    if incidents is not None and incidents < 1:
        raise UserError("--incidents must be at least 1")
    if seed < 0:
        raise UserError("--seed must be a non-negative integer")
    try:
        result = run(scenario, seed=seed, n_incidents=incidents, out_dir=out, fmt=fmt,
                     progress=None if as_json else progress(), force_code=force_code)
    except (ScenarioError, ValueError) as exc:
        raise UserError(str(exc)) from None
    rows = result.manifest["rows"]
    if as_json:
        print_json({"scenario": result.manifest["scenario"], "seed": seed, "rows": rows,
                    "files": {k: str(v) for k, v in result.files.items()}})
        return
    console.print(styled("Simulated scenario ", (str(result.manifest["scenario"]), "bold"),
                         f" with seed {seed}:"))
    for name, count in rows.items():
        console.print(f"  {name:<24} {count:>10,} rows  {result.files[name]}")
    console.print(f"Manifest: {result.files['manifest']}")


def scenarios(
    as_json: bool = typer.Option(False, "--json", help="Print the scenarios as JSON."),
) -> None:
    """List the built-in simulation scenarios."""
    from crimeaudit.simulation import list_scenarios, load_scenario

    listed = [(name, " ".join(load_scenario(name).description.split()))
              for name in list_scenarios()]
    if as_json:
        print_json([{"name": name, "description": text} for name, text in listed])
        return
    for name, text in listed:
        console.print(styled((name, "bold"), f": {text}"))
