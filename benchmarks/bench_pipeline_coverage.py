"""Coverage of every published figure, through the pipeline a user runs, on simulated forces.

For each scenario (``--scenarios``, default kent-2013 and compliant) a force of ``--incidents``
incidents is built **with the project's own verbs**: ``simulate``, ``Project.init``,
``ingest`` (canonical profile), ``link`` (exact + Splink) and ``screen``. Then, for each cell
(design x sample size x auditor error rate [x double-review share]), ``--reps`` replicate audits
run through the code ``crimeaudit estimate`` runs:

* the sample is drawn from the design's own frame (``sampling_frame``, materialised once) with
  the design's own allocation (taken from one real ``draw_sample``) and a new random draw each
  replicate: a simple random sample of n_h records per stratum, or a Poisson sample with the
  design's inclusion probabilities;
* the decisions are the oracle auditor's (``oracle._decide`` on the whole frame once, then the
  oracle's own ``_flip`` with a new seed each replicate, and for double reviews the oracle's own
  second-review and adjudication functions);
* the figures come from ``crimeaudit.audit.measures.estimate`` and ``estimate(method="ppi")``
  themselves: the functions they use to read the store (the sample, the decisions, the linked
  crimes, the frame's counts, the screen's population sums) are replaced by lookups into tables
  read from the same store once. ``--check K`` proves the shortcut changes nothing: K audits
  are run fully (``draw_sample`` -> ``oracle_review`` -> ``estimate``, every step through the
  store) and their figures must equal the shortcut's on the same sample to 1e-12.

The **target** of every figure is its finite-population value over the same frame, computed from
the simulator's truth tables: the oracle at error 0 on a census of the frame (every record),
through the same indicator and domain definitions; the overall recording rate is also computed
directly from ``truth_incidents`` / ``truth_crimes`` and must agree. Unrecorded crimes a year:
the number of frame records that should have been recorded and were not, times 365 / days of
the frame's period.

Coverage is quoted with its Monte-Carlo 95% Wilson interval; a figure "holds" when that interval
overlaps 95% (and its point is within 94-96%). Also: bias (mean estimate - target, with its
Monte-Carlo s.e.), mean half-width, and the share of replicates in which the figure carried a
warning, with the coverage of the un-warned ones.

    nice -n 10 .venv/bin/python benchmarks/bench_pipeline_coverage.py \\
        [--scenarios kent-2013 compliant] [--incidents 60000] [--reps 1000] [--check 10] \\
        [--grid main|quick] [--label after]

Writes ``benchmarks/results/pipeline_coverage-<label>.jsonl`` (one line per figure and cell)
and the markdown table ``benchmarks/results/pipeline_coverage.md`` (section ``<label>``; other
labels' sections and the hand-written reading are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import tempfile
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import crimeaudit as ca
from crimeaudit.audit import measures, oracle, ppi_project
from crimeaudit.audit.design import (
    CALL_TYPE_PRIORITY,
    Sample,
    SampleDesign,
    _strata_expr,
    draw_sample,
    pps_probabilities,
    sampling_frame,
)
from crimeaudit.audit.review import linked_crimes
from crimeaudit.audit.shortfalls import PREFIX as SHORTFALL_PREFIX
from crimeaudit.uncertainty import proportion_interval, wilson

HERE = Path(__file__).parent
RESULTS = HERE / "results"
LEVEL = 0.95
DECISION_COLS = ("should_record", "recorded", "correctly_classified", "correct_class",
                 "within_time_limit", "cancellation_valid", "victim_told")

DESIGNS = {
    "srs": dict(kind="srs"),
    "prop": dict(kind="stratified", strata_by=("strand",), allocation="proportional"),
    "neyman": dict(kind="stratified", strata_by=("strand",), allocation="neyman"),
    "pps": dict(kind="pps", size_column=CALL_TYPE_PRIORITY),
    # The demo's own design (crimeaudit.demo): Neyman by strand, at least 20 per stratum. Its
    # figures are flagged as "neyman" (shortfalls.design_key does not look at the minimum).
    "demo": dict(kind="stratified", strata_by=("strand",), allocation="neyman",
                 min_per_stratum=20),
}
#: The design name a shortfall row carries (what crimeaudit.audit.shortfalls.design_key gives).
FLAG_DESIGN = {"demo": "neyman"}


@dataclass(frozen=True)
class Cell:
    design: str
    n: int
    error: float = 0.0
    second_share: float = 0.0
    ppi: bool = False


def grid(name: str) -> list[Cell]:
    """The cells of a run: every design at two sizes with a perfect auditor; auditor error and
    double review on the SRS and Neyman designs; PPI++ on the SRS and Neyman designs."""
    if name == "quick":
        return [Cell("srs", 400, ppi=True), Cell("neyman", 1500, 0.02, 0.1)]
    cells = []
    for d in ("srs", "prop", "neyman", "pps"):
        for n in (400, 1500):
            cells.append(Cell(d, n, ppi=d in ("srs", "neyman")))
    cells += [Cell("srs", 300, ppi=True), Cell("srs", 2000)]
    for d in ("srs", "neyman"):
        for e in (0.01, 0.03):
            cells.append(Cell(d, 1500, e, 0.1))
    cells.append(Cell("srs", 1500, 0.02, 0.1))
    return cells


# -- the force, built with the project's verbs ---------------------------------------------------


def build_force(scenario: str, n_incidents: int, seed: int, root: Path, link: str = "splink"):
    """The force's project, built with the verbs (or reopened from ``root`` if built before,
    so that runs before and after a change share one population)."""
    t0 = time.perf_counter()
    if (root / "audit" / "project.yaml").exists():
        return ca.Project.open(root / "audit"), 0.0
    root.mkdir(parents=True, exist_ok=True)
    ca.simulate(scenario, seed=seed, n_incidents=n_incidents, out_dir=root / "force")
    project = ca.Project.init(root / "audit")
    ca.ingest(project, "canonical", sorted((root / "force").glob("*.parquet")))
    ca.link(project, ca.LinkSettings(probabilistic=link == "splink"))
    ca.screen(project)
    return project, time.perf_counter() - t0


@dataclass
class Frame:
    """One design's frame, materialised once, with what a replicate needs to draw from it."""

    design: SampleDesign
    records: pd.DataFrame
    population: dict
    allocation: dict
    pi: np.ndarray | None = None
    strata_index: dict = field(default_factory=dict)


