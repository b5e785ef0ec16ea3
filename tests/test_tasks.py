"""The seven world-map tasks: geometry checked against answers worked out by hand, the text
format, the parser, the metric, the pair numbering and the sampler."""

import itertools
import math

import numpy as np
import pytest

from ftdag.exp3.tasks import (
    ABS_ERROR,
    ACCURACY,
    PAIRS,
    TASK_NAMES,
    TASKS,
    angle,
    city_names_of_prompt,
    compass,
    distance,
    inside_hull,
    max_error,
    perimeter,
    sample_example,
    sample_examples,
    segments_cross,
    task_of_prompt,
    triangle_area,
)
from ftdag.exp3.world import ATLANTIS, STANDARD, City, World, generate_world


def city(x, y, id_=1, group=STANDARD):
    return City(id_, x, y, group)


def cities(*points):
    """Cities with ids 1, 2, ... at the given points."""
    return [City(i + 1, x, y, STANDARD) for i, (x, y) in enumerate(points)]


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=0, n_cities=60, n_continents=4, n_atlantis=8, map_size=100)


# --- geometry, by hand --------------------------------------------------------------------


def test_task_names_in_the_canonical_order():
    # FTWB1-k trains the k-th task of this list (DESIGN.md table order).
    assert TASK_NAMES == (
        "distance",
        "trianglearea",
        "angle",
        "compass",
        "inside",
        "perimeter",
        "crossing",
    )


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0), (3, 4), 5),
        ((3, 4), (0, 0), 5),
        ((10, 10), (16, 18), 10),  # 6-8-10
        ((0, 0), (0, 0), 0),
        ((0, 0), (1, 1), 1),  # 1.414 rounds down
        ((0, 0), (2, 3), 4),  # 3.606 rounds up
        ((0, 0), (0, 7), 7),
    ],
)
def test_distance(a, b, expected):
    assert distance(*cities(a, b)) == expected
    assert TASKS["distance"].answer(cities(a, b)) == expected


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        (((0, 0), (4, 0), (0, 3)), 6),
        (((0, 3), (0, 0), (4, 0)), 6),  # any order, either orientation
        (((4, 0), (0, 0), (0, 3)), 6),
        (((0, 0), (4, 0), (1, 5)), 10),
        (((0, 0), (10, 0), (0, 10)), 50),
        (((0, 0), (5, 5), (10, 10)), 0),  # collinear
        (((2, 2), (2, 2), (7, 9)), 0),  # two coincide
    ],
)
def test_triangle_area(points, expected):
    assert triangle_area(*cities(*points)) == expected
    assert TASKS["trianglearea"].answer(cities(*points)) == expected


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        (((1, 0), (0, 0), (0, 1)), 90),
        (((10, 5), (5, 5), (5, 12)), 90),  # translated, uneven arm lengths
        (((-1, 0), (0, 0), (2, 0)), 180),  # straight through the middle city
        (((1, 0), (0, 0), (3, 0)), 0),  # both on the same side
        (((1, 0), (0, 0), (4, 4)), 45),
        (((1, 0), (0, 0), (-1, 1)), 135),
        (((0, 0), (0, 0), (3, 4)), 0),  # degenerate: a coincides with b
    ],
)
def test_angle_at_middle_city(points, expected):
    assert angle(*cities(*points)) == expected
    assert TASKS["angle"].answer(cities(*points)) == expected


# Sectors of 45 degrees centred on E: E is [-22.5, 22.5), NE [22.5, 67.5), ... Integer
# offsets never land on a boundary exactly; tan(22.5) = 0.41421 and tan(67.5) = 2.41421, so
# 7/17 = 0.4118 (22.38 degrees) and 5/12 = 0.4167 (22.62 degrees) straddle the first boundary.
@pytest.mark.parametrize(
    ("dx", "dy", "expected"),
    [
        # the eight main directions (y grows northwards)
        (10, 0, "E"),
        (10, 10, "NE"),
        (0, 10, "N"),
        (-10, 10, "NW"),
        (-10, 0, "W"),
        (-10, -10, "SW"),
        (0, -10, "S"),
        (10, -10, "SE"),
        # either side of each of the eight sector boundaries
        (17, 7, "E"),  # 22.38
        (12, 5, "NE"),  # 22.62
        (5, 12, "NE"),  # 67.38
        (7, 17, "N"),  # 67.62
        (-7, 17, "N"),  # 112.38
        (-5, 12, "NW"),  # 112.62
        (-12, 5, "NW"),  # 157.38
        (-17, 7, "W"),  # 157.62
        (-17, -7, "W"),  # 202.38
        (-12, -5, "SW"),  # 202.62
        (-5, -12, "SW"),  # 247.38
        (-7, -17, "S"),  # 247.62
        (7, -17, "S"),  # 292.38
        (5, -12, "SE"),  # 292.62
        (12, -5, "SE"),  # 337.38
        (17, -7, "E"),  # 337.62
    ],
)
def test_compass_eight_directions_and_boundaries(dx, dy, expected):
    a, b = city(50, 50, 1), city(50 + dx, 50 + dy, 2)
    assert compass(a, b) == expected
    assert TASKS["compass"].answer([a, b]) == expected


