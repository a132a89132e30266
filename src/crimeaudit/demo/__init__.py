"""``crimeaudit demo``: simulate a force like Kent in 2013, audit it and write the report.

The whole pipeline in one call: simulate, init a project, ingest (canonical profile), link, draw a
stratified sample of incidents and a sample of cancelled crimes, let the oracle auditor decide
them from the ground truth, estimate, run detection, and write the report.

The output folder holds ``simulated/`` (the simulator's files) and ``project/`` (the audit
project). A folder is only replaced if it is a previous demo (it carries :data:`MARKER`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from crimeaudit.errors import CrimeauditError
from crimeaudit.progress import Progress, resolve
from crimeaudit.store.files import write_text

MARKER = ".crimeaudit-demo"
SCENARIO = "kent-2013"
DEFAULT_OUT = Path("crimeaudit-demo")


class DemoError(CrimeauditError, RuntimeError):
    """The demo cannot run (for instance its output folder holds something else)."""


@dataclass
class DemoResult:
    out: Path
    project: Path
    report: Path
    report_json: Path
    headline: str


def _prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise DemoError(f"{out} exists and is not a crimeaudit demo folder; "
                            "choose another --out (the demo replaces only its own folders)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / MARKER, "created by crimeaudit demo; re-running it replaces this folder\n")


def run_demo(out: str | Path = DEFAULT_OUT, incidents: int = 60_000, seed: int = 7,
             sample_size: int = 1500, cancellation_sample: int = 300,
             oracle_error_rate: float = 0.0, detect: bool = True,
             progress: Progress | None = None) -> DemoResult:
    """Run the whole audit on a simulated force; returns where the report is and its headline.

    Sample sizes are capped at the frame size, so small ``incidents`` runs still work.
    """
    from crimeaudit.audit import draw_sample, estimate, oracle_review
    from crimeaudit.ingestion import ingest
    from crimeaudit.linkage import link
    from crimeaudit.report import write_report
    from crimeaudit.simulation import simulate
    from crimeaudit.store import Project

    prog = resolve(progress)
    out = Path(out)
    _prepare(out)
    sim_dir, proj_dir = out / "simulated", out / "project"
    prog.note(f"Simulating the {SCENARIO} force ({incidents:,} incidents, seed {seed})")
    sim = simulate(SCENARIO, seed=seed, n_incidents=incidents, out_dir=sim_dir, progress=prog)
    manifest = {k: sim.manifest[k] for k in ("scenario", "seed", "n_incidents", "period")}
    with Project.init(proj_dir, name=f"{SCENARIO} (simulated, seed {seed})") as p:
        files = sorted(sim_dir.glob("*.parquet"))
        ingest(p, "canonical", files, progress=prog)
        # Linkage recovers crimes whose incident reference was lost: they fold into their
        # incident's record instead of being audited twice.
        link(p, progress=prog)
        p.log_run("demo", inputs=files,
                  params={"simulation": manifest, "oracle_error_rate": oracle_error_rate,
                          "sample_size": sample_size,
                          "cancellation_sample": cancellation_sample})
        sample = draw_sample(p, kind="stratified", size=sample_size, seed=seed,
                             strata_by=("strand",), min_per_stratum=20, progress=prog)
        oracle_review(p, sample.sample_id, oracle_error_rate, seed, progress=prog)
        estimate(p, sample.sample_id, by=("strand",), progress=prog)
        canc_size = min(cancellation_sample, _cancellation_frame(p))
        if canc_size >= 2:
            cs = draw_sample(p, kind="srs", size=canc_size, seed=seed, frame="cancellations",
                             progress=prog)
            oracle_review(p, cs.sample_id, oracle_error_rate, seed, progress=prog)
            # Stored beside the recording-rate figures: the report shows both.
            estimate(p, cs.sample_id, by=("strand",), progress=prog)
        if detect:
            _detect(p, prog)
        with prog.task("Writing the report", total=None):
            paths = write_report(p)
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    return DemoResult(out, proj_dir, paths["html"], paths["json"], doc["headline"]["sentence"])


def _cancellation_frame(project) -> int:
    from crimeaudit.audit import SampleDesign
    from crimeaudit.audit.design import frame_size

    return frame_size(project, SampleDesign(kind="srs", size=1, frame="cancellations"))


def _detect(project, prog: Progress) -> None:
    try:
        from crimeaudit.detect import detect_project
    except ImportError:  # detection not installed: the report says it was not run
        prog.note("Detection is not available; the report will say so.")
        return
    detect_project(project, progress=prog)