def frame_for(project, key: str, n: int) -> Frame:
    design = SampleDesign(size=n, seed=0, **DESIGNS[key])
    real = draw_sample(project, design)  # the design's own allocation and inclusion probabilities
    expr = sampling_frame(project, design)
    by = design.strata_by if design.kind == "stratified" else ()
    expr = expr.mutate(stratum=_strata_expr(expr, by))
    df = project.engine.to_pandas(expr).sort_values(["record_type", "record_id"],
                                                    kind="stable").reset_index(drop=True)
    df["record_id"] = df.record_id.astype(str)
    df["stratum"] = df.stratum.astype(str)
    fr = Frame(design, df, real.population, real.allocation)
    if design.kind == "pps":
        fr.pi = pps_probabilities(df["size"].to_numpy(float), n)
        got = df.set_index("record_id").index.get_indexer(real.records.record_id)
        assert np.allclose(fr.pi[got], real.records.inclusion_probability, rtol=1e-9), \
            "pps probabilities differ from draw_sample's"
    else:
        fr.strata_index = {h: np.flatnonzero(df.stratum.to_numpy() == h)
                           for h in fr.population}
    return fr


def draw(fr: Frame, rng, sample_id: str) -> Sample:
    """One replicate sample of the design (same distribution as draw_sample's seeded keys)."""
    df = fr.records
    if fr.pi is not None:
        idx = np.flatnonzero(rng.random(len(df)) < fr.pi)
        pi = fr.pi[idx]
    else:
        parts, pis = [], []
        for h, rows in fr.strata_index.items():
            k = fr.allocation.get(h, 0)
            parts.append(rng.choice(rows, size=k, replace=False))
            pis.append(np.full(k, k / len(rows)))
        order = np.concatenate(parts)
        idx_sort = np.argsort(order, kind="stable")
        idx, pi = order[idx_sort], np.concatenate(pis)[idx_sort]
    rec = df.iloc[idx][["record_type", "record_id", "stratum", "strand", "division"]].copy()
    rec.insert(0, "sample_id", sample_id)
    rec["inclusion_probability"] = pi
    rec["weight"] = 1 / pi
    rec["design"] = fr.design.kind
    rec["seed"] = 0
    alloc = {"all": len(rec)} if fr.pi is not None else dict(fr.allocation)
    return Sample(sample_id, fr.design, rec.reset_index(drop=True), dict(fr.population), alloc,
                  len(df))


# -- decisions: the oracle's own functions ------------------------------------------------------


def census_sample(fr: Frame) -> Sample:
    rec = fr.records[["record_type", "record_id", "stratum", "strand", "division"]].copy()
    rec.insert(0, "sample_id", "CENSUS")
    rec["inclusion_probability"] = 1.0
    rec["weight"] = 1.0
    rec["design"] = fr.design.kind
    rec["seed"] = 0
    return Sample("CENSUS", fr.design, rec, dict(fr.population), dict(fr.population),
                  len(rec))


def decisions_frame(rows, sample: Sample, review: str, source: str, batch: str,
                    start: int = 1) -> pd.DataFrame:
    types = dict(zip(sample.records.record_id, sample.records.record_type, strict=True))
    out = []
    for k, (_, d) in enumerate(rows):
        r = {c: d.get(c) for c in DECISION_COLS}
        for c in DECISION_COLS:
            if r[c] is not None and c != "correct_class":
                r[c] = str(r[c]).lower() or None
        r.update(sample_id=sample.sample_id, record_type=types[d["record_id"]],
                 record_id=d["record_id"], auditor=d.get("auditor", "oracle"),
                 notes=d.get("notes") or None, source=source, batch=batch, review=review,
                 decision_id=start + k)
        out.append(r)
    return pd.DataFrame(out)


# -- patching the store reads -------------------------------------------------------------------


class Replicate:
    """What the store would return for the replicate being estimated."""

    sample: Sample
    decisions: dict[str, pd.DataFrame]


def latest_from(rep: Replicate):
    def latest(project, sample_id=None, across_samples=False, review="current"):
        if review == "current":
            cur = rep.decisions["first"]
            adj = rep.decisions.get("adjudication")
            if adj is not None and len(adj):
                cur = pd.concat([cur[~cur.record_id.isin(adj.record_id)], adj])
                cur = cur.sort_values("decision_id", kind="stable")
            return cur.reset_index(drop=True)
        d = rep.decisions.get(review)
        return (d if d is not None else rep.decisions["first"].iloc[0:0]).reset_index(drop=True)
    return latest


