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

The strand used for *stratifying* an incident comes from its call type
(:data:`CALL_TYPE_STRANDS`), because that is known for every incident before anyone audits it;
crimes without an incident, and cancelled crimes, take the strand of their offence code.
(Estimates *by strand* use the auditor's judgement instead: see ``crimeaudit.audit.measures``.)

A design and its seed fix the sample: drawing it again gives the same records. Samples live in
the store table ``audit_samples`` and their designs in ``audit_designs``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from crimeaudit.audit.errors import AuditError
from crimeaudit.progress import Progress, resolve
from crimeaudit.store.project import project_verb

#: Call type (incident_types.csv) -> the strand a crime reported that way most likely falls in.
#: Call types that do not usually disclose a crime (ASB, WELFARE, ...) map to ``other``.
CALL_TYPE_STRANDS: dict[str, str] = {
    "ASSAULT": "violence",
    "DOMESTIC": "violence",
    "THREATS": "violence",
    "SEXUAL": "sexual",
    "ROBBERY": "robbery",
    "BURGLARY": "burglary",
    "THEFT": "theft",
    "VEHICLE": "theft",
    "DAMAGE": "criminal_damage",
}

#: A built-in priority score for ``pps``: calls of a type that usually discloses a crime are
#: four times as likely to be audited as others.
CALL_TYPE_PRIORITY = "call_type_priority"

KINDS = ("srs", "stratified", "pps")
ALLOCATIONS = ("proportional", "neyman")
FRAMES = ("incidents", "cancellations")
STRATIFIERS = ("strand", "division")

SAMPLES_TABLE = "audit_samples"
DESIGNS_TABLE = "audit_designs"

SAMPLE_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("record_type", pa.string()),
        ("record_id", pa.string()),
        ("stratum", pa.string()),
        ("strand", pa.string()),
        ("division", pa.string()),
        ("inclusion_probability", pa.float64()),
        ("weight", pa.float64()),
        ("design", pa.string()),
        ("seed", pa.int64()),
    ]
)
DESIGN_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("design", pa.string()),
        ("params", pa.string()),
        ("strata", pa.string()),
        ("frame_size", pa.int64()),
        ("sample_size", pa.int64()),
        ("drawn_at", pa.string()),
    ]
)


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


def sampling_frame(project, design: SampleDesign) -> pd.DataFrame:
    """The records a design draws from, in a fixed order, with strand, division and size.

    Columns: record_type, record_id, strand, division, has_crime, size (pps only).
    """
    eng, codes = project.engine, project.codes
    start, end = _period(project, design)
    crimes = eng.table("crimes")
    offence_strand = {c: o.strand for c, o in codes.offences.items()}
    if design.frame == "cancellations":
        when = crimes.cancelled_at.fill_null(crimes.recorded_at)
        t = crimes.filter((crimes.status == "cancelled") & _in_period(when, start, end))
        df = eng.to_pandas(t.select("crime_id", "offence_code", "division"))
        frame = pd.DataFrame(
            {
                "record_type": "crime",
                "record_id": df.crime_id.astype(str),
                "strand": df.offence_code.map(offence_strand).fillna("other"),
                "division": df.division,
                "has_crime": True,
            }
        )
    else:
        inc = eng.table("incidents")
        inc = inc.filter(_in_period(inc.reported_at, start, end))
        linked = crimes.filter(crimes.incident_id.notnull()).select("incident_id").distinct()
        linked = linked.mutate(has_crime=ibis.literal(True))
        cols = ["incident_id", "call_type", "division"]
        size_col = design.size_column if design.kind == "pps" else None
        if size_col and size_col != CALL_TYPE_PRIORITY and "." not in size_col:
            if size_col not in inc.columns:
                raise AuditError(f"incidents have no column {size_col!r} for the pps size")
            cols.append(size_col)
        t = inc.select(*cols).left_join(linked, "incident_id").select(
            *cols, has_crime=ibis._.has_crime.fill_null(False)
        )
        df = eng.to_pandas(t)
        frame = pd.DataFrame(
            {
                "record_type": "incident",
                "record_id": df.incident_id.astype(str),
                "strand": df.call_type.map(CALL_TYPE_STRANDS).fillna("other"),
                "division": df.division,
                "has_crime": df.has_crime.astype(bool),
            }
        )
        if size_col == CALL_TYPE_PRIORITY:
            usual = {
                k for k, v in project.codes.incident_types.items()
                if str(v.get("usually_crime", "")).lower() == "true"
            }
            frame["size"] = np.where(df.call_type.isin(usual), 4.0, 1.0)
        elif size_col and "." in size_col:
            frame["size"] = _size_from_table(project, size_col, frame.record_id)
        elif size_col:
            frame["size"] = pd.to_numeric(df[size_col], errors="coerce").to_numpy()
        when = crimes.reported_at.fill_null(crimes.recorded_at)
        orphan = crimes.filter(crimes.incident_id.isnull() & _in_period(when, start, end))
        odf = eng.to_pandas(orphan.select("crime_id", "offence_code", "division"))
        if len(odf):
            extra = pd.DataFrame(
                {
                    "record_type": "crime",
                    "record_id": odf.crime_id.astype(str),
                    "strand": odf.offence_code.map(offence_strand).fillna("other"),
                    "division": odf.division,
                    "has_crime": True,
                }
            )
            if size_col:
                # A crime without an incident is a crime: give it the largest size in the frame.
                extra["size"] = float(np.nanmax(frame["size"])) if len(frame) else 1.0
            frame = pd.concat([frame, extra], ignore_index=True)
    frame["division"] = frame["division"].fillna("unknown").astype(str)
    frame = frame.sort_values(["record_type", "record_id"], kind="stable").reset_index(drop=True)
    if frame.record_id.duplicated().any():
        dup = frame.record_id[frame.record_id.duplicated()].iloc[0]
        raise AuditError(f"record {dup!r} appears twice in the sampling frame")
    return frame


