"""The simulated force's people and places: divisions, officers, victims, streets, coordinates.

>>> import numpy as np
>>> ids = pseudonyms("OFF-", np.array([7, 123]), 4)
>>> ids.to_pylist()
['OFF-0007', 'OFF-0123']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crimeaudit.simulation.scenario import Scenario

# Town centres used when a division gives none (latitude, longitude).
_TOWNS = [
    (51.7520, -1.2577), (52.6309, 1.2974), (50.8225, -0.1372), (53.8008, -1.5491),
    (52.4862, -1.8904), (51.4545, -2.5879), (54.9783, -1.6178), (53.4084, -2.9916),
]

_STREET_STEMS = (
    "High", "Station", "Church", "Mill", "Victoria", "Queens", "Kings", "Park", "London",
    "Manor", "School", "Chapel", "Albert", "Grange", "Bridge", "Castle", "Market", "North",
    "South", "West", "Orchard", "Meadow", "Elm", "Oak", "Ash", "Beech", "Cedar", "Willow",
    "Windmill", "Farm", "Green", "Hill", "Springfield", "Richmond", "Stanley", "Nelson",
    "Canterbury", "Dover", "Kent", "York", "George", "Princes", "Cromwell", "Shakespeare",
)
_STREET_KINDS = (
    "Street", "Road", "Lane", "Avenue", "Close", "Way", "Drive", "Crescent", "Gardens",
    "Terrace", "Walk", "Place",
)
STREETS_PER_DIVISION = 80


def pseudonyms(prefix: str, numbers: np.ndarray, width: int) -> pa.StringArray:
    """Zero-padded pseudonyms such as ``OFF-0007``, vectorised."""
    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width=width,
                          padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


@dataclass
class Force:
    """Lookup arrays for one scenario's force."""

    division_names: list[str]
    division_weights: np.ndarray
    officer_division: np.ndarray  # division index of each officer (global numbering)
    officer_first: np.ndarray  # first officer number in each division
    officer_count: np.ndarray
    street_names: pa.StringArray  # division-major: STREETS_PER_DIVISION per division
    street_lat: np.ndarray
    street_lon: np.ndarray

    @property
    def n_officers(self) -> int:
        return int(self.officer_count.sum())


def build_force(s: Scenario, rng: np.random.Generator) -> Force:
    names = [d.name for d in s.divisions]
    weights = np.array([d.weight for d in s.divisions], float)
    counts = np.array([d.officers for d in s.divisions], np.int64)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    officer_division = np.repeat(np.arange(len(names)), counts)
    stems = np.array([f"{a} {b}" for a in _STREET_STEMS for b in _STREET_KINDS], dtype=object)
    lat, lon, streets = [], [], []
    for i, d in enumerate(s.divisions):
        c_lat, c_lon = d.centre if d.centre is not None else _TOWNS[i % len(_TOWNS)]
        pick = rng.choice(len(stems), size=STREETS_PER_DIVISION, replace=False)
        streets.extend(f"{st}, {d.name}" for st in stems[pick])
        # Streets cluster round the centre: most within a couple of kilometres.
        lat.append(c_lat + rng.normal(0, 0.018, STREETS_PER_DIVISION))
        lon.append(c_lon + rng.normal(0, 0.028, STREETS_PER_DIVISION))
    return Force(names, weights, officer_division, first, counts, pa.array(streets, pa.string()),
                 np.concatenate(lat), np.concatenate(lon))


def draw_officers(rng: np.random.Generator, force: Force, division: np.ndarray) -> np.ndarray:
    """An attending officer for each incident, from its division (numbered from 1)."""
    u = rng.random(len(division))
    return force.officer_first[division] + (u * force.officer_count[division]).astype(np.int64)


def draw_victims(rng: np.random.Generator, n: int, distinct_share: float) -> np.ndarray:
    """Victim numbers where the same person recurs (repeat victims are common in police data)."""
    pool = max(1, int(n * distinct_share))
    # Squaring a uniform draw concentrates reports on the low numbers: a few people call often.
    return (rng.random(n) ** 1.6 * pool).astype(np.int64)


def draw_places(rng: np.random.Generator, force: Force, division: np.ndarray):
    """Street index, latitude and longitude for each incident."""
    street = division * STREETS_PER_DIVISION + rng.integers(0, STREETS_PER_DIVISION, len(division))
    lat = force.street_lat[street] + rng.normal(0, 0.0012, len(division))
    lon = force.street_lon[street] + rng.normal(0, 0.0018, len(division))
    return street, np.round(lat, 6), np.round(lon, 6)
