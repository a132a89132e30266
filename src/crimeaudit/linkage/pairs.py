"""The one definition of "linked": which crime records came from which incident.

Every stage that asks whether an incident has a crime record, or which crimes an incident led
to, reads :func:`linked_pairs`: the sampling frame, the review sheets, the findings lists, the
PPI++ population and the report. A crime linked to an incident folds into that incident's
record; only crimes with no link at all are "crimes without an incident".

The pairs are the link stage's table ``links`` (exact references, then Splink's probabilistic
links) when ``crimeaudit link`` has run and nothing has been ingested since (``link_runs``
records the state it linked). Otherwise the exact pass runs on the current tables, with the
stored probabilistic links kept for crimes that still have no exact link: nothing requires
Splink to run first, and a later ingest's references count at once.

Columns: ``incident_id``, ``crime_id``, ``match_probability`` (1 for exact), ``method``
(``exact`` or ``probabilistic``).

>>> import types, pyarrow as pa
>>> from crimeaudit.engine import Engine
>>> p = types.SimpleNamespace(engine=Engine.duckdb())
>>> p.engine.write("incidents", pa.table({"incident_id": ["i1", "i2"],
...                                        "crime_refs": [None, "c2"]}))
>>> p.engine.write("crimes", pa.table({"crime_id": ["c1", "c2", "c3"],
...                                     "incident_id": ["i1", None, None]}))
>>> pairs = p.engine.to_pandas(linked_pairs(p).order_by("crime_id"))
>>> pairs[["incident_id", "crime_id", "method"]].values.tolist()
[['i1', 'c1', 'exact'], ['i2', 'c2', 'exact']]
>>> link_counts(p)
{'crimes': 3, 'exact': 2, 'probabilistic': 0, 'without_incident': 1}
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from crimeaudit.model.schema import LINK_RUNS, LINKS

LINKS_TABLE = LINKS.name
LINKS_SCHEMA = LINKS.arrow_schema()


def exact_pairs(project) -> ir.Table:
    """Pairs from references: ``crimes.incident_id`` and ``incidents.crime_refs`` (``;``-separated),
    kept where both records exist. An Ibis expression, evaluated in the engine."""
    eng = project.engine
    inc, cr = eng.table("incidents"), eng.table("crimes")
    by_crime = cr.filter(cr.incident_id.notnull()).select("incident_id", "crime_id")
    by_crime = by_crime.filter(by_crime.incident_id.isin(inc.incident_id))
    refs = inc.filter(inc.crime_refs.notnull() & (inc.crime_refs != ""))
    # Unnest first, then strip: Spark refuses a generator nested inside another expression.
    refs = refs.select("incident_id", ref=refs.crime_refs.split(";").unnest())
    refs = refs.select("incident_id", crime_id=refs.ref.strip())
    refs = refs.filter(refs.crime_id.isin(cr.crime_id))
    # Casts drop NOT NULL so the two schemas agree for the union.
    cast = {"incident_id": "string", "crime_id": "string"}
    pairs = by_crime.cast(cast).union(refs.cast(cast), distinct=True)
    return pairs.mutate(match_probability=ibis.literal(1.0, "float64"),
                        method=ibis.literal("exact", "string"))


def store_state(project) -> dict[str, int]:
    """What the link stage linked: row counts of incidents, crimes and ingested files (cheap,
    and changed by every ingest)."""
    eng = project.engine
    return {name: eng.count(table) if eng.has_table(table) else 0
            for name, table in (("incidents", "incidents"), ("crimes", "crimes"),
                                ("ingest_files", "ingest_files"))}


def links_are_current(project) -> bool:
    """Whether ``links`` was made from the tables as they are now (see :func:`store_state`)."""
    eng = project.engine
    if not (eng.has_table(LINKS_TABLE) and eng.has_table(LINK_RUNS.name)):
        return False
    runs = eng.to_pandas(eng.table(LINK_RUNS.name))
    if len(runs) != 1:
        return False
    last = runs.iloc[0]
    return all(int(last[k]) == v for k, v in store_state(project).items())


def linked_pairs(project) -> ir.Table:
    """Every incident-crime pair: the exact pass plus stored probabilistic links for crimes
    that have no exact one. An Ibis expression over the store (nothing is pulled into Python)."""
    eng = project.engine
    cols = ["incident_id", "crime_id", "match_probability", "method"]
    if links_are_current(project):
        return eng.table(LINKS_TABLE).select(*cols)
    exact = exact_pairs(project)
    if not eng.has_table(LINKS_TABLE):
        return exact
    links = eng.table(LINKS_TABLE)
    prob = links.filter((links.method == "probabilistic")
                        & ~links.crime_id.isin(exact.crime_id)
                        & links.incident_id.isin(eng.table("incidents").incident_id)
                        & links.crime_id.isin(eng.table("crimes").crime_id))
    return exact.select(*cols).union(prob.select(*cols).cast(
        {"incident_id": "string", "crime_id": "string", "match_probability": "float64",
         "method": "string"}))


def link_counts(project) -> dict[str, int]:
    """How crimes are linked: exact, probabilistic, and without an incident (for reports).

    A crime counts once, under its best link (exact before probabilistic).
    """
    eng = project.engine
    pairs = linked_pairs(project)
    crimes = eng.table("crimes")
    by = pairs.group_by("crime_id").aggregate(
        exact=(pairs.method == "exact").any())
    agg = by.aggregate(linked=by.count(), exact=by.exact.sum())
    row = eng.to_pandas(agg).iloc[0]
    linked, exact = int(row.linked), int(row.exact or 0)
    total = int(crimes.count().execute())
    return {"crimes": total, "exact": exact, "probabilistic": linked - exact,
            "without_incident": total - linked}