@contextlib.contextmanager
def patched(project, rep: Replicate, caches: dict):
    """Replace the store reads of measures/ppi_project by lookups (restored on exit)."""
    saved = []

    def put(mod, name, value):
        saved.append((mod, name, getattr(mod, name)))
        setattr(mod, name, value)

    put(measures, "load_sample", lambda project, sample_id=None: rep.sample)
    put(measures, "latest_decisions", latest_from(rep))
    put(ppi_project, "load_sample", lambda project, sample_id=None: rep.sample)
    put(ppi_project, "latest_decisions", latest_from(rep))
    for mod, name, fn in caches["patches"]:
        put(mod, name, fn(rep))
    log = project.log_run
    project.log_run = lambda *a, **k: None
    try:
        yield
    finally:
        project.log_run = log
        for mod, name, value in reversed(saved):
            setattr(mod, name, value)


def store_caches(project, frames: dict[str, Frame]) -> dict:
    """Everything the estimators read from the store, read once for the whole frame."""
    any_frame = next(iter(frames.values()))
    census = census_sample(any_frame)
    crimes = linked_crimes(project, census)
    crimes["record_id"] = crimes.record_id.astype(object)
    rows_of = crimes.groupby("record_id", sort=False).indices

    def linked(rep):
        def f(project, sample):
            parts = [rows_of[r] for r in sample.records.record_id if r in rows_of]
            keep = np.sort(np.concatenate(parts)) if parts else np.array([], dtype=int)
            return crimes.iloc[keep].reset_index(drop=True)
        return f

    patches = [(measures, "linked_crimes", linked)]
    if hasattr(measures, "recorded_last_year"):
        memo: dict = {}
        real = measures.recorded_last_year

        def rly(rep):
            def f(project, strand=None, division=None):
                key = (strand, division)
                if key not in memo:
                    memo[key] = real(project, strand, division)
                return memo[key]
            return f
        patches.append((measures, "recorded_last_year", rly))
    for name in ("frame_facts",):
        if hasattr(measures, name):
            memo2: dict = {}
            real2 = getattr(measures, name)

            def ff(rep, real2=real2, memo2=memo2):
                def f(project, design):
                    key = json.dumps(design.to_dict() | {"size": 0, "seed": 0}, sort_keys=True)
                    if key not in memo2:
                        memo2[key] = real2(project, design)
                    return memo2[key]
                return f
            patches.append((measures, name, ff))
    # PPI: the scored frame expression, its population sums and the sampled rows' scores.
    scored: dict = {}
    sums: dict = {}
    real_scored, real_sums = ppi_project._scored_frame, ppi_project._population_sums

    def key_of(design):
        return json.dumps({"kind": design.kind, "strata_by": list(design.strata_by)})

    def scored_frame(rep):
        def f(project, design):
            k = key_of(design)
            if k not in scored:
                expr = real_scored(project, design)
                df = project.engine.to_pandas(expr)
                df["record_id"] = df.record_id.astype(str)
                scored[k] = (expr, df.set_index("record_id", drop=False))
            return scored[k][0]
        return f

    def pop_sums(rep):
        def f(project, frame, group):
            k = (id(frame), group)
            if k not in sums:
                sums[k] = real_sums(project, frame, group)
            return sums[k]
        return f

    def labelled(rep):
        def f(project, frame, record_ids):
            df = next(v[1] for v in scored.values() if v[0] is frame)
            out = df.loc[list(record_ids)].reset_index(drop=True)
            return out.sort_values(["record_type", "record_id"], kind="stable").reset_index(
                drop=True)
        return f

    patches += [(ppi_project, "_scored_frame", scored_frame),
                (ppi_project, "_population_sums", pop_sums),
                (ppi_project, "_labelled", labelled)]
    return {"patches": patches, "crimes": crimes}


# -- targets ------------------------------------------------------------------------------------


def targets(project, fr: Frame, truth_rows, caches) -> dict[tuple[str, str], float]:
    """Finite-population value of every figure: the estimators' definitions on a census with
    a perfect auditor."""
    census = census_sample(fr)
    rep = Replicate()
    rep.sample = census
    rep.decisions = {"first": decisions_frame(truth_rows, census, "first", "oracle", "truth")}
    with patched(project, rep, caches):
        recs = measures.record_table(project, census, rep.decisions["first"])
        ind = measures._indicators(recs)
        doms = measures._domains(project, recs, ("strand", "division"))
    out = {}
    for scope, d in doms:
        for m, (y, z) in ind.items():
            if (z * d).sum() > 0:
                out[(m, scope)] = float((y * d).sum() / (z * d).sum())
        s = (recs.should_record == "yes").to_numpy(float)
        r = (recs.recorded == "yes").to_numpy(float)
        out[("unrecorded_per_year", scope)] = float((s * (1 - r) * d).sum()) * 365 / _days(
            project)
    return out


def _days(project) -> float:
    eng = project.engine
    inc = eng.table("incidents")
    lo = pd.Timestamp(eng.execute(inc.reported_at.min())).normalize()
    hi = pd.Timestamp(eng.execute(inc.reported_at.max())).normalize()
    return float((hi - lo).days + 1)


