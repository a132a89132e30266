"""Linkage of crimes to the incidents they came from.

1. **Exact**: ``crimes.incident_id`` and the crime references noted on incidents
   (``incidents.crime_refs``), kept where both records exist.
2. **Probabilistic** (Splink, DuckDB): crimes left without a link are compared with incidents
   left without one, blocked on the report hour and division, or the victim on the same day,
   and scored on time proximity, victim, place (text and distance) and whether the
   offence fits the call type. Each crime takes its best incident above ``threshold``; m and u
   are estimated by EM and random sampling, so no labels are needed.

Table ``links``: incident_id, crime_id, match_probability, method ('exact'|'probabilistic').
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, dataclass

import duckdb
import pyarrow as pa

from crimeaudit.linkage.errors import LinkError
from crimeaudit.progress import Progress
from crimeaudit.store.project import project_verb

LINKS_TABLE = "links"
LINKS_SCHEMA = pa.schema([
    ("incident_id", pa.string()), ("crime_id", pa.string()),
    ("match_probability", pa.float64()), ("method", pa.string()),
])

#: Which offence strand a call type usually leads to (a comparison level, not a filter).
CALL_FAMILY = {
    "ASSAULT": "violence", "DOMESTIC": "violence", "THREATS": "violence",
    "SEXUAL": "sexual", "ROBBERY": "robbery", "BURGLARY": "burglary", "THEFT": "theft",
    "VEHICLE": "theft", "DAMAGE": "criminal_damage",
}
STRAND_FAMILY = {"rape": "sexual"}


@dataclass
class LinkSettings:
    """Thresholds and options for linkage (project or CLI settings)."""

    threshold: float = 0.9
    probabilistic: bool = True
    em_record_sample: float = 0.2
    seed: int = 1


def _exact(project):
    eng = project.engine
    inc = eng.table("incidents")
    cr = eng.table("crimes")
    ids = inc.select("incident_id")
    by_crime = cr.filter(cr.incident_id.notnull()).select("incident_id", "crime_id")
    by_crime = by_crime.filter(by_crime.incident_id.isin(ids.incident_id))
    refs = inc.filter(inc.crime_refs.notnull() & (inc.crime_refs != ""))
    refs = refs.select("incident_id", crime_id=refs.crime_refs.split(";").unnest().strip())
    refs = refs.filter(refs.crime_id.isin(cr.crime_id))
    # Casts drop NOT NULL so the two schemas agree for the union.
    by_crime = by_crime.select(incident_id=by_crime.incident_id.cast("string"),
                               crime_id=by_crime.crime_id.cast("string"))
    refs = refs.select(incident_id=refs.incident_id.cast("string"),
                       crime_id=refs.crime_id.cast("string"))
    pairs = by_crime.union(refs, distinct=True)
    return eng.to_pyarrow(pairs.order_by(["crime_id", "incident_id"]))


def _arrow(relation) -> pa.Table:
    """A DuckDB relation as a materialised Arrow table (read before the connection closes)."""
    out = relation.arrow()
    return out.read_all() if isinstance(out, pa.RecordBatchReader) else out


def _buckets(ts: str) -> str:
    """SQL for the blocking keys of a timestamp: its date, its hour and its half-hour-shifted hour.

    Two hour buckets, one shifted by half an hour, mean any two reports less than 30 minutes
    apart share at least one bucket, without comparing every pair on the same day.
    """
    epoch = f"epoch({ts})"
    return (f" CAST({ts} AS DATE)::VARCHAR AS report_date,"
            f" CAST(floor({epoch} / 3600) AS BIGINT) AS report_hour,"
            f" CAST(floor(({epoch} + 1800) / 3600) AS BIGINT) AS report_hour_shifted,")


def _family_sql(col: str, mapping: dict[str, str], default: str) -> str:
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"CASE {col} {cases} ELSE {default} END"


def _probabilistic(project, exact: pa.Table, settings: LinkSettings, progress: Progress):
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    eng = project.engine
    codes = project.codes
    con = duckdb.connect()
    con.register("exact_pairs", exact)
    strands = pa.table({"offence_code": list(codes.offences),
                        "strand": [STRAND_FAMILY.get(o.strand, o.strand)
                                   for o in codes.offences.values()]})
    con.register("strands", strands)
    cr = eng.table("crimes").select("crime_id", "reported_at", "recorded_at", "offence_code",
                                    "victim", "location", "latitude", "longitude", "division")
    inc = eng.table("incidents").select("incident_id", "reported_at", "call_type", "victim",
                                        "location", "latitude", "longitude", "division")
    con.register("crimes_in", eng.to_pyarrow(cr))
    con.register("incidents_in", eng.to_pyarrow(inc))
    left = _arrow(con.sql(
        "SELECT 'c' || crime_id AS unique_id, crime_id AS record_id,"
        " coalesce(c.reported_at, c.recorded_at) AS reported_at,"
        + _buckets("coalesce(c.reported_at, c.recorded_at)") +
        " victim, location, latitude, longitude, division,"
        " coalesce(s.strand, 'other') AS family"
        " FROM crimes_in c LEFT JOIN strands s USING (offence_code)"
        " WHERE crime_id NOT IN (SELECT crime_id FROM exact_pairs)"))
    right = _arrow(con.sql(
        "SELECT 'i' || incident_id AS unique_id, incident_id AS record_id, reported_at,"
        + _buckets("reported_at") +
        " victim, location, latitude, longitude, division, "
        + _family_sql("call_type", CALL_FAMILY, "'other'") + " AS family"
        " FROM incidents_in WHERE incident_id NOT IN (SELECT incident_id FROM exact_pairs)"))
    con.close()
    if left.num_rows == 0 or right.num_rows == 0:
        return LINKS_SCHEMA.empty_table()
    db = DuckDBAPI()
    sdf_l = db.register(left, table_name="crimes_unlinked")
    sdf_r = db.register(right, table_name="incidents_unlinked")
    spec = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.AbsoluteTimeDifferenceAtThresholds(
                "reported_at", input_is_string=False,
                metrics=["minute", "minute", "hour", "day"], thresholds=[1, 30, 6, 3]),
            cl.ExactMatch("victim"),
            cl.ExactMatch("location"),
            cl.DistanceInKMAtThresholds("latitude", "longitude", km_thresholds=[0.05, 0.5, 3]),
            cl.ExactMatch("family"),
        ],
        blocking_rules_to_generate_predictions=[
            # Same hour and division (two offset hour grids, so no pair under 30 minutes apart
            # is missed), or the same victim on the same day. The victim alone is not a
            # block: a repeat caller would pair every report with every crime.
            block_on("report_hour", "division"), block_on("report_hour_shifted", "division"),
            block_on("victim", "report_date"),
        ],
        probability_two_random_records_match=1.0 / max(right.num_rows, 1),
        retain_matching_columns=False,
    )
    linker = Linker([sdf_l, sdf_r], spec, log_level=logging.ERROR)
    with progress.task("Training the linkage model", total=3) as advance:
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=settings.seed)
        advance(1)
        # EM needs blocks where true matches are common: on a block as loose as hour and
        # division it settles on "same hour" as the match class (m for the victim near 0).
        # Each session trains the comparisons its rule does not fix, so the two cover all.
        for rule in (block_on("location", "report_hour"), block_on("victim", "report_date")):
            # EM on a small force can drive an m probability to 0, which Splink refuses;
            # the other rule's estimates (or Splink's defaults) then stand.
            with contextlib.suppress(ValueError):
                linker.training.estimate_parameters_using_expectation_maximisation(
                    rule, record_sample_proportion=settings.em_record_sample)
            advance(1)
    with progress.task("Scoring candidate pairs"):
        pred = linker.inference.predict(threshold_match_probability=settings.threshold)
        table = pred.as_pyarrow_table() if hasattr(pred, "as_pyarrow_table") else None
        if table is None:
            table = pa.Table.from_pandas(pred.as_pandas_dataframe())
    con = duckdb.connect()
    con.register("pred", table)
    # Each crime takes its single best incident (ties broken by id, so runs are repeatable).
    best = _arrow(con.sql(
        "SELECT incident_id, crime_id, match_probability, 'probabilistic' AS method FROM ("
        " SELECT substr(CASE WHEN unique_id_l LIKE 'i%' THEN unique_id_l ELSE unique_id_r END, 2)"
        "   AS incident_id,"
        " substr(CASE WHEN unique_id_l LIKE 'c%' THEN unique_id_l ELSE unique_id_r END, 2)"
        "   AS crime_id, match_probability,"
        " row_number() OVER (PARTITION BY CASE WHEN unique_id_l LIKE 'c%' THEN unique_id_l"
        "   ELSE unique_id_r END ORDER BY match_probability DESC, unique_id_l, unique_id_r) AS k"
        " FROM pred) WHERE k = 1 ORDER BY crime_id"))
    con.close()
    return best.cast(LINKS_SCHEMA)


@project_verb
def link(project, settings: LinkSettings | None = None, progress: Progress | None = None) -> dict:
    """Link crimes to incidents and write table ``links``; returns counts (and quality)."""
    settings = settings or LinkSettings()
    if not 0 < settings.threshold < 1:
        raise LinkError(f"the match threshold must be between 0 and 1, not {settings.threshold}")
    progress = progress or Progress()
    eng = project.engine
    for name in ("incidents", "crimes"):
        if not eng.has_table(name):
            raise LinkError(f"table {name!r} is missing: ingest the force's data first")
    with progress.task("Exact links on references"):
        exact = _exact(project)
    exact_links = pa.table({
        "incident_id": exact["incident_id"], "crime_id": exact["crime_id"],
        "match_probability": pa.array([1.0] * exact.num_rows, pa.float64()),
        "method": pa.array(["exact"] * exact.num_rows, pa.string())}, schema=LINKS_SCHEMA)
    parts = [exact_links]
    if settings.probabilistic:
        parts.append(_probabilistic(project, exact, settings, progress))
    links = pa.concat_tables(parts)
    eng.write(LINKS_TABLE, links)
    counts = {"exact": exact_links.num_rows, "probabilistic": links.num_rows - exact.num_rows,
              "crimes": eng.count("crimes")}
    quality = link_quality(project)
    if quality:
        counts.update(quality)
    project.log_run("link", ["incidents", "crimes"], counts, asdict(settings))
    return counts


def link_quality(project) -> dict | None:
    """Precision and recall of ``links`` against ``truth_crimes.true_incident_id`` (if present)."""
    eng = project.engine
    if not (eng.has_table("truth_crimes") and eng.has_table(LINKS_TABLE)):
        return None
    t = eng.table("truth_crimes")
    truth = t.filter(t.true_incident_id.notnull())
    lk = eng.table(LINKS_TABLE)
    n_links = eng.backend.execute(lk.count())
    n_truth = eng.backend.execute(truth.count())
    correct = lk.join(truth, (lk.crime_id == truth.crime_id)
                      & (lk.incident_id == truth.true_incident_id))
    tp = eng.backend.execute(correct.count())
    prob = lk.filter(lk.method == "probabilistic")
    lost = truth.filter(truth.incident_ref_lost)
    tp_prob = eng.backend.execute(prob.join(lost, (prob.crime_id == lost.crime_id)
                                            & (prob.incident_id == lost.true_incident_id)).count())
    n_prob = eng.backend.execute(prob.count())
    n_lost = eng.backend.execute(lost.count())
    return {
        "precision": tp / n_links if n_links else float("nan"),
        "recall": tp / n_truth if n_truth else float("nan"),
        "probabilistic_precision": tp_prob / n_prob if n_prob else float("nan"),
        "probabilistic_recall_on_lost_refs": tp_prob / n_lost if n_lost else float("nan"),
    }