def test_compass_reverse_is_opposite():
    labels = ["E", "NE", "N", "NW", "W", "SW", "S", "SE"]
    for dx, dy in [(10, 0), (10, 10), (0, 10), (-10, 10), (3, 1), (1, 3)]:
        forward = compass(city(0, 0, 1), city(dx, dy, 2))
        back = compass(city(dx, dy, 2), city(0, 0, 1))
        assert labels.index(back) == (labels.index(forward) + 4) % 8


SQUARE = ((0, 0), (10, 0), (10, 10), (0, 10))


@pytest.mark.parametrize(
    ("q", "hull", "expected"),
    [
        ((5, 5), SQUARE, True),
        ((1, 9), SQUARE, True),
        ((5, 5), ((10, 10), (0, 0), (0, 10), (10, 0)), True),  # hull cities in any order
        ((15, 5), SQUARE, False),
        ((-1, 5), SQUARE, False),
        ((10, 5), SQUARE, False),  # on an edge: boundary counts as outside
        ((0, 0), SQUARE, False),  # on a corner
        ((2, 2), ((0, 0), (10, 0), (0, 10), (4, 4)), True),  # (4,4) is interior, not a corner
        ((6, 6), ((0, 0), (10, 0), (0, 10), (4, 4)), False),  # beyond the hypotenuse
        ((5, 5), ((0, 0), (3, 3), (6, 6), (9, 9)), False),  # degenerate (collinear) hull
    ],
)
def test_inside_hull(q, hull, expected):
    assert inside_hull(city(*q, 99), cities(*hull)) is expected
    assert TASKS["inside"].answer([city(*q, 99), *cities(*hull)]) is expected


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        (SQUARE, 40),
        (((0, 0), (3, 0), (3, 4), (0, 4)), 14),  # 3 x 4 rectangle
        (((0, 0), (10, 10), (10, 0), (0, 10)), 48),  # order matters: 20 + 20 * sqrt(2) = 48.28
        (((0, 0), (3, 0), (0, 4), (0, 4)), 12),  # 3-4-5 triangle, a repeated corner
    ],
)
def test_perimeter(points, expected):
    assert perimeter(cities(*points)) == expected
    assert TASKS["perimeter"].answer(cities(*points)) == expected


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        (((0, 0), (10, 10), (0, 10), (10, 0)), True),  # proper X
        (((0, 5), (10, 5), (5, 0), (5, 10)), True),  # proper +
        (((0, 0), (10, 10), (10, 10), (20, 0)), False),  # touch at a shared end point
        (((0, 0), (10, 0), (5, 0), (5, 5)), False),  # T: an end point on the other segment
        (((0, 0), (10, 0), (0, 5), (10, 5)), False),  # parallel
        (((0, 0), (10, 0), (5, 0), (15, 0)), False),  # collinear, overlapping
        (((0, 0), (4, 4), (6, 0), (10, 10)), False),  # would cross only if extended
    ],
)
def test_crossing(points, expected):
    assert segments_cross(*cities(*points)) is expected
    assert TASKS["crossing"].answer(cities(*points)) is expected


# --- text format and parser -----------------------------------------------------------------


def test_prompt_formats():
    c = [City(i, 0, 0, STANDARD) for i in (12, 45, 7, 3, 99)]
    assert TASKS["distance"].format_prompt(c[:2]) == "dist(c_12,c_45)="
    assert TASKS["trianglearea"].format_prompt(c[:3]) == "triarea(c_12,c_45,c_7)="
    assert TASKS["angle"].format_prompt(c[:3]) == "angle(c_12,c_45,c_7)="
    assert TASKS["compass"].format_prompt(c[:2]) == "compass(c_12,c_45)="
    assert TASKS["inside"].format_prompt(c) == "inside(c_12;c_45,c_7,c_3,c_99)="
    assert TASKS["perimeter"].format_prompt(c[:4]) == "perim(c_12,c_45,c_7,c_3)="
    assert TASKS["crossing"].format_prompt(c[:4]) == "cross(c_12,c_45;c_7,c_3)="
    lettered = [City(i, 0, 0, STANDARD, name) for i, name in ((12, "a"), (45, "K"))]
    assert TASKS["distance"].format_prompt(lettered) == "dist(a,K)="