def truth_rate(project, fr: Frame) -> float:
    """The overall recording rate straight from the truth tables (independent of the oracle)."""
    eng = project.engine
    ti = eng.to_pandas(eng.table("truth_incidents")).set_index("incident_id")
    tc = eng.to_pandas(eng.table("truth_crimes")).set_index("crime_id")
    incs = fr.records[fr.records.record_type == "incident"].record_id
    s = ti.loc[incs, "discloses_crime"].astype(bool)
    r = ti.loc[incs, "recorded"].astype(bool)
    num, den = float((s & r).sum()), float(s.sum())
    known = set(ti.index)
    for cid in fr.records[fr.records.record_type == "crime"].record_id:
        tid = tc.loc[cid, "true_incident_id"]
        if isinstance(tid, str) and tid in known:
            continue  # audited through its incident
        should = bool(ti.loc[tid, "discloses_crime"]) if isinstance(tid, str) and \
            tid in ti.index else True
        num += should
        den += should
    return num / den


# -- tallies ------------------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.est, self.lo, self.hi, self.warned, self.fallback = [], [], [], [], []

    def add(self, e) -> None:
        self.fallback.append("fallback" in e.method)
        self.est.append(e.estimate)
        self.lo.append(e.lower)
        self.hi.append(e.upper)
        # A shortfall warning is this benchmark's own verdict (crimeaudit.audit.shortfalls):
        # "warned" counts the other warnings, so the verdict can be measured again.
        self.warned.append(any(not w.startswith(SHORTFALL_PREFIX) for w in e.warnings))

    def summary(self, target: float) -> dict:
        est, lo, hi = (np.asarray(v, float) for v in (self.est, self.lo, self.hi))
        hi = np.where(np.isfinite(hi), hi, np.inf)
        cov = (lo <= target + 1e-12) & (target - 1e-12 <= hi)
        warned = np.asarray(self.warned)
        n = len(est)
        k = int(cov.sum())
        lo95, hi95 = wilson(k, n, 0.95)
        out = {"reps": n, "coverage": k / n, "mc_lower": lo95, "mc_upper": hi95,
               "bias": float(np.mean(est) - target),
               "bias_se": float(np.std(est, ddof=1) / math.sqrt(n)) if n > 1 else None,
               "half_width": float(np.mean(np.where(np.isfinite(hi), (hi - lo) / 2, np.nan))),
               "warned": float(warned.mean()), "target": target,
               "fallback": float(np.mean(self.fallback))}
        if (~warned).sum():
            out["coverage_unwarned"] = float(cov[~warned].mean())
            out["reps_unwarned"] = int((~warned).sum())
        return out


def run_cell(project, cell: Cell, fr: Frame, truth_rows: dict, caches, reps: int, seed: int,
             tallies: dict, checkpoint=None, every: int = 100,
             by: tuple[str, ...] = ("strand", "division")) -> float:
    """``reps`` replicate audits into ``tallies``; ``checkpoint(done, seconds)`` is called
    every ``every`` replicates (the caller saves what is done, so a run stopped early keeps
    its replicates and says how many)."""
    rng = np.random.default_rng([seed, zlib.crc32(_cell_key(cell).encode())])
    t0 = time.perf_counter()
    for i in range(reps):
        if checkpoint is not None and i and i % every == 0:
            checkpoint(i, time.perf_counter() - t0)
        rep = Replicate()
        rep.sample = draw(fr, rng, f"R{i}")
        rep.decisions = replicate_decisions(rep.sample, truth_rows, cell, int(rng.integers(2**31)))
        with patched(project, rep, caches):
            res = measures.estimate(project, rep.sample.sample_id, by, LEVEL, write=False)
            for e in res.estimates:
                tallies[(e.measure, e.scope)].add(e)
            if cell.ppi:
                pres = measures.estimate(project, rep.sample.sample_id, (), LEVEL,
                                         method="ppi", write=False)
                for e in pres.estimates:
                    tallies[("ppi:" + e.measure, e.scope)].add(e)
    return time.perf_counter() - t0


def replicate_decisions(sample: Sample, truth_rows: dict, cell: Cell, seed: int) -> dict:
    rows = [(k + 2, dict(truth_rows[rid], sample_id=sample.sample_id))
            for k, rid in enumerate(sample.records.record_id)]
    truth = [(k, dict(d)) for k, d in rows]
    if cell.error:
        oracle._flip(rows, cell.error, seed)
    label = "oracle" if not cell.error else f"oracle (error rate {cell.error:g}, seed {seed})"
    out = {"first": decisions_frame(rows, sample, "first", label, f"oracle-{cell.error:g}-{seed}")}
    if cell.second_share and hasattr(oracle, "double_review"):
        second, adjudicated = oracle.double_review(rows, truth, cell.second_share, cell.error,
                                                   seed)
        out["second"] = decisions_frame(second, sample, "second", "oracle", "second",
                                        start=10**6)
        out["adjudication"] = decisions_frame(adjudicated, sample, "adjudication", "oracle",
                                              "adjudication", start=2 * 10**6)
    return out


# -- the full pipeline check --------------------------------------------------------------------


