"""Coverage of the comparison's difference interval, through the verbs a user runs.

Replicate pairs of audits of simulated forces, each pair going through the public API:
``simulate`` once per force, ``ingest`` and ``link`` once per project, then per replicate
``draw_sample`` (a new seed), ``oracle_review``, ``estimate`` for each side and ``compare``. The
interval of the difference B minus A is checked against the simulated true change:

* **truth tables** - the true recording rate of a period is, among the simulator's
  ``truth_incidents`` reported in it, the share with ``discloses_crime`` and ``recorded``;
* **census** - the audit's own estimand: every record of the sampling frame (incidents of the
  period, plus crimes linked to no incident) drawn, decided by the oracle and estimated, once
  per side, through the same verbs.

Configurations (each its own forces, projects and seeds):

* ``reform-srs`` - the ``reform`` scenario in one project: a simple random sample from the year
  before the reform (2014-04-01 to 2015-03-31) against one from the year after; compared with
  ``compare(project, samples=[before, after])`` (Newcombe's interval from the counts);
* ``forces-stratified`` - two forces, ``kent-2013`` (A) and ``compliant`` (B), one project
  each, stratified samples by strand with Neyman allocation; compared with
  ``compare(estimates_a, estimates_b)`` (MOVER from the design-based Wilson n_eff intervals).

Each worker process copies the ingested projects once and restores them every
``RESTORE_EVERY`` replicates, so the store does not grow over thousands of samples. Run::

    .venv/bin/python benchmarks/bench_compare.py [--reps 1000] [--workers 2] [--size 400]

It writes ``benchmarks/results/compare.md`` (``--lines FILE`` also keeps one JSON line per
replicate) and exits 1 if a configuration's coverage is below 94%.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "compare.md"
RESTORE_EVERY = 25
TARGET = 0.94
MIN_PAIRS = 1000

BEFORE = (dt.date(2014, 4, 1), dt.date(2015, 3, 31))
AFTER = (dt.date(2015, 4, 1), dt.date(2016, 3, 31))


def truth_rate(project, start: dt.date | None, end: dt.date | None) -> float:
    """True recording rate of the incidents reported in the period (truth tables)."""
    eng = project.engine
    inc = eng.to_pandas(eng.table("incidents").select("incident_id", "reported_at"))
    truth = eng.to_pandas(eng.table("truth_incidents").select(
        "incident_id", "discloses_crime", "recorded"))
    df = inc.merge(truth, on="incident_id")
    day = df.reported_at.dt.date
    if start:
        df = df[day >= start]
        day = df.reported_at.dt.date
    if end:
        df = df[day <= end]
    crimes = df[df.discloses_crime]
    return float(crimes.recorded.mean())


def census_rate(project, start, end) -> float:
    """The audit's estimand: every record of the frame drawn, decided and estimated."""
    import crimeaudit as ca
    from crimeaudit.audit import SampleDesign, sampling_frame

    design = SampleDesign("srs", size=1, seed=0, period_start=start, period_end=end)
    n = int(project.engine.execute(sampling_frame(project, design).count()))
    s = ca.draw_sample(project, kind="srs", size=n, seed=0, period_start=start,
                       period_end=end)
    ca.oracle_review(project, s.sample_id)
    return ca.estimate(project, s.sample_id, write=False).get("recording_rate").estimate


