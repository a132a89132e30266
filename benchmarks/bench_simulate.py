"""Benchmark: simulate 1,000,000 incidents (kent-2013) and write Parquet.

Measures wall time (median of 3 runs) and peak resident memory, each run in a fresh child
process (``resource.getrusage(RUSAGE_CHILDREN)``). The baseline, measured in the same run, is
pyarrow writing the very same five tables to Parquet from memory: the floor any simulator that
writes these files must pay.

    .venv/bin/python benchmarks/bench_simulate.py [--incidents 1000000] [--runs 3]

Writes benchmarks/results/simulate.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, n, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
from crimeaudit.simulation import simulate
if mode == "simulate":
    t = time.perf_counter()
    simulate("kent-2013", seed=7, n_incidents=n, out_dir=out)
    wall = time.perf_counter() - t
else:
    import pyarrow.parquet as pq
    from crimeaudit.simulation.writer import write_tables
    tables = {p.stem: pq.read_table(p) for p in sorted(out.glob("*.parquet"))}
    t = time.perf_counter()
    write_tables(tables, out / "baseline", "parquet")
    wall = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"wall": wall, "rss_mib": rss / 1024}))
"""


def run(mode: str, n: int, out: Path) -> dict:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(n), str(out)],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - t
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sims, bases = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for _ in range(args.runs):
            sims.append(run("simulate", args.incidents, out))
            bases.append(run("baseline", args.incidents, out))
        sizes = {p.name: p.stat().st_size for p in sorted(out.glob("*.parquet"))}
        rows = json.loads((out / "manifest.json").read_text())["rows"]
    sim_wall = statistics.median(r["wall"] for r in sims)
    sim_proc = statistics.median(r["process_wall"] for r in sims)
    sim_rss = max(r["rss_mib"] for r in sims)
    base_wall = statistics.median(r["wall"] for r in bases)
    base_rss = max(r["rss_mib"] for r in bases)
    lines = [
        "# Simulator benchmark",
        "",
        f"`benchmarks/bench_simulate.py`: scenario kent-2013, seed 7, {args.incidents:,} "
        f"incidents, Parquet output; median of {args.runs} runs, each in a fresh process.",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"Python {platform.python_version()}.",
        "",
        "| measure | simulate | baseline: pyarrow writes the same tables | ratio |",
        "|---|---|---|---|",
        f"| wall time (s), median | {sim_wall:.1f} | {base_wall:.1f} | "
        f"{sim_wall / base_wall:.1f}x |",
        f"| wall time incl. interpreter start (s) | {sim_proc:.1f} | | |",
        f"| peak RSS (MiB), max of runs | {sim_rss:.0f} | {base_rss:.0f} | "
        f"{sim_rss / base_rss:.1f}x |",
        "",
        "The baseline process reads the simulated files into memory, then times only the write;",
        "its peak RSS includes the tables it holds.",
        "",
        "Targets (issue 2): at most 60 s and under 2 GiB peak memory for 1,000,000 incidents.",
        f"Result: {'met' if sim_proc <= 60 and sim_rss < 2048 else 'NOT met'}.",
        "",
        "Rows written: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()) + ".",
        "",
        "File sizes (bytes): " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()) + ".",
        "",
        "Individual runs (simulate wall s / RSS MiB): "
        + ", ".join(f"{r['wall']:.1f} / {r['rss_mib']:.0f}" for r in sims) + ".",
        "",
    ]
    path = Path(__file__).parent / "results" / "simulate.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