def check_shortcut(project, key: str, fr: Frame, truth_rows, caches, k: int, error: float,
                   second_share: float = 0.0) -> int:
    """K audits through the store, compared figure by figure with the shortcut."""
    compared = 0
    # Seeds per kind of check, the same in every run: a sample re-drawn by a later run gets the
    # same oracle (a sample double-reviewed once keeps its second reviews in the store).
    base = 100 if second_share else 0
    for seed in range(base + 1, base + k + 1):
        design = SampleDesign(size=fr.design.size, seed=seed, **DESIGNS[key])
        s = draw_sample(project, design)
        kwargs = {"second_share": second_share} if second_share else {}
        ca.oracle_review(project, s.sample_id, error, seed, **kwargs)
        full = measures.estimate(project, s.sample_id, ("strand", "division"), LEVEL,
                                 write=False)
        rep = Replicate()
        rep.sample = s
        cell = Cell(key, fr.design.size, error, second_share)
        rep.decisions = replicate_decisions(s, truth_rows, cell, seed)
        with patched(project, rep, caches):
            fast = measures.estimate(project, s.sample_id, ("strand", "division"), LEVEL,
                                     write=False)
        a = {(e.measure, e.scope): e for e in full.estimates}
        b = {(e.measure, e.scope): e for e in fast.estimates}
        assert a.keys() == b.keys(), (set(a) ^ set(b))
        for key_ in a:
            for attr in ("estimate", "lower", "upper"):
                x, y = getattr(a[key_], attr), getattr(b[key_], attr)
                assert (x == y) or abs(x - y) < 1e-12, (key_, attr, x, y)
            assert a[key_].warnings == b[key_].warnings, (key_, a[key_].warnings,
                                                          b[key_].warnings)
            compared += 1
        if design.kind in ("srs", "stratified"):
            full_p = measures.estimate(project, s.sample_id, (), LEVEL, method="ppi",
                                       write=False)
            with patched(project, rep, caches):
                fast_p = measures.estimate(project, s.sample_id, (), LEVEL, method="ppi",
                                           write=False)
            for x, y in zip(full_p.estimates, fast_p.estimates, strict=True):
                assert abs(x.estimate - y.estimate) < 1e-12 and abs(x.lower - y.lower) < 1e-12
                compared += 1
    return compared


# -- main ---------------------------------------------------------------------------------------

KEY_FIGURES = ("recording_rate", "recording_rate_adjusted", "timeliness",
               "classification_accuracy", "cancellation_wrong", "unrecorded_per_year",
               "ppi:recording_rate")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=["kent-2013", "compliant"])
    ap.add_argument("--incidents", type=int, default=60_000)
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--check", type=int, default=2)
    ap.add_argument("--grid", default="main", choices=("main", "quick"))
    ap.add_argument("--label", default="after")
    ap.add_argument("--link", default="splink", choices=("splink", "exact"),
                    help="link with Splink (default) or by exact references only")
    ap.add_argument("--keep", type=Path, default=None,
                    help="build the forces under this folder and reuse them on later runs")
    ap.add_argument("--cells", nargs="*", default=None,
                    help="run these cells instead of the grid: design:n[:error:share][:ppi], "
                         "e.g. srs:400:ppi neyman:1500:0.02:0.1")
    ap.add_argument("--plan", action="store_true",
                    help="also check plan --assurance 0.8 by simulated audits")
    ap.add_argument("--results", type=Path, default=None,
                    help="write the jsonl and markdown here instead of benchmarks/results")
    ap.add_argument("--by", default="strand+division", choices=("strand+division", "none"),
                    help="domains estimated in each replicate: every strand and division "
                         "(default), or the overall figures only (several times faster)")
    ap.add_argument("--merge-shortfalls", action="store_true",
                    help="update coverage_shortfalls.csv (and coverage_measured.csv) instead "
                         "of replacing them: figures this "
                         "run measured take this run's verdict, the others keep theirs")
    ap.add_argument("--render", action="store_true",
                    help="run nothing: write the markdown and the two coverage_*.csv from "
                         "the label's jsonl")
    args = ap.parse_args()
    if args.results is not None:
        global RESULTS
        RESULTS = args.results
        RESULTS.mkdir(parents=True, exist_ok=True)
    if args.render:
        write_markdown(save(RESULTS / f"pipeline_coverage-{args.label}.jsonl", []), args, 0.0)
        return
    cells = [parse_cell(c) for c in args.cells] if args.cells is not None else grid(args.grid)
    out_jsonl = RESULTS / f"pipeline_coverage-{args.label}.jsonl"
    lines = []
    started = time.perf_counter()
    for scenario in args.scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            tag = "" if args.link == "splink" else "-exact"
            root = (args.keep / f"{scenario}-{args.incidents}-{args.seed}{tag}" if args.keep
                    else Path(tmp))
            project, t_build = build_force(scenario, args.incidents, args.seed, root, args.link)
            scenario = scenario + tag
            print(f"{scenario}: built in {t_build:.0f} s", flush=True)
            frames = {}
            for cell in cells or [Cell("srs", 400)]:
                key = (cell.design, cell.n)
                if key not in frames:
                    frames[key] = frame_for(project, cell.design, cell.n)
            caches = store_caches(project, frames)
            any_fr = next(iter(frames.values()))
            census = census_sample(any_fr)
            truth_rows = {d["record_id"]: d for _, d in oracle._decide(project, census, 0.0, 0)}
            tgt = targets(project, any_fr, [(0, d) for d in truth_rows.values()], caches)
            direct = truth_rate(project, any_fr)
            assert abs(direct - tgt[("recording_rate", "all")]) < 1e-12, (direct, tgt)
            print(f"  target recording rate {direct:.4f} (truth tables and census agree)",
                  flush=True)
            if args.check:
                n_cmp = 0
                for key in ("srs", "neyman", "pps", "prop", "demo"):
                    fr = next((f for (d, _), f in frames.items() if d == key), None)
                    if fr is None:
                        continue
                    n_cmp += check_shortcut(project, key, fr, truth_rows, caches, args.check,
                                            0.02)
                    if key in ("srs", "neyman") and hasattr(oracle, "double_review"):
                        n_cmp += check_shortcut(project, key, fr, truth_rows, caches, 1, 0.03,
                                                0.1)
                print(f"  shortcut check: {n_cmp} figures equal to the full pipeline's",
                      flush=True)
            if args.plan:
                lines += plan_check(project, scenario, any_fr, truth_rows, caches, args.reps,
                                    args.seed)
                save(out_jsonl, lines)
            for cell in cells:
                fr = frames[(cell.design, cell.n)]
                tallies: dict = defaultdict(Tally)

                def rows_of(secs, cell=cell, tallies=tallies, scenario=scenario, tgt=tgt):
                    out = []
                    for (measure, scope), tally in sorted(tallies.items()):
                        base = measure.removeprefix("ppi:").removesuffix("_adjusted")
                        t = tgt.get((base, scope))
                        if t is None:
                            continue
                        out.append({"scenario": scenario, "cell": _cell_key(cell),
                                    "design": cell.design, "n": cell.n, "error": cell.error,
                                    "second_share": cell.second_share, "measure": measure,
                                    "scope": scope, **tally.summary(t), "seconds": secs})
                    return out

                def checkpoint(done, secs, cell=cell, rows_of=rows_of, done_lines=lines):
                    save(out_jsonl, done_lines + rows_of(secs))  # a stopped run keeps its reps
                    print(f"  {_cell_key(cell)}: {done} reps in {secs:.0f} s", flush=True)

                secs = run_cell(project, cell, fr, truth_rows, caches, args.reps, args.seed,
                                tallies, checkpoint,
                                by=() if args.by == "none" else ("strand", "division"))
                lines += rows_of(secs)
                save(out_jsonl, lines)  # after every cell: a killed run keeps what it did
                allrate = next((r for r in lines[::-1] if r["measure"] == "recording_rate"
                                and r["scope"] == "all"), None)
                print(f"  {_cell_key(cell)}: {args.reps} reps in {secs:.0f} s; all-crime rate "
                      f"coverage {allrate['coverage']:.3f}" if allrate else "", flush=True)
            project.close()
    write_markdown(save(out_jsonl, lines), args, time.perf_counter() - started)