def build(config: str, work: Path, incidents: int, seed: int) -> dict:
    """Simulate, ingest and link once; the true change by both definitions."""
    import crimeaudit as ca

    if config == "reform-srs":
        forces = {"reform": "reform"}
    else:
        forces = {"a": "kent-2013", "b": "compliant"}
    projects = {}
    for key, scenario in forces.items():
        sim_dir = work / f"sim-{key}"
        ca.simulate(scenario, seed=seed, n_incidents=incidents, out_dir=sim_dir)
        folder = work / f"pristine-{key}"
        with ca.Project.init(folder, name=scenario) as p:
            ca.ingest(p, "canonical", sorted(sim_dir.glob("*.parquet")))
            ca.link(p)
        projects[key] = str(folder)
    info = {"config": config, "projects": projects, "incidents": incidents, "seed": seed}
    census_dir = work / "census"
    if config == "reform-srs":
        shutil.copytree(projects["reform"], census_dir / "reform")
        with ca.Project.open(census_dir / "reform") as p:
            ta, tb = truth_rate(p, *BEFORE), truth_rate(p, *AFTER)
            ca_, cb = census_rate(p, *BEFORE), census_rate(p, *AFTER)
    else:
        rates = {}
        for key in ("a", "b"):
            shutil.copytree(projects[key], census_dir / key)
            with ca.Project.open(census_dir / key) as p:
                rates[key] = (truth_rate(p, None, None), census_rate(p, None, None))
        (ta, ca_), (tb, cb) = rates["a"], rates["b"]
    info.update(truth_a=ta, truth_b=tb, census_a=ca_, census_b=cb,
                true_change=tb - ta, census_change=cb - ca_)
    return info


def _restore(pristine: dict, work: Path) -> dict:
    import crimeaudit as ca

    opened = {}
    for key, folder in pristine.items():
        target = work / key
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target)
        opened[key] = ca.Project.open(target)
    return opened


def run_chunk(args: tuple) -> list[dict]:
    """One worker: its replicates, on its own copies of the projects."""
    config, info, reps, size, partial = args
    import crimeaudit as ca

    # Each replicate is also appended to this worker's own file, so a long run interrupted
    # part-way can still be summarised (--from-lines).
    sink = open(partial, "a", encoding="utf-8") if partial else None  # noqa: SIM115

    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    rows = []
    projects: dict = {}
    try:
        for i, rep in enumerate(reps):
            if i % RESTORE_EVERY == 0:
                for p in projects.values():
                    p.close()
                projects = _restore(info["projects"], work)
            t0 = time.perf_counter()
            if config == "reform-srs":
                p = projects["reform"]
                ids = []
                for k, (start, end) in enumerate((BEFORE, AFTER)):
                    s = ca.draw_sample(p, kind="srs", size=size, seed=1 + rep * 2 + k,
                                       period_start=start, period_end=end)
                    ca.oracle_review(p, s.sample_id)
                    ca.estimate(p, s.sample_id)
                    ids.append(s.sample_id)
                res = ca.compare(p, samples=ids)
            else:
                runs = []
                for k, key in enumerate(("a", "b")):
                    p = projects[key]
                    s = ca.draw_sample(p, kind="stratified", size=size,
                                       seed=1 + rep * 2 + k, strata_by=("strand",))
                    ca.oracle_review(p, s.sample_id)
                    runs.append(ca.estimate(p, s.sample_id))
                res = ca.compare(*runs)
            d = res.get("recording_rate")
            rows.append({
                "config": config, "rep": rep, "difference": d.difference, "lower": d.lower,
                "upper": d.upper, "p": d.p_value, "method": d.method,
                "rate_a": d.a.estimate, "rate_b": d.b.estimate,
                "m_a": d.a.denominator, "m_b": d.b.denominator,
                "true_change": info["true_change"], "census_change": info["census_change"],
                **{k: info[k] for k in ("truth_a", "truth_b", "census_a", "census_b")},
                "seconds": time.perf_counter() - t0})
            if sink:
                sink.write(json.dumps(rows[-1], sort_keys=True) + "\n")
                sink.flush()
    finally:
        if sink:
            sink.close()
        for p in projects.values():
            p.close()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def wilson_text(k: int, n: int) -> tuple[float, float, float]:
    from crimeaudit.uncertainty import wilson

    lo, hi = wilson(k, n, 0.95)
    return k / n, lo, hi


