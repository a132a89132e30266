"""Linkage: exact references plus Splink for crimes that lost theirs."""

import pytest

from crimeaudit.link import LinkSettings, link
from crimeaudit.link.errors import LinkError
from crimeaudit.simulate import simulate
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


def test_bad_threshold_is_a_clear_error(force):
    with Project.open(force) as p, pytest.raises(LinkError, match="between 0 and 1"):
        link(p, LinkSettings(threshold=1.5))
