"""Sample designs: who gets audited, drawn reproducibly from the project's records.

The *frame* is every incident reported in the audit period plus every crime recorded in the
period without an incident reference (``frame="incidents"``, the recording audit), or every
cancelled crime of the period (``frame="cancellations"``, the cancellation audit). Designs:

* ``srs`` - simple random sample of ``size`` records, without replacement;
* ``stratified`` - stratified by ``strand`` and/or ``division`` with ``proportional`` or
  ``neyman`` allocation (at least ``min_per_stratum`` records each, so every stratum has a
  variance);
* ``pps`` - Poisson sampling with inclusion probability proportional to a positive size or
  priority score (``size_column``), capped at 1; the expected sample size is ``size``.

The strand used for *stratifying* an incident comes from its call type (the ``strand`` column
of ``incident_types.csv``), because that is known for every incident before anyone audits it;
crimes linked to no incident, and cancelled crimes, take the strand of their offence code.

The frame, its stratum counts and the selection are computed in the engine (only the sampled
records come back to Python): records are ordered within each stratum by a seeded MD5 key
(:func:`random_key`), so a draw is reproducible on any engine and checkable by hand.
(Estimates *by strand* use the auditor's judgement instead: see ``crimeaudit.audit.measures``.)

A design and its seed fix the sample: drawing it again gives the same records. Samples live in
the store table ``audit_samples`` and their designs in ``audit_designs``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from crimeaudit.audit.errors import AuditError
from crimeaudit.linkage.pairs import linked_pairs
from crimeaudit.model.schema import AUDIT_DESIGNS, AUDIT_SAMPLES
from crimeaudit.progress import Progress, resolve
from crimeaudit.store.files import write_text
from crimeaudit.store.project import project_verb

#: A built-in priority score for ``pps``: calls of a type that usually discloses a crime are
#: four times as likely to be audited as others.
CALL_TYPE_PRIORITY = "call_type_priority"

KINDS = ("srs", "stratified", "pps")
ALLOCATIONS = ("proportional", "neyman")
FRAMES = ("incidents", "cancellations")
STRATIFIERS = ("strand", "division")

SAMPLES_TABLE = AUDIT_SAMPLES.name
DESIGNS_TABLE = AUDIT_DESIGNS.name

SAMPLE_SCHEMA = AUDIT_SAMPLES.arrow_schema()
DESIGN_SCHEMA = AUDIT_DESIGNS.arrow_schema()


@dataclass(frozen=True)
class SampleDesign:
    """What to draw. ``kind`` is ``srs``, ``stratified`` or ``pps``.

    >>> SampleDesign("stratified", size=400, seed=7, strata_by=("strand",)).describe()
    'stratified by strand, neyman allocation, n=400, seed 7, frame incidents'
    """

    kind: str = "srs"
    size: int = 1000
    seed: int = 0
    strata_by: tuple[str, ...] = ("strand",)
    allocation: str = "neyman"
    expected_rate: float = 0.85
    size_column: str | None = None
    frame: str = "incidents"
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    min_per_stratum: int = 2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise AuditError(f"unknown design {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.allocation not in ALLOCATIONS:
            raise AuditError(
                f"unknown allocation {self.allocation!r}; use one of {', '.join(ALLOCATIONS)}"
            )
        if self.frame not in FRAMES:
            raise AuditError(f"unknown frame {self.frame!r}; use one of {', '.join(FRAMES)}")
        bad = [s for s in self.strata_by if s not in STRATIFIERS]
        if bad or (self.kind == "stratified" and not self.strata_by):
            raise AuditError(f"stratify by one or both of {', '.join(STRATIFIERS)}, not {bad}")
        if self.size < 1:
            raise AuditError(f"sample size must be at least 1, not {self.size}")
        if self.kind == "pps" and not self.size_column:
            raise AuditError(
                "a pps design needs a size or priority score: --size-column COLUMN "
                f"(a column of incidents, TABLE.COLUMN keyed by incident_id, or "
                f"{CALL_TYPE_PRIORITY})"
            )
        if not 0 < self.expected_rate < 1:
            raise AuditError("the expected rate must be between 0 and 1")

    def describe(self) -> str:
        if self.kind == "stratified":
            head = f"stratified by {'+'.join(self.strata_by)}, {self.allocation} allocation"
        elif self.kind == "pps":
            head = f"pps (Poisson) on {self.size_column}"
        else:
            head = "simple random sample"
        return f"{head}, n={self.size}, seed {self.seed}, frame {self.frame}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["strata_by"] = list(self.strata_by)
        for k in ("period_start", "period_end"):
            d[k] = d[k].isoformat() if d[k] else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleDesign:
        d = dict(d)
        d["strata_by"] = tuple(d.get("strata_by") or ())
        for k in ("period_start", "period_end"):
            if d.get(k):
                d[k] = dt.date.fromisoformat(d[k])
        return cls(**d)


@dataclass
class Sample:
    """A drawn sample: its records (one row per sampled record) and the design behind it."""

    sample_id: str
    design: SampleDesign
    records: pd.DataFrame
    population: dict[str, int] = field(default_factory=dict)
    allocation: dict[str, int] = field(default_factory=dict)
    frame_size: int = 0

    def __len__(self) -> int:
        return len(self.records)

    def summary(self) -> str:
        return (
            f"sample {self.sample_id}: {len(self)} of {self.frame_size:,} records "
            f"({self.design.describe()})"
        )


# -- the frame ----------------------------------------------------------------------------------

FRAME_COLUMNS = ("record_type", "record_id", "strand", "division", "has_crime")
_HEX = "0123456789abcdef"


def _period(project, design: SampleDesign) -> tuple[dt.date | None, dt.date | None]:
    return (
        design.period_start or project.config.audit_period_start,
        design.period_end or project.config.audit_period_end,
    )


def _in_period(col, start, end):
    cond = ibis.literal(True)
    if start:
        cond = cond & (col >= ibis.timestamp(dt.datetime.combine(start, dt.time())))
    if end:
        cond = cond & (col < ibis.timestamp(dt.datetime.combine(end + dt.timedelta(1), dt.time())))
    return cond


def _mapped(col, mapping: dict[str, str], default: str):
    """``col`` looked up in a small code list mapping (in the engine), ``default`` if absent."""
    if not mapping:
        return ibis.literal(default)
    return col.substitute(mapping, else_=ibis.literal(default))


def sampling_frame(project, design: SampleDesign) -> ir.Table:
    """The records a design draws from, as an Ibis expression evaluated in the engine.

    Columns: record_type, record_id, strand, division, has_crime, and ``size`` for pps. The
    frame of a recording audit is every incident reported in the period plus every crime
    recorded in the period that is linked to no incident (:func:`crimeaudit.linkage.linked_pairs`
    is the one definition of linked: a crime linked by reference or by Splink folds into its
    incident's record). Nothing is pulled into Python: counts and samples are computed from it.
    """
    eng, codes = project.engine, project.codes
    start, end = _period(project, design)
    crimes = eng.table("crimes")
    offence_strand = {c: o.strand for c, o in codes.offences.items()}
    size_col = design.size_column if design.kind == "pps" else None
    if design.frame == "cancellations":
        when = crimes.cancelled_at.fill_null(crimes.recorded_at)
        t = crimes.filter((crimes.status == "cancelled") & _in_period(when, start, end))
        frame = t.select(
            record_type=ibis.literal("crime"), record_id=t.crime_id.cast("string"),
            strand=_mapped(t.offence_code, offence_strand, "other"),
            division=t.division.cast("string"), has_crime=ibis.literal(True))
        return frame.mutate(division=frame.division.fill_null("unknown"))
    pairs = linked_pairs(project)
    inc = eng.table("incidents")
    inc = inc.filter(_in_period(inc.reported_at, start, end))
    linked_incidents = pairs.select("incident_id").distinct().mutate(
        has_crime=ibis.literal(True))
    inc = inc.left_join(linked_incidents, "incident_id")
    cols = {
        "record_type": ibis.literal("incident"),
        "record_id": inc.incident_id.cast("string"),
        "strand": _mapped(inc.call_type, codes.call_type_strands, "other"),
        "division": inc.division.cast("string"),
        "has_crime": inc.has_crime.fill_null(False),
    }
    if size_col == CALL_TYPE_PRIORITY:
        usual = [k for k, v in codes.incident_types.items()
                 if str(v.get("usually_crime", "")).lower() == "true"]
        cols["size"] = ibis.ifelse(inc.call_type.isin(usual), 4.0, 1.0)
    elif size_col and "." not in size_col:
        if size_col not in inc.columns:
            raise AuditError(f"incidents have no column {size_col!r} for the pps size")
        cols["size"] = inc[size_col].cast("float64")
    frame = inc.select(**cols)
    if size_col and "." in size_col:
        frame = _size_from_table(project, size_col, frame)
    when = crimes.reported_at.fill_null(crimes.recorded_at)
    orphan = crimes.filter(~crimes.crime_id.isin(pairs.crime_id) & _in_period(when, start, end))
    ocols = {
        "record_type": ibis.literal("crime"), "record_id": orphan.crime_id.cast("string"),
        "strand": _mapped(orphan.offence_code, offence_strand, "other"),
        "division": orphan.division.cast("string"), "has_crime": ibis.literal(True),
    }
    if size_col:
        # A crime without an incident is a crime: give it the largest size in the frame.
        ocols["size"] = frame.size.max().as_scalar().cast("float64")
    frame = frame.union(orphan.select(**ocols))
    return frame.mutate(division=frame.division.fill_null("unknown"))


def _size_from_table(project, spec: str, frame: ir.Table) -> ir.Table:
    table, column = spec.split(".", 1)
    if not project.engine.has_table(table):
        raise AuditError(f"no table {table!r} for the pps size {spec!r}")
    t = project.engine.table(table)
    if "incident_id" not in t.columns or column not in t.columns:
        raise AuditError(f"table {table!r} needs columns incident_id and {column!r}")
    sizes = t.select(record_id=t.incident_id.cast("string"), size=t[column].cast("float64"))
    sizes = sizes.distinct(on="record_id", keep="first")
    return frame.left_join(sizes, "record_id").select(*FRAME_COLUMNS, "size")


def _strata_expr(frame: ir.Table, by: tuple[str, ...]):
    if not by:
        return ibis.literal("all")
    out = frame[by[0]].cast("string")
    for col in by[1:]:
        out = out + "|" + frame[col].cast("string")
    return out


def random_key(seed: int, frame: ir.Table):
    """A uniform number in [0, 1) per record, fixed by the seed and the record (in the engine).

    The first 52 bits of MD5("seed|type:id"): the same on every engine and version, and
    checkable by hand (``hashlib.md5(b"7|incident:I1").hexdigest()``), so a sample can be
    re-drawn and verified outside crimeaudit. Ordering records by it within a stratum gives a
    simple random sample without replacement; comparing it with an inclusion probability gives
    a Poisson sample.
    """
    digest = (ibis.literal(f"{int(seed)}|") + frame.record_type + ":" + frame.record_id
              ).hexdigest("md5")
    hexdigits = ibis.literal(_HEX)
    return sum(hexdigits.find(digest.substr(i, 1)).cast("float64") * (16.0 ** -(i + 1))
               for i in range(13))


def frame_summary(project, design: SampleDesign) -> pd.DataFrame:
    """Per stratum of ``design``: records in the frame (N) and the share linked to a crime.

    Computed in the engine; one small row per stratum comes back.
    """
    frame = sampling_frame(project, design)
    by = design.strata_by if design.kind == "stratified" else ()
    frame = frame.mutate(stratum=_strata_expr(frame, by))
    agg = frame.group_by("stratum").aggregate(
        N=frame.count(), crime_share=frame.has_crime.cast("float64").mean())
    return project.engine.to_pandas(agg.order_by("stratum")).reset_index(drop=True)


def frame_size(project, design: SampleDesign) -> int:
    """How many records the design's frame holds (counted in the engine)."""
    return int(project.engine.execute(sampling_frame(project, design).count()))


# -- allocation ---------------------------------------------------------------------------------


def allocate(population: dict[str, int], n: int, scores: dict[str, float] | None = None,
             minimum: int = 2) -> dict[str, int]:
    """Split ``n`` across strata in proportion to ``N_h * score_h`` (largest remainder).

    ``scores`` of 1 give proportional allocation; ``S_h`` gives Neyman. Each stratum gets at
    least ``minimum`` (or all its records if fewer) and never more than it has.

    >>> allocate({"a": 800, "b": 200}, 100)
    {'a': 80, 'b': 20}
    >>> allocate({"a": 800, "b": 200}, 100, scores={"a": 1.0, "b": 4.0})
    {'a': 50, 'b': 50}
    """
    labels = sorted(population)
    N = np.array([population[h] for h in labels], dtype=float)
    total = int(N.sum())
    if n > total:
        raise AuditError(f"sample size {n} is larger than the frame ({total} records)")
    s = np.array([(scores or {}).get(h, 1.0) for h in labels], dtype=float)
    floor = np.minimum(N, minimum)
    if floor.sum() > n:
        raise AuditError(
            f"{len(labels)} strata need at least {int(floor.sum())} records; sample size {n} "
            "is too small (fewer strata or a larger sample)"
        )
    # Target n_h proportional to N_h * S_h; strata pushed below their floor or above N_h are
    # fixed there and the rest re-shared among the others, until nothing moves.
    fixed = np.full(len(N), np.nan)
    for _ in range(len(labels) + 1):
        free = np.isnan(fixed)
        share = np.where(free, N * s, 0.0)
        rest = n - np.nansum(fixed)
        target = np.where(free, rest * share / share.sum() if share.sum() > 0 else 0.0, fixed)
        low, high = free & (target < floor), free & (target > N)
        if not (low.any() or high.any()):
            break
        fixed[low], fixed[high] = floor[low], N[high]
    alloc = np.floor(target + 1e-9)
    left = int(round(n - alloc.sum()))
    order = np.argsort(-(target - alloc), kind="stable")
    for j in order:
        if left <= 0:
            break
        if alloc[j] < N[j]:
            alloc[j] += 1
            left -= 1
    return {h: int(a) for h, a in zip(labels, alloc, strict=True)}


def pps_probabilities(size: np.ndarray, n: float) -> np.ndarray:
    """Inclusion probabilities ``n * s_i / sum s``, with those above 1 set to 1 (iterated).

    >>> pps_probabilities(np.array([1.0, 1.0, 2.0, 96.0]), 2).round(3).tolist()
    [0.25, 0.25, 0.5, 1.0]
    """
    size = np.asarray(size, dtype=float)
    if np.any(~np.isfinite(size)) or np.any(size <= 0):
        raise AuditError(
            f"pps sizes must be positive numbers; {int(np.sum(~(size > 0)))} records have a "
            "missing, zero or negative size"
        )
    pi = np.zeros_like(size)
    certain = np.zeros(size.shape, dtype=bool)
    for _ in range(len(size) + 1):
        rest = n - certain.sum()
        pi = np.where(certain, 1.0, rest * size / size[~certain].sum())
        newly = (pi >= 1) & ~certain
        if not newly.any():
            break
        certain |= newly
    return np.minimum(pi, 1.0)


# -- drawing ------------------------------------------------------------------------------------


@project_verb
def draw_sample(project, design: SampleDesign | None = None, *, progress: Progress | None = None,
                **params: Any) -> Sample:
    """Draw ``design`` (or ``SampleDesign(**params)``) and store it in the project.

    The frame, the stratum counts and the selection are computed in the engine; only the
    sampled records come back. The same design and seed over the same frame always give the
    same sample (and the same ``sample_id``); drawing it again replaces the stored rows with
    identical ones.
    """
    design = design or SampleDesign(**params)
    prog = resolve(progress)
    eng = project.engine
    with prog.task("Drawing the sample", total=None), _cached(
            sampling_frame(project, design), design) as frame:
        summary = eng.to_pandas(frame.group_by("stratum").aggregate(
            N=frame.count(), crime_share=frame.has_crime.cast("float64").mean(),
            ids=frame.record_id.nunique()).order_by("stratum"))
        N = int(summary.N.sum()) if len(summary) else 0
        if N == 0:
            raise AuditError("the sampling frame is empty: no records in the audit period")
        n_distinct = int(eng.execute(frame.record_id.nunique())) if len(summary) > 1 else int(
            summary.ids.sum())
        if n_distinct != N:
            raise AuditError(f"{N - n_distinct} record ids appear twice in the sampling frame "
                             "(an incident and a crime share an id)")
        population = {str(h): int(v) for h, v in zip(summary.stratum, summary.N, strict=True)}
        if design.kind in ("srs", "stratified"):
            if design.kind == "srs":
                if design.size > N:
                    raise AuditError(
                        f"sample size {design.size} is larger than the frame ({N} records)")
                alloc = {"all": design.size}
            else:
                scores = None
                if design.allocation == "neyman":
                    scores = _neyman_scores(summary, design.expected_rate)
                alloc = allocate(population, design.size, scores, design.min_per_stratum)
            quota = ibis.memtable(pd.DataFrame({
                "stratum": list(alloc), "n_h": [int(v) for v in alloc.values()],
                "pop_h": [population[h] for h in alloc]}))
            ranked = frame.mutate(k=ibis.row_number().over(
                group_by=frame.stratum, order_by=[frame.u, frame.record_id]))
            chosen = ranked.join(quota, "stratum").filter(lambda t: t.k < t.n_h)
            chosen = chosen.mutate(inclusion_probability=chosen.n_h.cast("float64")
                                   / chosen.pop_h.cast("float64"))
        else:
            if int(eng.execute(frame.filter(~(frame.size > 0) | frame.size.isnull()).count())):
                bad = int(eng.execute(frame.filter(~(frame.size > 0) | frame.size.isnull())
                                      .count()))
                raise AuditError(
                    f"pps sizes must be positive numbers; {bad} records have a missing, zero "
                    "or negative size")
            scale = _pps_scale(eng, frame, design.size)
            pi = ibis.least(frame.size * scale, 1.0)
            chosen = frame.mutate(inclusion_probability=pi).filter(lambda t: t.u < pi)
        rows = eng.to_pandas(chosen.select(
            "record_type", "record_id", "stratum", "strand", "division",
            "inclusion_probability").order_by(["record_type", "record_id"]))
    if design.kind == "pps":
        alloc = {"all": len(rows)}
    sid = sample_id_for(design, N)
    records = pd.DataFrame(
        {
            "sample_id": sid,
            "record_type": rows.record_type.astype(str).to_numpy(),
            "record_id": rows.record_id.astype(str).to_numpy(),
            "stratum": rows.stratum.astype(str).to_numpy(),
            "strand": rows.strand.astype(str).to_numpy(),
            "division": rows.division.astype(str).to_numpy(),
            "inclusion_probability": rows.inclusion_probability.to_numpy(float),
            "weight": 1 / rows.inclusion_probability.to_numpy(float),
            "design": design.kind,
            "seed": design.seed,
        }
    )
    sample = Sample(sid, design, records, population, alloc, N)
    _store(project, sample)
    project.log_run(
        "sample", params=design.to_dict(), counts={"frame": N, "sampled": len(records)}
    )
    return sample


@contextmanager
def _cached(frame: ir.Table, design: SampleDesign):
    """The frame with its stratum and random key, held in a temporary table of the engine for
    the draw (it is read several times: counts, duplicate check, selection)."""
    by = design.strata_by if design.kind == "stratified" else ()
    with frame.mutate(stratum=_strata_expr(frame, by),
                      u=random_key(design.seed, frame)).cache() as cached:
        yield cached


def _pps_scale(eng, frame: ir.Table, n: float) -> float:
    """The ``c`` with ``sum min(1, c s_i) = n`` (records with ``c s_i >= 1`` are certain).

    The same fixed point as :func:`pps_probabilities`, found with a few aggregate queries in
    the engine instead of the sizes in memory.
    """
    total = float(eng.execute(frame.size.sum()))
    scale = n / total
    for _ in range(100):
        big = frame.size * scale >= 1
        agg = eng.to_pandas(frame.aggregate(
            k=big.cast("int64").sum(),
            rest=ibis.ifelse(big, 0.0, frame.size).sum()))
        k, rest = int(agg.k.iloc[0] or 0), float(agg.rest.iloc[0] or 0.0)
        if rest <= 0:
            return scale
        new = (n - k) / rest
        if np.isclose(new, scale, rtol=1e-12, atol=0):
            return new
        scale = new
    return scale


def _neyman_scores(summary: pd.DataFrame, p0: float) -> dict[str, float]:
    # Residual s.d. of the ratio's linearised variable in stratum h is about
    # sqrt(c_h * p(1-p)), c_h = share of records disclosing a crime. The recorded share
    # (has_crime) is c_h * p, so c_h ~ has_crime_h / p0. A floor keeps every stratum sampled.
    c = np.clip(summary.crime_share.to_numpy(float) / p0, 0.01, 1.0)
    return {str(h): float(np.sqrt(v * p0 * (1 - p0)))
            for h, v in zip(summary.stratum, c, strict=True)}


def sample_id_for(design: SampleDesign, frame_size: int) -> str:
    """A short id fixed by the design and frame size (same design, same id)."""
    key = json.dumps({"design": design.to_dict(), "frame": frame_size}, sort_keys=True)
    return "S" + hashlib.sha256(key.encode()).hexdigest()[:10]


def _store(project, sample: Sample) -> None:
    eng = project.engine
    design_row = pa.table(
        {
            "sample_id": [sample.sample_id],
            "design": [sample.design.kind],
            "params": [json.dumps(sample.design.to_dict(), sort_keys=True)],
            "strata": [json.dumps({h: {"N": int(sample.population[h]),
                                        "n": int(sample.allocation.get(h, 0))}
                                   for h in sorted(sample.population)}, sort_keys=True)],
            "frame_size": [sample.frame_size],
            "sample_size": [len(sample.records)],
            "drawn_at": [dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")],
        },
        schema=DESIGN_SCHEMA,
    )
    rows = pa.Table.from_pandas(sample.records, schema=SAMPLE_SCHEMA, preserve_index=False)
    with eng.transaction():
        for name, new, schema in ((SAMPLES_TABLE, rows, SAMPLE_SCHEMA),
                                  (DESIGNS_TABLE, design_row, DESIGN_SCHEMA)):
            eng.create_empty(name, schema)
            t = eng.table(name)
            old = eng.to_pyarrow(t.filter(t.sample_id != sample.sample_id)).cast(schema)
            eng.write(name, pa.concat_tables([old, new]))
    folder = project.folder("audit")
    write_text(  # never through a link planted in the folder
        folder / f"sample-{sample.sample_id}.json",
        json.dumps({"sample_id": sample.sample_id, "design": sample.design.to_dict(),
                    "population": sample.population, "allocation": sample.allocation,
                    "frame_size": sample.frame_size}, indent=2, sort_keys=True),
    )


def load_sample(project, sample_id: str | None = None) -> Sample:
    """A stored sample: ``sample_id``, or the most recently drawn one."""
    eng = project.engine
    if not eng.has_table(DESIGNS_TABLE) or eng.count(DESIGNS_TABLE) == 0:
        raise AuditError("no sample has been drawn yet: run crimeaudit sample DIR first")
    designs = eng.to_pandas(eng.table(DESIGNS_TABLE))
    if sample_id is None:
        row = designs.sort_values("drawn_at", kind="stable").iloc[-1]
    else:
        match = designs[designs.sample_id == sample_id]
        if match.empty:
            raise AuditError(
                f"no sample {sample_id!r}; samples: {', '.join(sorted(designs.sample_id))}"
            )
        row = match.iloc[0]
    t = eng.table(SAMPLES_TABLE)
    records = eng.to_pandas(t.filter(t.sample_id == row.sample_id))
    records = records.sort_values(["record_type", "record_id"], kind="stable")
    strata = json.loads(row.strata)
    return Sample(
        row.sample_id,
        SampleDesign.from_dict(json.loads(row.params)),
        records.reset_index(drop=True),
        {h: v["N"] for h, v in strata.items()},
        {h: v["n"] for h, v in strata.items()},
        int(row.frame_size),
    )