def _size_from_table(project, spec: str, ids: pd.Series) -> np.ndarray:
    table, column = spec.split(".", 1)
    t = project.engine.table(table)
    if "incident_id" not in t.columns or column not in t.columns:
        raise AuditError(f"table {table!r} needs columns incident_id and {column!r}")
    sizes = project.engine.to_pandas(t.select("incident_id", column))
    lookup = dict(zip(sizes.incident_id.astype(str), sizes[column], strict=False))
    return pd.to_numeric(ids.map(lookup), errors="coerce").to_numpy()


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


def _strata(frame: pd.DataFrame, by: tuple[str, ...]) -> pd.Series:
    if not by:
        return pd.Series("all", index=frame.index)
    out = frame[by[0]].astype(str)
    for col in by[1:]:
        out = out + "|" + frame[col].astype(str)
    return out


@project_verb
def draw_sample(project, design: SampleDesign | None = None, *, progress: Progress | None = None,
                **params: Any) -> Sample:
    """Draw ``design`` (or ``SampleDesign(**params)``) and store it in the project.

    The same design and seed over the same frame always give the same sample (and the same
    ``sample_id``); drawing it again replaces the stored rows with identical ones.
    """
    design = design or SampleDesign(**params)
    prog = resolve(progress)
    with prog.task("Building the sampling frame", total=None):
        frame = sampling_frame(project, design)
    if frame.empty:
        raise AuditError("the sampling frame is empty: no records in the audit period")
    rng = np.random.default_rng(design.seed)
    N = len(frame)
    if design.kind == "srs":
        if design.size > N:
            raise AuditError(f"sample size {design.size} is larger than the frame ({N} records)")
        idx = np.sort(rng.choice(N, size=design.size, replace=False))
        frame["stratum"] = "all"
        pi = np.full(N, design.size / N)
        population, alloc = {"all": N}, {"all": design.size}
    elif design.kind == "stratified":
        frame["stratum"] = _strata(frame, design.strata_by)
        population = frame.stratum.value_counts().sort_index().to_dict()
        scores = None
        if design.allocation == "neyman":
            scores = _neyman_scores(frame, design.expected_rate)
        alloc = allocate(population, design.size, scores, design.min_per_stratum)
        parts, pi = [], np.zeros(N)
        for h in sorted(population):
            members = np.flatnonzero(frame.stratum.to_numpy() == h)
            if alloc[h]:
                parts.append(np.sort(rng.choice(members, size=alloc[h], replace=False)))
            pi[members] = alloc[h] / population[h]
        idx = np.sort(np.concatenate(parts)) if parts else np.array([], dtype=int)
    else:
        frame["stratum"] = "all"
        pi = pps_probabilities(frame["size"].to_numpy(), design.size)
        idx = np.flatnonzero(rng.random(N) < pi)
        population, alloc = {"all": N}, {"all": len(idx)}
    chosen = frame.iloc[idx]
    sid = sample_id_for(design, N)
    records = pd.DataFrame(
        {
            "sample_id": sid,
            "record_type": chosen.record_type.to_numpy(),
            "record_id": chosen.record_id.to_numpy(),
            "stratum": chosen.stratum.to_numpy(),
            "strand": chosen.strand.to_numpy(),
            "division": chosen.division.to_numpy(),
            "inclusion_probability": pi[idx],
            "weight": 1 / pi[idx],
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


def _neyman_scores(frame: pd.DataFrame, p0: float) -> dict[str, float]:
    # Residual s.d. of the ratio's linearised variable in stratum h is about
    # sqrt(c_h * p(1-p)), c_h = share of records disclosing a crime. The recorded share
    # (has_crime) is c_h * p, so c_h ~ has_crime_h / p0. A floor keeps every stratum sampled.
    share = frame.groupby("stratum").has_crime.mean()
    c = np.clip(share / p0, 0.01, 1.0)
    return {h: float(np.sqrt(v * p0 * (1 - p0))) for h, v in c.items()}


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
    (folder / f"sample-{sample.sample_id}.json").write_text(
        json.dumps({"sample_id": sample.sample_id, "design": sample.design.to_dict(),
                    "population": sample.population, "allocation": sample.allocation,
                    "frame_size": sample.frame_size}, indent=2, sort_keys=True),
        encoding="utf-8",
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
