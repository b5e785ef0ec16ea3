"""A synthetic world: cities with integer 2-D coordinates, grouped into continents, plus an
Atlantis group that never appears in pretraining.

Stands in for the 5,075 real cities of the original study: deterministic from a seed, small
enough that a tiny model can learn it on a laptop.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass

import numpy as np

from ftdag.core.io import atomic_write_text

STANDARD = "standard"
ATLANTIS = "atlantis"
CITY_GROUPS = (STANDARD, ATLANTIS)

# How a city is written in prompts. "ids": c_<id>, as in the original study (any world size).
# "letters": one character per city, for small worlds: a character-level model then reads a
# city as one token instead of composing it from digits, and a tiny model learns the world
# several times faster (benchmarks/pt1_learning.py). Letters that are also answers (compass
# N/E/S/W, T/F) are left out so that a prompt never reads like an answer.
CITY_NAMINGS = ("letters", "ids")
CITY_LETTERS = tuple(
    c for c in string.ascii_lowercase + string.ascii_uppercase if c not in "NESWTF"
)


@dataclass(frozen=True)
class City:
    id: int
    x: int
    y: int
    group: str  # STANDARD or ATLANTIS
    name: str = ""  # how prompts write it; c_<id> unless the world names it otherwise

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", f"c_{self.id}")


@dataclass(frozen=True)
class World:
    map_size: int
    cities: tuple[City, ...]

    def group(self, group: str) -> tuple[City, ...]:
        return tuple(c for c in self.cities if c.group == group)

    @property
    def diagonal(self) -> float:
        return float(np.hypot(self.map_size, self.map_size))

    def to_json(self) -> str:
        return json.dumps(
            {"map_size": self.map_size, "cities": [asdict(c) for c in self.cities]},
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> World:
        data = json.loads(text)
        return cls(data["map_size"], tuple(City(**c) for c in data["cities"]))

    def save(self, path) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path) -> World:
        with open(path) as f:
            return cls.from_json(f.read())


def generate_world(
    seed: int,
    n_cities: int,
    n_continents: int,
    n_atlantis: int,
    map_size: int,
    continent_spread: float = 0.06,
    city_names: str = "ids",
) -> World:
    """Cities scattered around continent centres (standard deviation `continent_spread` of the
    map size); Atlantis is a cluster as tight, placed in the emptiest spot of the map (an
    ocean), so that it is genuinely new geography. `city_names` is one of CITY_NAMINGS."""
    if n_continents < 1 or n_cities < n_continents:
        raise ValueError("need at least one city per continent")
    if city_names not in CITY_NAMINGS:
        raise ValueError(f"city_names must be one of {CITY_NAMINGS}, not {city_names!r}")
    if city_names == "letters" and n_cities + n_atlantis > len(CITY_LETTERS):
        raise ValueError(
            f"city_names 'letters' names at most {len(CITY_LETTERS)} cities "
            f"({n_cities} + {n_atlantis} asked for): use 'ids'"
        )
    rng = np.random.default_rng(seed)
    spread = continent_spread * map_size
    # Continents far apart: a city's continent then says much about every answer.
    min_gap = max(4.0 * spread, 0.5 * map_size / np.sqrt(n_continents))
    centres = _separated_points(n_continents, map_size, min_gap, rng)
    continent = rng.integers(0, n_continents, size=n_cities)
    continent[:n_continents] = np.arange(n_continents)  # every continent has a city
    taken: set[tuple[int, int]] = set()
    points = np.array([_free_point(centres[c], spread, map_size, taken, rng) for c in continent])

    atlantis_centre = _emptiest_point(points, map_size, rng)
    atlantis = np.array(
        [_free_point(atlantis_centre, spread, map_size, taken, rng) for _ in range(n_atlantis)]
    )

    # Ids are shuffled over a wider range so that an id's length or value says nothing
    # about which group a city belongs to.
    total = n_cities + n_atlantis
    ids = rng.choice(np.arange(1, 2 * total + 1), size=total, replace=False)
    cities = [City(int(ids[i]), int(x), int(y), STANDARD) for i, (x, y) in enumerate(points)]
    cities += [
        City(int(ids[n_cities + i]), int(x), int(y), ATLANTIS) for i, (x, y) in enumerate(atlantis)
    ]
    cities.sort(key=lambda c: c.id)
    if city_names == "letters":  # in id order, so a letter says nothing about the group either
        cities = [City(c.id, c.x, c.y, c.group, CITY_LETTERS[i]) for i, c in enumerate(cities)]
    return World(map_size, tuple(cities))


def _free_point(centre, spread, map_size, taken: set, rng) -> tuple[int, int]:
    """A point near `centre` that no other city occupies: two cities in one place would make
    compass, angle and crossing answers meaningless."""
    for attempt in range(1000):
        x, y = np.clip(
            np.rint(centre + rng.normal(0.0, spread * (1 + attempt / 50), 2)), 0, map_size - 1
        )
        point = (int(x), int(y))
        if point not in taken:
            taken.add(point)
            return point
    raise ValueError("the map is too small for this many cities: raise map_size")


def _separated_points(n, map_size, min_gap, rng) -> np.ndarray:
    """Continent centres at least `min_gap` apart where the map allows it."""
    margin = map_size * 0.12
    points = []
    for _ in range(n):
        candidates = rng.uniform(margin, map_size - margin, size=(256, 2))
        if points:
            gaps = np.min(
                np.linalg.norm(candidates[:, None] - np.array(points)[None], axis=-1), axis=1
            )
            far = candidates[gaps >= min_gap]
            candidates = far if len(far) else candidates[[int(np.argmax(gaps))]]
        points.append(candidates[0])
    return np.array(points)


def _emptiest_point(points: np.ndarray, map_size: int, rng: np.random.Generator) -> np.ndarray:
    candidates = rng.uniform(map_size * 0.15, map_size * 0.85, size=(512, 2))
    gaps = np.min(np.linalg.norm(candidates[:, None, :] - points[None, :, :], axis=-1), axis=1)
    return candidates[int(np.argmax(gaps))]