def summarise(config: str, info: dict, rows: list[dict], seconds: float) -> dict:
    n = len(rows)
    cover_t = sum(r["lower"] <= r["true_change"] <= r["upper"] for r in rows)
    cover_c = sum(r["lower"] <= r["census_change"] <= r["upper"] for r in rows)
    miss_lo = sum(r["true_change"] < r["lower"] for r in rows)
    mean_d = sum(r["difference"] for r in rows) / n
    sd_d = math.sqrt(sum((r["difference"] - mean_d) ** 2 for r in rows) / max(n - 1, 1))
    return {
        "config": config, "pairs": n, "methods": sorted({r["method"] for r in rows}),
        "true_change": info["true_change"], "census_change": info["census_change"],
        "truth": (info["truth_a"], info["truth_b"]), "census": (info["census_a"],
                                                                info["census_b"]),
        "coverage_truth": wilson_text(cover_t, n), "coverage_census": wilson_text(cover_c, n),
        "miss_below": miss_lo, "miss_above": n - cover_t - miss_lo,
        "bias_census": mean_d - info["census_change"], "bias_se": sd_d / math.sqrt(n),
        "half_width": sum((r["upper"] - r["lower"]) / 2 for r in rows) / n,
        # The test of no change rejects at 5% exactly when the 95% interval excludes 0.
        "power": sum(r["lower"] > 0 or r["upper"] < 0 for r in rows) / n,
        "m_a": sum(r["m_a"] for r in rows) / n, "m_b": sum(r["m_b"] for r in rows) / n,
        "seconds": seconds, "per_pair": sum(r["seconds"] for r in rows) / n,
    }


