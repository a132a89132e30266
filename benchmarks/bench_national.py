"""A national year: 43 simulated forces in one project, every stage through the command line.

An inspectorate that screens every force works with a year of incidents for England and Wales
(about 20 million incidents and 6 million crimes). This benchmark builds such a year from 43
simulated forces (scenario ``national-2014``), each given a share of the incidents equal to its
share of recorded crime in England and Wales in the year to March 2014 (``national_forces.csv``,
derived from the ONS file in ``shared/data``), each with its own seed and force code
(``crimeaudit simulate --force-code``) so their identifiers do not collide. It then runs what a
user runs, each stage as a fresh ``crimeaudit`` process on one project: ``init``, ``ingest``
(every force's files), ``link``, ``screen run``, ``sample``, ``review oracle``, ``estimate``,
``detect``, ``report``, with wall time and peak memory (``ru_maxrss`` of the stage's process,
DuckDB's memory included).

The baseline, measured in the same run on the same files, is DuckDB's plain load of the
Parquet files into a database file, one table per kind of file; the table quotes each stage as a
multiple of it, so figures mean the same on a faster machine. With several sizes the scaling
exponent of each stage (the slope of log time on log incidents, least squares) is printed: 1.0
is linear. Simulation is not timed. A stage that fails (out of memory, for instance) is
recorded with its error and the later stages of that size are skipped.

    .venv/bin/python benchmarks/bench_national.py --sizes 1000000 4000000 20000000

writes ``benchmarks/results/national.md`` (``--out``); ``--work DIR`` keeps the simulated
forces there for later runs; ``--forces K`` uses the K largest forces only (quick checks);
``--src DIR`` runs another checkout's ``src`` (``git archive HEAD src | tar -x -C DIR``);
``--engines duckdb pyspark`` runs the stages on each engine in turn (Spark in local mode), the
peak memory then counting Spark's JVM (a child process) as well.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One crimeaudit command in a fresh interpreter, its peak memory on stderr's last line, and the
# stages a user runs (shared with bench_pipeline.py, which this script sits beside).
from bench_pipeline import CHILD, stages

# The same, counting the peak memory of the command's child processes too (Spark's JVM, which
# py4j starts as a child): each process's high-water mark (VmHWM), read before the command
# exits, summed with the command's own. For DuckDB (no children) it is the command's own.
CHILD_TREE = CHILD.replace("sys.stderr.write(", """import os
def _hwm(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
def _children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out
_extra = sum(_hwm(c) for c in _children(os.getpid()))
sys.stderr.write(""", 1).replace("% resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
                                "% (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + _extra))",
                                1)
assert "_extra))" in CHILD_TREE

HERE = Path(__file__).parent
SRC = HERE.parent / "src"
FORCES = HERE / "national_forces.csv"

# DuckDB's plain load: one table per kind of file (incidents, crimes, ...), all forces' files.
BASELINE = """
import duckdb, json, resource, sys, time
db, groups = sys.argv[1], json.loads(sys.argv[2])
t = time.perf_counter()
con = duckdb.connect(db)
con.execute("SET enable_progress_bar = false")
for name, files in groups.items():
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet({files!r})")
con.close()
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def read_forces(limit: int | None = None) -> list[tuple[str, int]]:
    """(force, recorded crimes) from ``national_forces.csv``, largest first."""
    with FORCES.open(encoding="utf-8") as f:
        rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))][1:]
    forces = sorted(((r[0], int(r[1])) for r in rows), key=lambda x: -x[1])
    return forces[:limit] if limit else forces


def force_code(name: str, taken: set[str]) -> str:
    """A short unique code from a force's name (``Metropolitan Police`` -> ``MP``)."""
    words = re.findall(r"[A-Za-z]+", name)
    base = "".join(w[0] for w in words).upper() if len(words) > 1 else words[0][:3].upper()
    code, k = base, 2
    while code in taken:
        code, k = f"{base}{k}", k + 1
    taken.add(code)
    return code


def shares(total: int, forces: list[tuple[str, int]]) -> list[tuple[str, str, int]]:
    """(force, code, incidents) with the incidents shared by recorded crime (at least 1,000)."""
    weight = sum(w for _, w in forces)
    taken: set[str] = set()
    return [(name, force_code(name, taken), max(1000, round(total * w / weight)))
            for name, w in forces]


