"""crimeaudit: find the crimes that were never counted.

The public API offers the same verbs as the command line, in the order of an audit::

    import crimeaudit as ca

    ca.simulate("kent-2013", seed=7, n_incidents=20_000, out_dir="force")
    project = ca.Project.init("audit")
    ca.ingest(project, "canonical", sorted(Path("force").glob("*.parquet")))
    ca.link(project); ca.screen(project)
    ca.draw_sample(project, kind="stratified", size=1500, seed=1, strata_by=("strand",))
    ca.oracle_review(project)            # or ca.export_review / ca.import_review
    print(ca.estimate(project, by=["strand"]).summary())
    ca.detect_project(project)
    ca.write_report(project.path)

Names are imported on first use, so ``import crimeaudit`` stays fast.

>>> import crimeaudit
>>> crimeaudit.Estimate.__name__
'Estimate'
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
    "load_code_lists": "crimeaudit.model",
    "simulate": "crimeaudit.simulate",
    "load_scenario": "crimeaudit.simulate",
    "list_scenarios": "crimeaudit.simulate",
    "ingest": "crimeaudit.ingest",
    "list_profiles": "crimeaudit.ingest",
    "quarantined_rows": "crimeaudit.ingest",
    "link": "crimeaudit.link",
    "screen": "crimeaudit.screen",
    "unrecorded_candidates": "crimeaudit.screen",
    "downgrade_candidates": "crimeaudit.screen",
    "draw_sample": "crimeaudit.audit",
    "plan_sample_size": "crimeaudit.audit",
    "export_review": "crimeaudit.audit",
    "import_review": "crimeaudit.audit",
    "oracle_review": "crimeaudit.audit",
    "estimate": "crimeaudit.audit",
    "detect_project": "crimeaudit.detect",
    "write_report": "crimeaudit.report",
    "run_demo": "crimeaudit.demo",
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