def write(results: list[dict], args) -> None:
    pct = lambda x: f"{100 * x:.2f}%"  # noqa: E731
    lines = [
        "# Coverage of the comparison's difference interval, through the pipeline", "",
        (f"Summarised by `benchmarks/bench_compare.py --from-lines` from "
         f"{sum(r['pairs'] for r in results):,} replicate pairs saved with `--lines` by "
         "runs of `benchmarks/bench_compare.py "
         f"--incidents {args.incidents} --size {args.size} --seed {args.seed} --workers "
         f"{args.workers}`." if args.from_lines else
         f"Produced by `benchmarks/bench_compare.py --reps {args.reps} --incidents "
         f"{args.incidents} --size {args.size} --seed {args.seed} --workers {args.workers}`."),
        "",
        *([args.note, ""] if args.note else []),
        "Each replicate pair: `draw_sample` (new seed) -> `oracle_review` -> `estimate` on each "
        "side, then `compare`; forces simulated, ingested and linked once per configuration. "
        "Coverage = share of pairs whose 95% interval for B minus A contains the true change "
        "(Wilson 95% interval of that share in brackets). *Truth tables*: the change in the "
        "share of crime-disclosing incidents that were recorded (`truth_incidents`). "
        "*Census*: the change in the audit's own estimand, every record of the frame decided "
        "by the oracle (the frame also holds crimes with no incident, which are recorded by "
        "definition, so the census rate sits a little above the truth-table rate). Power = "
        "share of pairs whose test of no change rejects at 5% (its interval excludes 0).", "",
        "| configuration | method | pairs | true change (truth tables) | coverage (truth tables)"
        " | true change (census) | coverage (census) | misses below / above | bias vs census "
        "(points) | mean half-width (points) | power | mean m (A / B) | s per pair |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ct, cc = r["coverage_truth"], r["coverage_census"]
        lines.append(
            f"| {r['config']} | {', '.join(r['methods'])} | {r['pairs']:,} | "
            f"{100 * r['true_change']:+.2f} ({pct(r['truth'][0])} -> {pct(r['truth'][1])}) | "
            f"**{pct(ct[0])}** ({pct(ct[1])}-{pct(ct[2])}) | "
            f"{100 * r['census_change']:+.2f} ({pct(r['census'][0])} -> "
            f"{pct(r['census'][1])}) | {pct(cc[0])} ({pct(cc[1])}-{pct(cc[2])}) | "
            f"{r['miss_below']} / {r['miss_above']} | {100 * r['bias_census']:+.3f} "
            f"({100 * r['bias_se']:.3f}) | {100 * r['half_width']:.2f} | {pct(r['power'])} | "
            f"{r['m_a']:.0f} / {r['m_b']:.0f} | {r['per_pair']:.2f} |")
    total = sum(r["seconds"] for r in results)
    verdicts = []
    for r in results:
        met = r["coverage_truth"][0] >= TARGET
        enough = r["pairs"] >= MIN_PAIRS
        verdicts.append(f"{r['config']}: {r['pairs']:,} pairs, coverage "
                        f"{100 * r['coverage_truth'][0]:.1f}% "
                        + ("meets" if met and enough else "does not meet" if not met else
                           "is at or above the coverage target but rests on fewer pairs "
                           "than") + " the target")
    lines += ["", f"Target: coverage of at least {100 * TARGET:.0f}% over at least "
              f"{MIN_PAIRS:,} pairs per configuration (against the truth tables). "
              + "; ".join(verdicts) + ". "
              f"{'Replicate' if args.from_lines else 'Wall'} time {total / 60:.1f} minutes "
              f"with {args.workers} worker processes on the shared 2-core development "
              "machine.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


def _from_lines(args) -> int:
    """The table from saved replicates (runs of one configuration at a time, merged)."""
    rows: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {}
    seen: set[tuple[str, int]] = set()
    for path in args.from_lines:
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if (r["config"], r["rep"]) in seen:  # a run's lines and its worker's partial file
                continue
            seen.add((r["config"], r["rep"]))
            rows.setdefault(r["config"], []).append(r)
            seconds[r["config"]] = seconds.get(r["config"], 0.0) + r["seconds"] / args.workers
    results = []
    for config, rs in rows.items():
        info = {k: rs[0][k] for k in ("true_change", "census_change", "truth_a", "truth_b",
                                      "census_a", "census_b")}
        results.append(summarise(config, info, rs, seconds[config]))
    write(results, args)
    return 1 if any(r["coverage_truth"][0] < TARGET or r["pairs"] < MIN_PAIRS
                    for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--first", type=int, default=0,
                    help="First replicate number (to continue an interrupted run).")
    ap.add_argument("--incidents", type=int, default=8000)
    ap.add_argument("--size", type=int, default=400)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--configs", nargs="+", default=["reform-srs", "forces-stratified"])
    ap.add_argument("--lines", type=Path, default=None, help="JSON lines, one per replicate.")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--from-lines", type=Path, nargs="+", default=None,
                    help="Only summarise replicates saved earlier with --lines.")
    ap.add_argument("--note", default="", help="A paragraph for the results file: how the "
                    "replicates were run, if not by one invocation.")
    args = ap.parse_args(argv)
    results = []
    if args.from_lines:
        return _from_lines(args)
    out = open(args.lines, "w", encoding="utf-8") if args.lines else None  # noqa: SIM115
    try:
        for config in args.configs:
            t0 = time.perf_counter()
            work = Path(tempfile.mkdtemp(prefix=f"bench-{config}-"))
            try:
                info = build(config, work, args.incidents, args.seed)
                print(f"{config}: true change {100 * info['true_change']:+.2f} points "
                      f"(census {100 * info['census_change']:+.2f})", flush=True)
                chunks = [list(range(args.first + w, args.first + args.reps, args.workers))
                          for w in range(args.workers)]
                partial = [f"{args.lines}.{config}.{w}" if args.lines else None
                           for w in range(args.workers)]
                with ProcessPoolExecutor(args.workers) as pool:
                    rows = [r for part in pool.map(run_chunk, [
                        (config, info, c, args.size, f)
                        for c, f in zip(chunks, partial, strict=True)]) for r in part]
            finally:
                shutil.rmtree(work, ignore_errors=True)
            rows.sort(key=lambda r: r["rep"])
            for r in rows if out else ():
                out.write(json.dumps(r, sort_keys=True) + "\n")
            results.append(summarise(config, info, rows, time.perf_counter() - t0))
    finally:
        if out:
            out.close()
    write(results, args)
    bad = [r for r in results if r["coverage_truth"][0] < TARGET]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