def save(out_jsonl: Path, lines: list[dict]) -> list[dict]:
    """Merge ``lines`` into the label's rows (a cell run again replaces its rows); returns all."""
    done = {(r["scenario"], r["cell"]) for r in lines}
    old = [json.loads(x) for x in out_jsonl.read_text(encoding="utf-8").splitlines()
           if x.strip()] if out_jsonl.exists() else []
    merged = [r for r in old if (r["scenario"], r.get("cell")) not in done] + lines
    out_jsonl.write_text("".join(json.dumps(r) + "\n" for r in merged), encoding="utf-8")
    return merged


def parse_cell(text: str) -> Cell:
    parts = text.split(":")
    ppi = parts[-1] == "ppi"
    if ppi:
        parts = parts[:-1]
    error = float(parts[2]) if len(parts) > 2 else 0.0
    share = float(parts[3]) if len(parts) > 3 else 0.0
    return Cell(parts[0], int(parts[1]), error, share, ppi)


def _cell_key(c: Cell) -> str:
    k = f"{c.design}:{c.n}"
    if c.error or c.second_share:
        k += f":{c.error:g}:{c.second_share:g}"
    return k + (":ppi" if c.ppi else "")


def plan_check(project, scenario: str, fr: Frame, truth_rows: dict, caches, reps: int,
               seed: int) -> list[dict]:
    """Does ``plan --assurance 0.8`` deliver? For the whole force (+/-2 points) and the
    sexual-offences strand (+/-3 points): plan with the true rate of the scope's records as
    the expected rate, then run ``reps`` simple random samples of the planned size of the
    scope's records and count how often the Wilson half-width is within the margin."""
    from crimeaudit.audit.plan import plan_for_project

    census = census_sample(fr)
    rep = Replicate()
    rep.sample = census
    rep.decisions = {"first": decisions_frame([(0, d) for d in truth_rows.values()], census,
                                              "first", "oracle", "truth")}
    with patched(project, rep, caches):
        recs = measures.record_table(project, census, rep.decisions["first"])
    y, z = measures._indicators(recs)["recording_rate"]
    call_strand = recs.strand.astype(str).to_numpy()
    codes = project.codes
    rng = np.random.default_rng([seed, 99])
    out = []
    for scope, margin in (("all", 0.02), ("sexual", 0.03)):
        inside = np.array([scope in codes.ancestry(s) for s in call_strand])
        expected = float((y * inside).sum() / (z * inside).sum())
        plan = plan_for_project(project, margin, expected, 0.95, (scope,), assurance=0.8)[0]
        idx = np.flatnonzero(inside)
        n = min(plan.n_records, len(idx))
        hits = 0
        halves = []
        for _ in range(reps):
            pick = rng.choice(idx, size=n, replace=False)
            x, m = y[pick].sum(), z[pick].sum()
            lo, hi = proportion_interval(x, m, LEVEL, "wilson")  # estimate's, as plan's
            halves.append((hi - lo) / 2)
            hits += (hi - lo) / 2 <= margin + 1e-12
        lo95, hi95 = wilson(hits, reps, 0.95)
        out.append({"scenario": scenario, "cell": f"plan:{scope}", "measure": "plan",
                    "scope": scope, "margin": margin, "expected": expected,
                    "n_records": plan.n_records, "planned_assurance": plan.achieved,
                    "crime_share": plan.crime_share,
                    "true_crime_share": float(z[inside].mean()),
                    "reps": reps, "achieved": hits / reps,
                    "mc_lower": lo95, "mc_upper": hi95,
                    "mean_half_width": float(np.mean(halves))})
        print(f"  plan {scope} +/-{margin}: {plan.n_records} records (crime share "
              f"{plan.crime_share:.3f}, true {z[inside].mean():.3f}), margin reached in "
              f"{hits / reps:.3f} of audits", flush=True)
    return out


