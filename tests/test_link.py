"""Linkage: exact references plus Splink for crimes that lost theirs."""

import pytest

from crimeaudit.linkage import LinkSettings, link
from crimeaudit.linkage.errors import LinkError
from crimeaudit.simulation import simulate
from crimeaudit.store.project import Project


@pytest.fixture(scope="module")
def force(tmp_path_factory):
    d = tmp_path_factory.mktemp("link")
    Project.init(d)
    with Project.open(d) as p:
        for name, t in simulate("kent-2013", seed=5, n_incidents=8000).tables.items():
            p.engine.write(name, t)
    return d


def test_probabilistic_links_recover_lost_references(force):
    with Project.open(force) as p:
        exact = link(p, LinkSettings(probabilistic=False))
        full = link(p)
        links = p.engine.to_pandas(p.engine.table("links"))
    assert full["probabilistic"] > 0
    assert full["recall"] > exact["recall"]
    assert full["precision"] >= 0.98 and full["recall"] >= 0.95
    assert set(links.method) == {"exact", "probabilistic"}
    assert not links.crime_id.duplicated().any()
    assert links.match_probability.between(0.9, 1).all()


def test_splinks_working_tables_leave_no_file_and_a_stale_one_is_replaced(force):
    """Splink works in a scratch database file beside the store (so a national year's tables
    can spill under the memory cap); it is gone after the link, and one a killed link left
    behind (here: garbage) does not stop the next."""
    scratch = force / "store.duckdb.splink"
    scratch.write_bytes(b"not a database: left by a killed link")
    with Project.open(force) as p:
        before = set(p.engine.list_tables())
        counts = link(p)
        assert set(p.engine.list_tables()) - before <= {"links", "link_runs"}
    assert counts["probabilistic"] > 0
    assert not scratch.exists() and not (force / "store.duckdb.splink.wal").exists()


def test_bad_threshold_is_a_clear_error(force):
    with Project.open(force) as p, pytest.raises(LinkError, match="between 0 and 1"):
        link(p, LinkSettings(threshold=1.5))


def test_a_crime_keyed_in_minutes_after_the_call_still_finds_its_incident(tmp_path):
    """Blocking on the report hour must not lose pairs that straddle an hour boundary."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sim = simulate("kent-2013", seed=9, n_incidents=6000).tables
    crimes, truth = sim["crimes"], sim["truth_crimes"]
    lost = pc.is_in(crimes["crime_id"],
                    truth.filter(truth["incident_ref_lost"])["crime_id"])
    # Lost-reference crimes are dated 20 minutes after their call: many cross into the next hour.
    later = pc.add(crimes["reported_at"], pa.scalar(20 * 60 * 10**6, pa.duration("us")))
    shifted = pc.if_else(lost, later.cast(crimes.schema.field("reported_at").type),
                         crimes["reported_at"])
    sim = {**sim, "crimes": crimes.set_column(crimes.schema.get_field_index("reported_at"),
                                              "reported_at", shifted)}
    Project.init(tmp_path)
    with Project.open(tmp_path) as p:
        for name, t in sim.items():
            p.engine.write(name, t)
        counts = link(p)
    assert counts["probabilistic_recall_on_lost_refs"] >= 0.95
    assert counts["precision"] >= 0.98


def test_an_export_without_locations_still_links(tmp_path):
    """A force's own crime extract often has no location: the probabilistic pass trains on
    what there is (victim and day) instead of failing, and still finds lost references."""
    import pyarrow as pa

    tables = simulate("kent-2013", seed=5, n_incidents=8000).tables
    crimes = tables["crimes"]
    for col in ("location", "latitude", "longitude"):
        i = crimes.schema.get_field_index(col)
        crimes = crimes.set_column(i, col, pa.nulls(len(crimes), crimes.schema.field(col).type))
    tables["crimes"] = crimes
    with Project.init(tmp_path / "p") as p:
        for name, t in tables.items():
            p.engine.write(name, t)
        counts = link(p)
    assert counts["exact"] > 0 and counts["probabilistic"] > 0
    assert counts["precision"] >= 0.9