def test_example_is_prompt_plus_answer():
    example = TASKS["distance"].example(cities((0, 0), (3, 4)))
    assert (example.task, example.prompt, example.answer) == ("distance", "dist(c_1,c_2)=", "5")
    example = TASKS["crossing"].example(cities((0, 0), (10, 10), (0, 10), (10, 0)))
    assert (example.prompt, example.answer) == ("cross(c_1,c_2;c_3,c_4)=", "T")
    example = TASKS["compass"].example(cities((0, 0), (-3, 3)))
    assert example.answer == "NW"


def test_task_of_prompt():
    for name, task in TASKS.items():
        prompt = task.format_prompt(cities(*[(i, i) for i in range(task.arity)]))
        assert task_of_prompt(prompt).name == name
    with pytest.raises(ValueError):
        task_of_prompt("area(1,2)=")


@pytest.mark.parametrize(
    ("task", "values"),
    [
        ("distance", [0, 5, 141, 123456]),
        ("trianglearea", [0, 6, 5000]),
        ("angle", [0, 45, 90, 180]),
        ("perimeter", [0, 40, 565]),
        ("compass", ["E", "NE", "N", "NW", "W", "SW", "S", "SE"]),
        ("inside", [True, False]),
        ("crossing", [True, False]),
    ],
)
def test_answer_round_trip(task, values):
    for value in values:
        text = TASKS[task].format_answer(value)
        assert TASKS[task].parse(text) == value
        assert type(TASKS[task].parse(text)) is type(value)
        assert TASKS[task].parse(f" {text}\n") == value  # surrounding whitespace is harmless


def test_yes_no_answers_are_letters():
    assert TASKS["inside"].format_answer(True) == "T"
    assert TASKS["crossing"].format_answer(False) == "F"


@pytest.mark.parametrize("task", TASK_NAMES)
@pytest.mark.parametrize("garbage", ["", "   ", "12a", "NX", "maybe", "1 2", "5.5", "TF", "t"])
def test_parser_rejects_garbage(task, garbage):
    assert TASKS[task].parse(garbage) is None


def test_parser_is_strict_per_task():
    assert TASKS["distance"].parse("NE") is None
    assert TASKS["compass"].parse("12") is None
    assert TASKS["compass"].parse("T") is None
    assert TASKS["inside"].parse("N") is None
    assert TASKS["crossing"].parse("1") is None


# --- metric ---------------------------------------------------------------------------------


def test_metric_kinds():
    errors = {"distance", "trianglearea", "angle", "perimeter"}
    for name, task in TASKS.items():
        assert task.metric == (ABS_ERROR if name in errors else ACCURACY)


def test_max_error_by_hand():
    w = World(map_size=100, cities=())
    assert max_error("distance", w) == pytest.approx(100 * math.sqrt(2))
    assert max_error("trianglearea", w) == pytest.approx(5000.0)
    assert max_error("angle", w) == pytest.approx(180.0)
    assert max_error("perimeter", w) == pytest.approx(400 * math.sqrt(2))
    for name in ("compass", "inside", "crossing"):
        with pytest.raises(ValueError):
            max_error(name, w)


def test_score_absolute_error():
    w = World(map_size=100, cities=())
    distance_task = TASKS["distance"]
    assert distance_task.score(50, "57", w) == 7.0
    assert distance_task.score(64, "57", w) == 7.0
    assert distance_task.score(57, "57", w) == 0.0
    assert distance_task.score(57, 57, w) == 0.0  # truth already parsed
    assert TASKS["angle"].score(100, "90", w) == 10.0


def test_score_accuracy():
    w = World(map_size=100, cities=())
    assert TASKS["compass"].score("NE", "NE", w) == 1.0
    assert TASKS["compass"].score("E", "NE", w) == 0.0
    assert TASKS["inside"].score(True, "T", w) == 1.0
    assert TASKS["inside"].score(False, "T", w) == 0.0
    assert TASKS["crossing"].score(False, "F", w) == 1.0


@pytest.mark.parametrize("task", TASK_NAMES)
def test_unparsed_answer_is_a_failure_never_skipped(task):
    w = World(map_size=100, cities=())
    t = TASKS[task]
    truth = {"compass": "N", "inside": "T", "crossing": "F"}.get(task, "42")
    score = t.score(t.parse("maybe"), truth, w)
    assert score is not None and not math.isnan(score)
    if t.metric == ABS_ERROR:
        assert score == max_error(task, w)
        assert score >= t.score(0, truth, w)  # never better than a real, bad answer
    else:
        assert score == 0.0


# --- pair numbering -------------------------------------------------------------------------


def test_pairs_cover_every_unordered_pair_once():
    assert sorted(PAIRS) == list(range(1, 22))
    unordered = [frozenset(p) for p in PAIRS.values()]
    assert all(len(p) == 2 for p in unordered)
    assert set(unordered) == {frozenset(p) for p in itertools.combinations(TASK_NAMES, 2)}
    assert len(set(unordered)) == 21