def simulate_forces(total: int, forces, root: Path, seed: int) -> list[Path]:
    """Each force's files under ``root/<code>``, reused when already there."""
    folders = []
    for k, (name, code, n) in enumerate(shares(total, forces)):
        out = root / code
        if not (out / "manifest.json").exists():
            r = subprocess.run([sys.executable, "-c", CHILD, "simulate", "--scenario",
                                "national-2014", "--seed", str(seed + k), "--incidents", str(n),
                                "--out", str(out), "--force-code", code],
                               capture_output=True, text=True, env=child_env())
            if r.returncode:
                raise SystemExit(f"simulating {name} failed:\n{r.stderr[-2000:]}")
            print(f"  simulated {name} ({code}): {n:,} incidents", flush=True)
        folders.append(out)
    return folders


def child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC))


def use_src(src: Path) -> None:
    """Run the stages with another checkout's ``src`` folder (a snapshot of a commit)."""
    global SRC
    SRC = src.resolve()


def run_stage(args: list[str]) -> tuple[float, float, str | None]:
    """(wall seconds, peak MiB, error or None) of one crimeaudit command."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD_TREE, *args], capture_output=True,
                       text=True, env=child_env())
    wall = time.perf_counter() - t
    kib = next((int(line.split()[1]) for line in reversed(r.stderr.splitlines())
                if line.startswith("MAXRSS_KIB")), 0)
    error = None
    if r.returncode:
        tail = [x for x in r.stderr.splitlines() if x.strip() and "MAXRSS" not in x]
        error = f"exit {r.returncode}: {tail[-1] if tail else 'killed'}"
    return wall, kib / 1024, error


def baseline(work: Path, files: list[str]) -> tuple[float, float]:
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(Path(f).stem, []).append(f)
    db = work / "baseline.duckdb"
    r = subprocess.run([sys.executable, "-c", BASELINE, str(db), json.dumps(groups)],
                       check=True, capture_output=True, text=True)
    db.unlink()
    secs, kib = r.stdout.split()
    return float(secs), int(kib) / 1024


def engine_stages(project: Path, files: list[str], engine: str) -> list[tuple[str, list[str]]]:
    """The stages a user runs, on a project created for ``engine``."""
    out = stages(project, files)
    if engine != "duckdb":
        out[0] = ("init", [*out[0][1], "--engine", engine])
    return out


def one_size(total: int, forces, work: Path, seed: int, engine: str = "duckdb") -> dict:
    data = work / f"forces-{total}"
    t0 = time.perf_counter()
    folders = simulate_forces(total, forces, data, seed)
    simulated = time.perf_counter() - t0
    files = sorted(str(f) for d in folders for f in d.glob("*.parquet"))
    rows = {}
    for d in folders:
        for name, n in json.loads((d / "manifest.json").read_text())["rows"].items():
            rows[name] = rows.get(name, 0) + n
    base_s, base_mib = baseline(work, files)
    print(f"{total:,} incidents ({len(folders)} forces, {rows.get('crimes', 0):,} crimes): "
          f"plain DuckDB load {base_s:.1f} s, {base_mib:,.0f} MiB", flush=True)
    project = work / f"project-{engine}-{total}"
    shutil.rmtree(project, ignore_errors=True)
    out: dict = {"engine": engine,
                 "incidents": rows.get("incidents", 0), "crimes": rows.get("crimes", 0),
                 "forces": len(folders), "baseline_s": base_s, "baseline_mib": base_mib,
                 "simulate_s": simulated, "stages": {}}
    failed = None
    for name, args in engine_stages(project, files, engine):
        if failed:
            out["stages"][name] = {"skipped": f"after {failed}"}
            continue
        wall, mib, error = run_stage(args)
        out["stages"][name] = {"s": wall, "mib": mib, "error": error}
        print(f"  {name:14s} {wall:8.1f} s {mib:9,.0f} MiB {error or ''}", flush=True)
        if error:
            failed = name
    shutil.rmtree(project, ignore_errors=True)
    return out


def exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(time) on log(size)."""
    if len(points) < 2:
        return None
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else None