def shortfall_rows(lines: list[dict]) -> list[dict]:
    """The figures to flag (``crimeaudit/model/data/coverage_shortfalls.csv``): coverage among
    the replicates with no other warning, with its Monte-Carlo interval entirely below 95%
    (at least 100 such replicates). Uncorrected figures count at auditor error 0 only: with
    auditor error they are warned by the double review, or biased in a way only a double
    review can show."""
    out = []
    for r in lines:
        if not _eligible(r):
            continue
        m = int(r.get("reps_unwarned") or 0)
        if m < 100:
            continue
        k = int(round(r["coverage_unwarned"] * m))
        lo, hi = wilson(k, m, 0.95)
        if hi < 0.95:
            out.append({"measure": r["measure"],
                        "design": FLAG_DESIGN.get(r["design"], r["design"]), "n": r["n"],
                        "scope": r["scope"], "scenario": r["scenario"], "reps": m,
                        "coverage": round(k / m, 4), "mc_lower": round(float(lo), 4),
                        "mc_upper": round(float(hi), 4)})
    return out


MEASURED_COLUMNS = ["measure", "design", "n", "scope", "scenario"]


def measured_rows(lines: list[dict], shipped: list[dict] = ()) -> list[dict]:
    """Every figure a run judged, short or not (``coverage_measured.csv``): the rows with the
    100 un-warned replicates :func:`shortfall_rows` needs, by measure, design (as flagged), n,
    scope and scenario, together with ``shipped`` (the list as it was, when merging).

    >>> measured_rows([{"measure": "timeliness", "design": "demo", "n": 1500, "scope": "all",
    ...                 "scenario": "kent-2013", "error": 0, "reps_unwarned": 900}])[0]["design"]
    'neyman'
    """
    keys = {(r["measure"], r["design"], int(r["n"]), r["scope"], r["scenario"])
            for r in shipped}
    keys |= {(r["measure"], FLAG_DESIGN.get(r["design"], r["design"]), int(r["n"]), r["scope"],
              r["scenario"])
             for r in lines if _eligible(r) and int(r.get("reps_unwarned") or 0) >= 100}
    return [dict(zip(MEASURED_COLUMNS, k, strict=True)) for k in sorted(keys)]


def _fmt(r: dict, flagged: set) -> str:
    unit = 1.0 if r["measure"].startswith("unrecorded") else 100.0
    fmt = "{:,.0f}" if unit == 1.0 else "{:+.2f}"
    hw = "{:,.0f}" if unit == 1.0 else "{:.2f}"
    flag = "" if r["mc_lower"] <= 0.95 <= r["mc_upper"] else (
        " **low**" if r["mc_upper"] < 0.95 else " high")
    unw = (f"{100 * r['coverage_unwarned']:.1f}% ({r['reps_unwarned']:,})"
           if r.get("coverage_unwarned") is not None else "-")
    key = (r["measure"], FLAG_DESIGN.get(r["design"], r["design"]), r["n"], r["scope"],
           r["scenario"])
    return (f"| {r['scenario']} | {r['design']} | {r['n']:,} | {r['error']:g} | "
            f"{r['second_share']:g} | {r['measure']} | {r['scope']} | {r['reps']:,} | "
            f"{100 * r['coverage']:.1f}% [{100 * r['mc_lower']:.1f}, {100 * r['mc_upper']:.1f}]"
            f"{flag} | {fmt.format(unit * r['bias'])} | {hw.format(unit * r['half_width'])} | "
            f"{100 * r['warned']:.0f}% | {unw} | {'yes' if key in flagged else ''} |")


def _eligible(r: dict) -> bool:
    """Whether a row can put a figure in the shipped list (see :func:`shortfall_rows`)."""
    return r["measure"] != "plan" and (not r["error"] or r["measure"].endswith("_adjusted"))