def test_pairs_spot_checks():
    assert PAIRS[1] == ("distance", "trianglearea")
    assert PAIRS[2] == ("angle", "compass")
    assert PAIRS[4] == ("crossing", "distance")
    assert PAIRS[9] == ("trianglearea", "compass")
    assert PAIRS[12] == ("inside", "crossing")
    assert PAIRS[13] == ("perimeter", "distance")
    assert PAIRS[15] == ("distance", "compass")
    assert PAIRS[21] == ("crossing", "angle")


# --- sampling -------------------------------------------------------------------------------


def _cities_of(example, world):
    by_name = {c.name: c for c in world.cities}
    return [by_name[n] for n in city_names_of_prompt(example.prompt)]


@pytest.mark.parametrize("require_atlantis", [False, True])
@pytest.mark.parametrize("task", ["inside", "crossing"])
def test_yes_no_sampling_is_balanced(world, task, require_atlantis):
    rng = np.random.default_rng(1)
    answers = [sample_example(TASKS[task], world, rng, require_atlantis).answer for _ in range(400)]
    assert set(answers) == {"T", "F"}
    assert 0.42 <= answers.count("T") / len(answers) <= 0.58


@pytest.mark.parametrize("task", TASK_NAMES)
def test_sampled_answers_are_correct(world, task):
    rng = np.random.default_rng(2)
    t = TASKS[task]
    for require_atlantis in (False, True):
        for _ in range(30):
            example = sample_example(t, world, rng, require_atlantis)
            chosen = _cities_of(example, world)
            assert len(chosen) == t.arity
            assert len({c.id for c in chosen}) == t.arity  # distinct cities
            assert example.task == task
            assert example.prompt == t.format_prompt(chosen)
            assert example.answer == t.format_answer(t.answer(chosen))


@pytest.mark.parametrize("require_atlantis", [True, False])
@pytest.mark.parametrize("task", TASK_NAMES)
def test_sampling_uses_atlantis_exactly_when_required(world, task, require_atlantis):
    rng = np.random.default_rng(3)
    for _ in range(60):
        example = sample_example(TASKS[task], world, rng, require_atlantis)
        groups = {c.group for c in _cities_of(example, world)}
        if require_atlantis:
            assert ATLANTIS in groups
        else:
            assert groups == {STANDARD}


def test_atlantis_sampling_also_uses_standard_cities(world):
    # "at least one Atlantis city, the others from the whole world": not Atlantis only
    rng = np.random.default_rng(5)
    examples = sample_examples(["perimeter"], 100, world, rng, require_atlantis=True)
    groups = [{c.group for c in _cities_of(e, world)} for e in examples]
    assert any(STANDARD in g for g in groups)


def test_sample_examples_round_robin_and_exclusion(world):
    rng = np.random.default_rng(6)
    examples = sample_examples(TASK_NAMES, 70, world, rng, require_atlantis=False)
    assert [e.task for e in examples[:7]] == list(TASK_NAMES)
    assert all(sum(e.task == t for e in examples) == 10 for t in TASK_NAMES)

    excluded = {e.prompt for e in sample_examples(["distance"], 200, world, rng, False)}
    again = sample_examples(["distance"], 200, world, rng, False, exclude=excluded)
    assert len(again) == 200
    assert not {e.prompt for e in again} & excluded


def test_sample_examples_is_deterministic(world):
    a = sample_examples(TASK_NAMES, 50, world, np.random.default_rng(7), True)
    b = sample_examples(TASK_NAMES, 50, world, np.random.default_rng(7), True)
    c = sample_examples(TASK_NAMES, 50, world, np.random.default_rng(8), True)
    assert a == b
    assert a != c


def test_sample_examples_reports_an_impossible_request():
    tiny = generate_world(seed=0, n_cities=8, n_continents=1, n_atlantis=2, map_size=100)
    everything = {
        f"dist({a.name},{b.name})="
        for a in tiny.group(STANDARD)
        for b in tiny.group(STANDARD)
        if a != b
    }
    with pytest.raises(RuntimeError, match="too small"):
        sample_examples(["distance"], 5, tiny, np.random.default_rng(0), False, exclude=everything)


@pytest.mark.parametrize(
    ("prompt", "names"),
    [
        ("dist(c_12,c_45)=", ["c_12", "c_45"]),
        ("inside(a;K,b,c,d)=", ["a", "K", "b", "c", "d"]),
        ("cross(a,b;c,d)=", ["a", "b", "c", "d"]),
    ],
)
def test_city_names_of_prompt(prompt, names):
    assert city_names_of_prompt(prompt) == names
