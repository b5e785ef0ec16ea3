"""The seven world-map tasks: exact answers, a text format, a parser of model output, a metric.

Every task is a short character sequence, `prompt` + `answer`, for example ``dist(a,K)=57``
(or ``dist(c_12,c_45)=57`` with cities named by id). A model sees the prompt and must generate
the answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ftdag.exp3.world import ATLANTIS, STANDARD, City, World

ABS_ERROR = "abs_error"  # lower is better
ACCURACY = "accuracy"  # higher is better
EXACT_MATCH = "exact_match"  # the multi-task mix: fraction of answers exactly right

COMPASS_LABELS = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")
TRUE, FALSE = "T", "F"
HULL_SIZE = 4  # inside: is a city inside the convex hull of this many cities
POLYGON_SIZE = 4  # perimeter: polygon of this many cities, in the order given


# --- geometry -------------------------------------------------------------------------------


def _round(value: float) -> int:
    """Halves round up (Python's round() sends them to the even neighbour)."""
    return math.floor(value + 0.5)


def distance(a: City, b: City) -> int:
    return _round(math.hypot(a.x - b.x, a.y - b.y))


def triangle_area(a: City, b: City, c: City) -> int:
    return _round(abs(_cross(a, b, c)) / 2.0)


def angle(a: City, b: City, c: City) -> int:
    """Angle at the middle city b, in whole degrees (0 when a or c coincides with b)."""
    ux, uy, vx, vy = a.x - b.x, a.y - b.y, c.x - b.x, c.y - b.y
    nu, nv = math.hypot(ux, uy), math.hypot(vx, vy)
    if nu == 0 or nv == 0:
        return 0
    cos = max(-1.0, min(1.0, (ux * vx + uy * vy) / (nu * nv)))
    return _round(math.degrees(math.acos(cos)))


def compass(a: City, b: City) -> str:
    """8-way direction from a to b; y grows northwards; sectors of 45 degrees centred on E."""
    theta = math.degrees(math.atan2(b.y - a.y, b.x - a.x)) % 360.0
    return COMPASS_LABELS[int(((theta + 22.5) % 360.0) // 45.0)]


def inside_hull(q: City, hull: Sequence[City]) -> bool:
    """Is q strictly inside the convex hull of `hull` (points on the boundary are outside)."""
    pts = _convex_hull([(c.x, c.y) for c in hull])
    if len(pts) < 3:
        return False
    sign = [_cross_xy(pts[i], pts[(i + 1) % len(pts)], (q.x, q.y)) for i in range(len(pts))]
    return all(s > 0 for s in sign)


def perimeter(cities: Sequence[City]) -> int:
    """Perimeter of the polygon visiting the cities in the order given."""
    edges = zip(cities, [*cities[1:], cities[0]], strict=True)
    return _round(sum(math.hypot(a.x - b.x, a.y - b.y) for a, b in edges))


def segments_cross(a: City, b: City, c: City, d: City) -> bool:
    """Do segments ab and cd properly intersect (touching at an end point does not count)."""
    d1, d2 = _cross(a, b, c), _cross(a, b, d)
    d3, d4 = _cross(c, d, a), _cross(c, d, b)
    return d1 * d2 < 0 and d3 * d4 < 0


def _cross(o: City, a: City, b: City) -> int:
    return _cross_xy((o.x, o.y), (a.x, a.y), (b.x, b.y))


def _cross_xy(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _convex_hull(points):
    """Andrew's monotone chain; counter-clockwise, no collinear points."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts
    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and _cross_xy(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and _cross_xy(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


# --- tasks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    task: str
    prompt: str
    answer: str

    def to_record(self, cities: str) -> dict:
        return {"task": self.task, "cities": cities, "prompt": self.prompt, "answer": self.answer}


YES_NO = {TRUE: True, FALSE: False}


@dataclass(frozen=True)
class Task:
    """A task's facts: its text form, how to solve it, its metric, and for scoring a model
    that knows nothing: its chance level (accuracy tasks) or its largest error (error tasks)."""

    name: str
    function: str  # the name in the text, e.g. "dist"
    arity: int
    metric: str
    solve: Callable[..., object]
    separator_after: int | None = None  # a ";" after this many arguments: inside(q;hull)
    labels: tuple[str, ...] = ()  # accuracy tasks: every answer it can have
    balanced: bool = False  # yes/no tasks: a coin decides the answer, then cities are drawn
    max_error: Callable[[World], float] | None = None  # error tasks: the worst answer in range

    @property
    def chance(self) -> float:
        """Accuracy of guessing (labels are equally likely: compass by geometry, yes/no by
        `balanced` sampling)."""
        if not self.labels:
            raise ValueError(f"{self.name} is not an accuracy task")
        return 1 / len(self.labels)

    def format_prompt(self, cities: Sequence[City]) -> str:
        names = [c.name for c in cities]
        if self.separator_after is None:
            args = ",".join(names)
        else:
            k = self.separator_after
            args = ",".join(names[:k]) + ";" + ",".join(names[k:])
        return f"{self.function}({args})="

    def format_answer(self, value) -> str:
        if isinstance(value, bool):
            return TRUE if value else FALSE
        return str(value)

    def example(self, cities: Sequence[City]) -> Example:
        return Example(
            self.name, self.format_prompt(cities), self.format_answer(self.answer(cities))
        )

    def answer(self, cities: Sequence[City]):
        return self.solve(*cities)

    def parse(self, text: str):
        """The model's answer as a value, or None when it cannot be read."""
        text = text.strip()
        if self.metric == ABS_ERROR:
            return int(text) if re.fullmatch(r"-?\d{1,9}", text) else None
        if text not in self.labels:
            return None
        return YES_NO[text] if self.balanced else text

    def score(self, predicted, truth, world: World) -> float:
        """Absolute error or 0/1 correctness; an unparsed answer (None) is a failure: the
        largest error the task's range allows, or incorrect."""
        truth = self.parse(truth) if isinstance(truth, str) else truth
        if self.metric == ABS_ERROR:
            if predicted is None:
                return self.max_error(world)
            return float(abs(predicted - truth))
        return float(predicted is not None and predicted == truth)


def _inside(q: City, *hull: City) -> bool:
    return inside_hull(q, hull)


def _perimeter(*cities: City) -> int:
    return perimeter(cities)


def _diagonal(world: World) -> float:
    return world.diagonal


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("distance", "dist", 2, ABS_ERROR, distance, max_error=_diagonal),
        Task(
            "trianglearea",
            "triarea",
            3,
            ABS_ERROR,
            triangle_area,
            max_error=lambda w: w.map_size**2 / 2.0,
        ),
        Task("angle", "angle", 3, ABS_ERROR, angle, max_error=lambda w: 180.0),
        Task("compass", "compass", 2, ACCURACY, compass, labels=COMPASS_LABELS),
        Task(
            "inside",
            "inside",
            1 + HULL_SIZE,
            ACCURACY,
            _inside,
            separator_after=1,
            labels=tuple(YES_NO),
            balanced=True,
        ),
        Task(
            "perimeter",
            "perim",
            POLYGON_SIZE,
            ABS_ERROR,
            _perimeter,
            max_error=lambda w: POLYGON_SIZE * w.diagonal,
        ),
        Task(
            "crossing",
            "cross",
            4,
            ACCURACY,
            segments_cross,
            separator_after=2,
            labels=tuple(YES_NO),
            balanced=True,
        ),
    )
}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)  # canonical order: FTWB1-k trains TASK_NAMES[k-1]

# The numbering of the 21 FTWB2 pairs, as in the original study.
PAIRS: dict[int, tuple[str, str]] = {
    1: ("distance", "trianglearea"),
    2: ("angle", "compass"),
    3: ("inside", "perimeter"),
    4: ("crossing", "distance"),
    5: ("trianglearea", "angle"),
    6: ("compass", "inside"),
    7: ("perimeter", "crossing"),
    8: ("distance", "angle"),
    9: ("trianglearea", "compass"),
    10: ("angle", "inside"),
    11: ("compass", "perimeter"),
    12: ("inside", "crossing"),
    13: ("perimeter", "distance"),
    14: ("crossing", "trianglearea"),
    15: ("distance", "compass"),
    16: ("trianglearea", "inside"),
    17: ("angle", "perimeter"),
    18: ("compass", "crossing"),
    19: ("inside", "distance"),
    20: ("perimeter", "trianglearea"),
    21: ("crossing", "angle"),
}


def max_error(task: str, world: World) -> float:
    """The largest absolute error an answer inside the task's range can have."""
    if TASKS[task].max_error is None:
        raise ValueError(f"{task} is not an error task")
    return TASKS[task].max_error(world)


def city_names_of_prompt(prompt: str) -> list[str]:
    """The names of the cities a prompt asks about, in order: `inside(a;b,c,d,e)=` -> a..e."""
    arguments = prompt[prompt.index("(") + 1 : prompt.rindex(")")]
    return re.split(r"[,;]", arguments)


def task_of_prompt(prompt: str) -> Task:
    function = prompt.split("(", 1)[0]
    for task in TASKS.values():
        if task.function == function:
            return task
    raise ValueError(f"no task has the function {function!r}")


# --- sampling -------------------------------------------------------------------------------


def sample_example(
    task: Task, world: World, rng: np.random.Generator, require_atlantis: bool
) -> Example:
    """One example. Without `require_atlantis`, every city is a standard one; with it, at least
    one city is from Atlantis and the others come from the whole world. Yes/no tasks are
    balanced (a coin decides the answer, then cities are drawn until they give it)."""
    standard = world.group(STANDARD)
    pool = world.cities if require_atlantis else standard
    atlantis = world.group(ATLANTIS)
    wanted = bool(rng.integers(2)) if task.balanced else None
    for _ in range(10_000):
        idx = rng.choice(len(pool), size=task.arity, replace=False)
        cities = [pool[i] for i in idx]
        if require_atlantis and not any(c.group == ATLANTIS for c in cities):
            position = int(rng.integers(task.arity))
            candidates = [c for c in atlantis if c not in cities]
            cities[position] = candidates[int(rng.integers(len(candidates)))]
        if wanted is None or task.answer(cities) == wanted:
            return task.example(cities)
    raise RuntimeError(f"could not draw a balanced {task.name} example from this world")


def sample_examples(
    task_names: Sequence[str],
    n: int,
    world: World,
    rng: np.random.Generator,
    require_atlantis: bool,
    exclude: set[str] = frozenset(),
) -> list[Example]:
    """`n` examples spread evenly over `task_names` (round robin), skipping excluded prompts."""
    examples: list[Example] = []
    attempts = 0
    while len(examples) < n:
        task = TASKS[task_names[len(examples) % len(task_names)]]
        example = sample_example(task, world, rng, require_atlantis)
        attempts += 1
        if example.prompt not in exclude:
            examples.append(example)
        elif attempts > 50 * n + 1000:
            raise RuntimeError(
                f"the world is too small to draw {n} {'/'.join(task_names)} examples that are "
                "not held out for evaluation: add cities or lower the sample counts"
            )
    return examples
