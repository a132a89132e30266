"""The synthetic force: incidents, crimes, reclassifications and a ground truth to audit.

>>> result = simulate("kent-2013", seed=7, n_incidents=2000)
>>> sorted(result.tables)
['classification_changes', 'crimes', 'incidents', 'truth_crimes', 'truth_incidents']
>>> result.manifest["rows"]["incidents"]
2000
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from crimeaudit.progress import Progress, resolve
from crimeaudit.simulation.codes import check_code, prefix_identifiers
from crimeaudit.simulation.scenario import Scenario, ScenarioError, list_scenarios, load_scenario

__all__ = [
    "Scenario", "ScenarioError", "SimulationResult", "list_scenarios", "load_scenario",
    "simulate",
]


@dataclass
class SimulationResult:
    """The simulated tables (canonical schemas) and the manifest describing them."""

    tables: dict[str, pa.Table]
    manifest: dict
    files: dict[str, Path] = field(default_factory=dict)


def simulate(
    scenario: str | Path | Scenario,
    seed: int,
    n_incidents: int | None = None,
    out_dir: Path | str | None = None,
    fmt: str = "parquet",
    progress: Progress | None = None,
    force_code: str | None = None,
) -> SimulationResult:
    """Simulate a force from a scenario (built-in name, YAML path or Scenario) and a seed.

    ``n_incidents`` overrides the scenario's volume. ``force_code`` (such as ``"KNT"``) prefixes
    every identifier and division name, so that several simulated forces load into one project.
    With ``out_dir`` the tables are written there as ``<table>.<fmt>`` with a ``manifest.json``
    (row counts and sha256 of each file).
    """
    from crimeaudit import __version__
    from crimeaudit.simulation.generator import generate
    from crimeaudit.simulation.writer import write_manifest, write_tables

    s = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    seed = int(seed)
    if force_code is not None:
        check_code(force_code)
    progress = resolve(progress)
    tables = generate(s, seed, n_incidents, progress)
    if force_code is not None:
        tables = prefix_identifiers(tables, force_code)
    manifest = {
        "scenario": s.name,
        "seed": seed,
        "force_code": force_code,
        "n_incidents": tables["incidents"].num_rows,
        "crimeaudit_version": __version__,
        "pyarrow_version": pa.__version__,
        "format": fmt,
        "period": {"start": s.period.start.isoformat(), "end": s.period.end.isoformat()},
        "rows": {name: t.num_rows for name, t in tables.items()},
        # The scenario as used (after ``extends``), so a run can be repeated from the manifest.
        "scenario_config": s.model_dump(mode="json"),
    }
    files: dict[str, Path] = {}
    if out_dir is not None:
        out = Path(out_dir)
        with progress.task("Writing files", total=len(tables)) as advance:
            hashes = {}
            for name, table in tables.items():
                hashes.update(write_tables({name: table}, out, fmt))
                files[name] = out / f"{name}.{fmt}"
                advance(1)
        manifest["sha256"] = hashes
        files["manifest"] = write_manifest(manifest, out)
    return SimulationResult(tables, manifest, files)
