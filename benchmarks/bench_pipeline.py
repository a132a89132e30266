"""Every stage of an audit through the command line, timed and measured, on a simulated force.

What a user runs, in order, each as a fresh ``crimeaudit`` process on one project:
``init``, ``ingest --profile canonical``, ``link``, ``screen run``, ``sample`` (stratified by
strand, 1,500), ``review oracle``, ``estimate --by strand``, ``detect``, ``report``. For each
stage: wall time and peak memory (``ru_maxrss`` of its process, which counts DuckDB's memory
too). The baseline, measured in the same run, is DuckDB's plain load of the same Parquet files
into a database file (``CREATE TABLE AS read_parquet``), so the table quotes ratios that mean
the same on a faster or slower machine.

``--compare-src DIR`` runs the same stages with another checkout's ``src`` folder (for example
the previous release: ``git worktree add /tmp/prev <commit>``) in the same run, on the same
files, so a change can be judged against the code it replaces on the same machine at the same
time. Medians of ``--runs``. Writes ``benchmarks/results/pipeline.md`` (``--out``).

    .venv/bin/python benchmarks/bench_pipeline.py --incidents 1000000 --runs 1 \\
        [--compare-src /tmp/prev/src]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
SRC = HERE.parent / "src"

# Runs one crimeaudit command in this process and reports its peak memory on the last line of
# standard error, whatever the command printed.
CHILD = """
import resource, sys
from crimeaudit.cli import main
sys.argv = ["crimeaudit", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
sys.stderr.write("\\nMAXRSS_KIB %d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""

BASELINE = """
import duckdb, resource, sys, time
db, files = sys.argv[1], sys.argv[2:]
t = time.perf_counter()
con = duckdb.connect(db)
con.execute("SET enable_progress_bar = false")
for f in files:
    name = f.rsplit("/", 1)[-1].split(".")[0]
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{f}')")
con.close()
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def stages(project: Path, files: list[str]) -> list[tuple[str, list[str]]]:
    d = str(project)
    return [
        ("init", ["init", d]),
        ("ingest", ["ingest", d, "--profile", "canonical", *files]),
        ("link", ["link", d, "--json"]),
        ("screen", ["screen", "run", d]),
        ("sample", ["sample", d, "--design", "stratified", "--by", "strand", "--size", "1500",
                    "--seed", "1"]),
        ("review oracle", ["review", "oracle", d]),
        ("estimate", ["estimate", d, "--by", "strand", "--json"]),
        ("detect", ["detect", d]),
        ("report", ["report", d]),
    ]


def run_stage(args: list[str], src: Path) -> tuple[float, float, str]:
    env = dict(os.environ, PYTHONPATH=str(src))
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                       env=env)
    wall = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(f"crimeaudit {' '.join(args[:2])} failed:\n{r.stderr[-3000:]}")
    kib = next(int(line.split()[1]) for line in reversed(r.stderr.splitlines())
               if line.startswith("MAXRSS_KIB"))
    return wall, kib / 1024, r.stdout


def pipeline(work: Path, files: list[str], src: Path, label: str) -> dict[str, tuple]:
    project = work / f"project-{label}"
    out: dict[str, tuple] = {}
    extra = {}
    for name, args in stages(project, files):
        wall, mib, stdout = run_stage(args, src)
        out[name] = (wall, mib)
        if name == "link":
            # An older version may print DuckDB's progress before the JSON: read the object.
            extra["link"] = json.JSONDecoder().raw_decode(stdout[stdout.index("{"):])[0]
        print(f"  {label:8s} {name:14s} {wall:7.1f} s {mib:8.0f} MiB", flush=True)
    out["_extra"] = extra
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--incidents", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--compare-src", type=Path, default=None,
                    help="another checkout's src folder to run the same stages with")
    ap.add_argument("--compare-label", default="previous")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "pipeline.md")
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    data = work / "force"
    if not (data / "manifest.json").exists():
        print(f"simulating kent-2013, {a.incidents:,} incidents ...", flush=True)
        subprocess.run([sys.executable, "-c", CHILD, "simulate", "--scenario", "kent-2013",
                        "--seed", "7", "--incidents", str(a.incidents), "--out", str(data)],
                       check=True, env=dict(os.environ, PYTHONPATH=str(SRC)),
                       capture_output=True)
    files = sorted(str(f) for f in data.glob("*.parquet"))
    versions = [("this", SRC)] + ([(a.compare_label, a.compare_src)] if a.compare_src else [])
    results: dict[str, list[dict]] = {label: [] for label, _ in versions}
    baselines = []
    for r in range(a.runs):
        db = work / f"baseline-{r}.duckdb"
        b = subprocess.run([sys.executable, "-c", BASELINE, str(db), *files], check=True,
                           capture_output=True, text=True)
        db.unlink()
        baselines.append(float(b.stdout.split()[0]))
        print(f"run {r + 1}: plain DuckDB load {baselines[-1]:.1f} s", flush=True)
        for label, src in versions:
            for p in work.glob(f"project-{label}"):
                subprocess.run(["rm", "-rf", str(p)], check=True)
            results[label].append(pipeline(work, files, src, label))
    base = statistics.median(baselines)
    names = [n for n, _ in stages(work, files)]
    lines = [
        "# Every stage through the CLI (bench_pipeline.py)",
        "",
        f"kent-2013, seed 7, {a.incidents:,} incidents; {a.runs} run(s), medians. Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        f"Baseline, same run: DuckDB's plain load of the same Parquet files into a database "
        f"file, {base:.1f} s.",
        "",
        "| stage | " + " | ".join(f"{label} time (s) | {label} peak (MiB) | {label} x load"
                                   for label, _ in versions) + " |",
        "|---|" + "---:|---:|---:|" * len(versions),
    ]
    totals = {}
    for name in names:
        cells = []
        for label, _ in versions:
            wall = statistics.median(r[name][0] for r in results[label])
            mib = statistics.median(r[name][1] for r in results[label])
            totals[label] = totals.get(label, 0.0) + wall
            cells += [f"{wall:.1f}", f"{mib:,.0f}", f"{wall / base:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cells = []
    for label, _ in versions:
        peak = max(max(r[n][1] for n in names) for r in results[label])
        cells += [f"**{totals[label]:.1f}**", f"**{peak:,.0f}**", f"{totals[label] / base:.1f}"]
    lines.append("| all stages | " + " | ".join(cells) + " |")
    link = results["this"][-1]["_extra"].get("link", {})
    if "precision" in link:
        lines += ["", f"Linkage against the simulator's truth (this version): precision "
                      f"{link['precision']:.4f}, recall {link['recall']:.4f}."]
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
