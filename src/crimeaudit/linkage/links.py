"""Linkage of crimes to the incidents they came from.

1. **Exact**: ``crimes.incident_id`` and the crime references noted on incidents
   (``incidents.crime_refs``), kept where both records exist.
2. **Probabilistic** (Splink, on the project's engine): crimes left without a link are
   compared with incidents left without one, blocked on the report hour and division, or the
   victim on the same day, and scored on time proximity, victim, place (text and distance) and
   whether the offence fits the call type (both mapped to a strand "family" by the code
   lists). Each crime takes its best incident above ``threshold``; m and u are estimated by
   EM and random sampling, so no labels are needed.

Table ``links``: incident_id, crime_id, match_probability, method ('exact'|'probabilistic').
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import asdict, dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from crimeaudit.engine import WORK_MEMORY
from crimeaudit.linkage.errors import LinkError
from crimeaudit.linkage.pairs import LINKS_SCHEMA, LINKS_TABLE, exact_pairs, store_state
from crimeaudit.model.codes import CodeLists
from crimeaudit.model.schema import LINK_RUNS
from crimeaudit.progress import Progress
from crimeaudit.store.project import project_verb


@dataclass
class LinkSettings:
    """Thresholds and options for linkage (project or CLI settings)."""

    threshold: float = 0.9
    probabilistic: bool = True
    em_record_sample: float = 0.2
    seed: int = 1


def _exact(project) -> pa.Table:
    """The exact pass (:func:`crimeaudit.linkage.pairs.exact_pairs`), in a repeatable order."""
    pairs = exact_pairs(project).select("incident_id", "crime_id")
    return project.engine.to_pyarrow(pairs.order_by(["crime_id", "incident_id"]))


def _family(codes: CodeLists, strand: str) -> str:
    """The broad strand an offence falls in: the top-level strand below ``all`` (rape is in
    sexual), so a crime and the call that reported it compare on the same footing."""
    ancestry = [s for s in codes.ancestry(strand) if s != "all"]
    return ancestry[-1] if ancestry else "other"


def _buckets(ts: ir.TimestampValue) -> dict[str, ir.Value]:
    """The blocking keys of a timestamp: its date, its hour and its half-hour-shifted hour.

    Two hour buckets, one shifted by half an hour, mean any two reports less than 30 minutes
    apart share at least one bucket, without comparing every pair on the same day.
    """
    epoch = ts.epoch_seconds()
    return {"report_date": ts.date().cast("string"),
            "report_hour": (epoch / 3600).floor().cast("int64"),
            "report_hour_shifted": ((epoch + 1800) / 3600).floor().cast("int64")}


def _splink_inputs(project, exact: pa.Table) -> tuple[ir.Table, ir.Table]:
    """The crimes and the incidents without an exact link, as Splink compares them (Ibis
    expressions on the project's engine: nothing is read into Python)."""
    eng = project.engine
    codes = project.codes
    pairs = eng.memtable(exact)
    families = {code: _family(codes, o.strand) for code, o in codes.offences.items()}
    cr = eng.table("crimes")
    cr = cr.filter(~cr.crime_id.isin(pairs.crime_id))
    when = ibis.coalesce(cr.reported_at, cr.recorded_at)
    left = cr.select(unique_id="c" + cr.crime_id, record_id=cr.crime_id, reported_at=when,
                     **_buckets(when), victim=cr.victim, location=cr.location,
                     latitude=cr.latitude, longitude=cr.longitude, division=cr.division,
                     family=cr.offence_code.substitute(families, else_="other"))
    inc = eng.table("incidents")
    inc = inc.filter(~inc.incident_id.isin(pairs.incident_id))
    right = inc.select(unique_id="i" + inc.incident_id, record_id=inc.incident_id,
                       reported_at=inc.reported_at, **_buckets(inc.reported_at),
                       victim=inc.victim, location=inc.location, latitude=inc.latitude,
                       longitude=inc.longitude, division=inc.division,
                       family=inc.call_type.substitute(codes.call_type_strands, else_="other"))
    return left, right


def _best_per_crime(eng, pred: pa.Table) -> pa.Table:
    """Each crime's single best incident (ties broken by id, so runs are repeatable)."""
    p = eng.memtable(pred)
    crime_l = p.unique_id_l.startswith("c")
    crime_key = ibis.ifelse(crime_l, p.unique_id_l, p.unique_id_r)
    incident_key = ibis.ifelse(p.unique_id_l.startswith("i"), p.unique_id_l, p.unique_id_r)
    rank = ibis.row_number().over(group_by=crime_key, order_by=[
        ibis.desc(p.match_probability), p.unique_id_l, p.unique_id_r])
    ranked = p.select(incident_id=incident_key.substr(1), crime_id=crime_key.substr(1),
                      match_probability=p.match_probability,
                      method=ibis.literal("probabilistic"), k=rank)
    best = ranked.filter(ranked.k == 0).drop("k").order_by("crime_id")
    return eng.to_pyarrow(best)


def _probabilistic(project, exact: pa.Table, settings: LinkSettings, progress: Progress):
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.internals.exceptions import EMTrainingException

    eng = project.engine
    left, right = _splink_inputs(project, exact)
    with eng.splink_api() as db:
        sdf_l, n_left = eng.splink_input(db, "crimes_unlinked", left)
        sdf_r, n_right = eng.splink_input(db, "incidents_unlinked", right)
        if n_left == 0 or n_right == 0:
            return LINKS_SCHEMA.empty_table()
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
                # Same hour and division (two offset hour grids, so no pair under 30 minutes
                # apart is missed), or the same victim on the same day. The victim alone is not
                # a block: a repeat caller would pair every report with every crime.
                block_on("report_hour", "division"), block_on("report_hour_shifted", "division"),
                block_on("victim", "report_date"),
            ],
            probability_two_random_records_match=1.0 / max(n_right, 1),
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
                # EM on a small force can drive an m probability to 0, which Splink refuses,
                # and a rule finds no pairs where the export has no such column (a force's own
                # crime extract without locations): the other rule's estimates (or Splink's
                # defaults) then stand.
                with contextlib.suppress(ValueError, EMTrainingException):
                    linker.training.estimate_parameters_using_expectation_maximisation(
                        rule, record_sample_proportion=settings.em_record_sample)
                advance(1)
        with progress.task("Scoring candidate pairs"):
            pred = linker.inference.predict(threshold_match_probability=settings.threshold)
            # Only the pairs above the threshold come out: a few per unlinked crime at most.
            table = pred.as_pyarrow_table()
    return _best_per_crime(eng, table.select(["unique_id_l", "unique_id_r",
                                              "match_probability"])).cast(LINKS_SCHEMA)


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
    # Under the engine's working memory, as ingest: beyond it the engine spills (linkage took
    # 17.5 GB on a national year of 20M incidents without a cap).
    with eng.memory_cap(WORK_MEMORY), progress.task("Exact links on references"):
        exact = _exact(project)
    exact_links = pa.table({
        "incident_id": exact["incident_id"], "crime_id": exact["crime_id"],
        "match_probability": pa.array([1.0] * exact.num_rows, pa.float64()),
        "method": pa.array(["exact"] * exact.num_rows, pa.string())}, schema=LINKS_SCHEMA)
    parts = [exact_links]
    if settings.probabilistic:
        with eng.memory_cap(WORK_MEMORY):
            parts.append(_probabilistic(project, exact, settings, progress))
    links = pa.concat_tables(parts)
    state = store_state(project)
    run = pa.table({"linked_at": [dt.datetime.now(dt.UTC).isoformat(timespec="seconds")],
                    **{k: [v] for k, v in state.items()},
                    "threshold": [float(settings.threshold)],
                    "exact": [exact_links.num_rows],
                    "probabilistic": [links.num_rows - exact_links.num_rows]},
                   schema=LINK_RUNS.arrow_schema())
    with eng.transaction():
        eng.write(LINKS_TABLE, links)
        eng.write(LINK_RUNS.name, run)
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
    n_links = eng.execute(lk.count())
    n_truth = eng.execute(truth.count())
    correct = lk.join(truth, (lk.crime_id == truth.crime_id)
                      & (lk.incident_id == truth.true_incident_id))
    tp = eng.execute(correct.count())
    prob = lk.filter(lk.method == "probabilistic")
    lost = truth.filter(truth.incident_ref_lost)
    tp_prob = eng.execute(prob.join(lost, (prob.crime_id == lost.crime_id)
                                            & (prob.incident_id == lost.true_incident_id)).count())
    n_prob = eng.execute(prob.count())
    n_lost = eng.execute(lost.count())
    return {
        "precision": tp / n_links if n_links else float("nan"),
        "recall": tp / n_truth if n_truth else float("nan"),
        "probabilistic_precision": tp_prob / n_prob if n_prob else float("nan"),
        "probabilistic_recall_on_lost_refs": tp_prob / n_lost if n_lost else float("nan"),
    }
