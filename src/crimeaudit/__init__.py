"""crimeaudit: find the crimes that were never counted.

The public API offers the same verbs as the command line, in the order of an audit. Every verb
takes the project first, as an open :class:`Project` or as the path of its folder::

    import crimeaudit as ca

    ca.simulate("kent-2013", seed=7, n_incidents=20_000, out_dir="force")
    project = ca.Project.init("audit")
    ca.ingest(project, "canonical", sorted(Path("force").glob("*.parquet")))
    ca.link(project)
    ca.screen(project)
    ca.draw_sample(project, kind="stratified", size=1500, seed=1, strata_by=("strand",))
    ca.oracle_review(project)            # or ca.export_review / ca.import_review
    print(ca.estimate(project, by=["strand"]).summary())
    ca.detect_project(project)
    ca.write_report(project)

The same, run here on a tiny simulated force:

>>> import tempfile
>>> from pathlib import Path
>>> import crimeaudit as ca
>>> work = Path(tempfile.mkdtemp())
>>> sim = ca.simulate("kent-2013", seed=3, n_incidents=1500, out_dir=work / "force")
>>> project = ca.Project.init(work / "audit")
>>> report = ca.ingest(project, "canonical", sorted((work / "force").glob("*.parquet")))
>>> counts = ca.link(project, ca.LinkSettings(probabilistic=False))
>>> ca.screen(project)
1500
>>> sample = ca.draw_sample(project, kind="srs", size=300, seed=1)
>>> decided = ca.oracle_review(project)
>>> rate = ca.estimate(project).get("recording_rate")
>>> 0.5 < rate.estimate < 1 and rate.lower < rate.estimate < rate.upper and rate.se > 0
True
>>> project.close()

Names are imported on first use, so ``import crimeaudit`` stays fast. No verb shares its name
with a subpackage: the stages live in ``simulation``, ``ingestion``, ``linkage``, ``screening``,
``audit``, ``detect`` and ``report``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Project": "crimeaudit.store",
    "Engine": "crimeaudit.engine",
    "Estimate": "crimeaudit.model",
    "Finding": "crimeaudit.model",
    "CrimeauditError": "crimeaudit.errors",
    "load_code_lists": "crimeaudit.model",
    "simulate": "crimeaudit.simulation",
    "load_scenario": "crimeaudit.simulation",
    "list_scenarios": "crimeaudit.simulation",
    "ingest": "crimeaudit.ingestion",
    "list_profiles": "crimeaudit.ingestion",
    "quarantined_rows": "crimeaudit.ingestion",
    "history": "crimeaudit.ingestion",
    "unload": "crimeaudit.ingestion",
    "link": "crimeaudit.linkage",
    "LinkSettings": "crimeaudit.linkage",
    "screen": "crimeaudit.screening",
    "unrecorded_candidates": "crimeaudit.screening",
    "downgrade_candidates": "crimeaudit.screening",
    "draw_sample": "crimeaudit.audit",
    "SampleDesign": "crimeaudit.audit",
    "plan_sample_size": "crimeaudit.audit",
    "export_review": "crimeaudit.audit",
    "import_review": "crimeaudit.audit",
    "oracle_review": "crimeaudit.audit",
    "estimate": "crimeaudit.audit",
    "AuditEstimates": "crimeaudit.audit",
    "detect_project": "crimeaudit.detect",
    "write_report": "crimeaudit.report",
    "run_demo": "crimeaudit.demo",
    "compare": "crimeaudit.comparison",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crimeaudit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