def _engine(r: dict) -> str:
    return r.get("engine", "duckdb")


def _label(r: dict) -> str:
    size = f"{r['incidents'] / 1e6:.1f}M"
    return size if _engine(r) == "duckdb" else f"{size} {_engine(r)}"


def write_markdown(results: list[dict], args, path: Path) -> str:
    names = [n for n, _ in stages(Path("p"), [])]
    load = subprocess.run(["cat", "/proc/loadavg"], capture_output=True, text=True).stdout
    lines = [
        "# A national year through the CLI (bench_national.py)",
        "",
        f"Scenario national-2014, {results[0]['forces']} simulated forces sized by recorded crime "
        f"2013/14, seed {args.seed}; one run per size. Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; measured "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average at the end "
        f"{load.split()[0] if load else '?'}. Baseline, same run: DuckDB's plain load of the "
        "same Parquet files into a database file. Targets (issue #15): the whole pipeline "
        "after simulation within 10 minutes and under 8 GB peak at 20M incidents.",
        "",
        "| stage | " + " | ".join(f"{_label(r)} time (s) | peak (MiB) | x load"
                                   for r in results) + f" | exponent ({_engine(results[0])}) |",
        "|---|" + "---:|---:|---:|" * len(results) + "---:|",
    ]
    for name in names + ["all stages"]:
        cells, points = [], []
        for r in results:
            if name == "all stages":
                done = [v for v in r["stages"].values() if "s" in v]
                st = {"s": sum(v["s"] for v in done), "mib": max((v["mib"] for v in done),
                                                                   default=0),
                      "error": next((v.get("error") or v.get("skipped") for v in
                                     r["stages"].values() if v.get("error") or
                                     v.get("skipped")), None)}
            else:
                st = r["stages"].get(name, {})
            if "s" not in st:
                cells += ["-", "-", "-"]
                continue
            flag = " (failed)" if st.get("error") else ""
            cells += [f"{st['s']:.1f}{flag}", f"{st['mib']:,.0f}",
                      f"{st['s'] / r['baseline_s']:.1f}"]
            if not st.get("error") and _engine(r) == _engine(results[0]):
                points.append((r["incidents"], st["s"]))
        e = exponent(points)
        bold = "**" if name == "all stages" else ""
        lines.append(f"| {bold}{name}{bold} | " + " | ".join(cells)
                     + f" | {'-' if e is None else f'{e:.2f}'} |")
    lines += ["", "| size | incidents | crimes | plain load (s) | plain load peak (MiB) | "
              "simulation, not timed above (s) |", "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['incidents'] / 1e6:.1f}M | {r['incidents']:,} | {r['crimes']:,} | "
                     f"{r['baseline_s']:.1f} | {r['baseline_mib']:,.0f} | "
                     f"{r['simulate_s']:.0f} |")
    errors = [(r["incidents"], n, v["error"]) for r in results for n, v in r["stages"].items()
              if v.get("error")]
    if errors:
        lines += ["", "Failures:"] + [f"- {n:,} incidents, {s}: {e}" for n, s, e in errors]
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000, 20_000_000])
    ap.add_argument("--forces", type=int, default=None, help="the K largest forces only")
    ap.add_argument("--seed", type=int, default=2014)
    ap.add_argument("--work", type=Path, default=None,
                    help="keep the simulated forces here (reused by later runs)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "national.md")
    ap.add_argument("--engines", nargs="+", default=["duckdb"], choices=["duckdb", "pyspark"],
                    help="run the stages on each engine in turn (pyspark: local mode, "
                         "CRIMEAUDIT_SPARK_MASTER to change it)")
    ap.add_argument("--src", type=Path, default=SRC,
                    help="the src folder to run (default: this checkout's)")
    a = ap.parse_args()
    use_src(a.src)
    forces = read_forces(a.forces)
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-national-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for total in a.sizes:
        for engine in a.engines:
            results.append(one_size(total, forces, work, a.seed, engine))
        (work / "national.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
        print(write_markdown(results, a, a.out), flush=True)
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