def merged_shortfalls(lines: list[dict], shipped: list[dict]) -> list[dict]:
    """The shipped list after this run: rows of ``shipped`` (the list as it was) whose figure
    (measure, design, n, scope, scenario) this run measured again are replaced by this run's
    verdict (kept if still short, dropped if not); rows it did not measure stay; this run's new
    shortfalls are added.

    >>> old = [{"measure": "recording_rate", "design": "neyman", "n": 1500, "scope": "other",
    ...         "scenario": "national-2014"}, {"measure": "timeliness", "design": "pps",
    ...         "n": 1500, "scope": "all", "scenario": "kent-2013"}]
    >>> new = [{"measure": "recording_rate", "design": "neyman", "n": 1500, "scope": "other",
    ...         "scenario": "national-2014", "error": 0, "reps_unwarned": 900,
    ...         "coverage_unwarned": 0.95}]
    >>> [r["measure"] for r in merged_shortfalls(new, old)]
    ['timeliness']
    """
    def key(r):
        return (r["measure"], r["design"], int(r["n"]), r["scope"], r["scenario"])

    # A design flagged under another's name (the demo's, as "neyman") adds its shortfalls but
    # does not overrule that design's own measurements.
    measured = {key(r) for r in lines if _eligible(r)}
    kept = [r for r in shipped if key(r) not in measured]
    seen = {key(r) for r in kept}
    return kept + [r for r in shortfall_rows(lines) if key(r) not in seen]


def write_markdown(lines, args, seconds: float) -> None:
    path = RESULTS / "pipeline_coverage.md"
    sf, judged = shortfall_rows(lines), measured_rows(lines)
    if getattr(args, "merge_shortfalls", False):
        def read(name):
            ship = RESULTS / name
            return list(csv.DictReader(ship.open(encoding="utf-8"))) if ship.exists() else []

        sf = merged_shortfalls(lines, read("coverage_shortfalls.csv"))
        judged = measured_rows(lines, read("coverage_measured.csv"))
    for name, rows, cols in (
            ("coverage_shortfalls.csv", sf, ["measure", "design", "n", "scope", "scenario",
                                             "reps", "coverage", "mc_lower", "mc_upper"]),
            ("coverage_measured.csv", judged, MEASURED_COLUMNS)):
        with (RESULTS / name).open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
    flagged = {(r["measure"], r["design"], int(r["n"]), r["scope"], r["scenario"]) for r in sf}
    head = ("| scenario | design | n | auditor error | double review | figure | scope | reps | "
            "coverage [MC 95%] | bias (points; crimes) | mean half-width | warned | "
            "coverage un-warned (reps) | shortfall flag |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    plans = [r for r in lines if r["measure"] == "plan"]
    lines = [r for r in lines if r["measure"] != "plan"]
    lines = sorted(lines, key=lambda r: (r["scenario"], r["design"], r["n"], r["error"],
                                         r["measure"], r["scope"]))
    main_rows = [r for r in lines if r["scope"] == "all" or r["measure"] == "recording_rate"]
    other = [r for r in lines if r not in main_rows]
    short = [r for r in other if r["mc_upper"] < 0.95]
    rep_secs = sum({(r["scenario"], r["cell"]): r.get("seconds") or 0.0
                    for r in lines}.values())
    body = (f"## {args.label}\n\nRows from `bench_pipeline_coverage.py --label {args.label}` "
            f"runs ({args.incidents:,} incidents, seed {args.seed}; replicates took "
            f"{rep_secs / 60:.1f} min in all on the shared 2-core machine).\n\n"
            "Every figure overall, and the recording rate in every strand and division:\n\n"
            + head + "".join(_fmt(r, flagged) + "\n" for r in main_rows)
            + f"\nOther figures by strand and division whose Monte-Carlo interval lies below "
              f"95% ({len(short)} of {len(other)}):\n\n" + head
            + "".join(_fmt(r, flagged) + "\n" for r in short) + "\n")
    if plans:
        body += ("`plan --assurance 0.8` checked by simulated audits (simple random samples of "
                 "the planned size of the scope's records; expected rate = the scope's true "
                 "rate):\n\n| scenario | scope | margin | expected | records planned | "
                 "crime share | planned assurance | margin reached [MC 95%] | mean half-width |"
                 "\n|---|---|---|---|---|---|---|---|---|\n")
        for r in plans:
            body += (f"| {r['scenario']} | {r['scope']} | +/-{100 * r['margin']:g} | "
                     f"{100 * r['expected']:.1f}% | {r['n_records']:,} | "
                     f"{r['crime_share']:.2f} | {100 * r['planned_assurance']:.1f}% | "
                     f"{100 * r['achieved']:.1f}% [{100 * r['mc_lower']:.1f}, "
                     f"{100 * r['mc_upper']:.1f}] | {100 * r['mean_half_width']:.2f} |\n")
        body += "\n"
    old = path.read_text(encoding="utf-8") if path.exists() else (
        "# Coverage of every published figure through the pipeline\n\n"
        "Produced by `benchmarks/bench_pipeline_coverage.py`; see its docstring for the method."
        " Full rows: `pipeline_coverage-<label>.jsonl`.\n\n")
    marker = f"## {args.label}\n"
    if marker in old:
        start = old.index(marker)
        nxt = old.find("\n## ", start + len(marker))
        old = old[:start] + body + (old[nxt + 1:] if nxt >= 0 else "")
    else:
        old = old.rstrip("\n") + "\n\n" + body
    path.write_text(old, encoding="utf-8")


if __name__ == "__main__":
    main()
