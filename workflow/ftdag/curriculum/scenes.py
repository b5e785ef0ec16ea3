"""Synthetic scenes for the curriculum family: coloured shapes on a canvas of several aspect
ratios, and questions in three stages of difficulty whose answers follow exactly from the
scene.

Stage 1, initial assessment: is there a shape, how many.
Stage 2, findings identification: which colour a shape is, which shape a colour is, where.
Stage 3, context: relations between findings (left of, nearest to, larger than).

Deterministic from a seed; every answer is a short word or number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("circle", "square", "triangle")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 30),
}
ASPECTS = ((160, 160), (224, 128), (128, 224), (200, 112))  # width, height
BACKGROUND = (245, 245, 245)
YES, NO = "yes", "no"


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    x: int  # centre, pixels from the left
    y: int  # centre, pixels from the top
    size: int  # radius, or half the side

    def distance(self, other: Shape) -> float:
        return math.hypot(self.x - other.x, self.y - other.y)


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    shapes: tuple[Shape, ...]

    def to_dict(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "shapes": [asdict(s) for s in self.shapes],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        return cls(data["width"], data["height"], tuple(Shape(**s) for s in data["shapes"]))


def generate_scene(
    rng: np.random.Generator, max_shapes: int = 3, sizes: tuple[int, int] = (20, 36)
) -> Scene:
    """Up to `max_shapes` shapes that do not overlap, each (kind, colour) at most once, so
    that "the red circle" names one shape. A shape's size (radius or half side, in pixels of
    a canvas 112 to 224 wide) is drawn from `sizes` [low, high); one that finds no free place
    is left out."""
    low, high = sizes
    if not 2 <= low < high <= 50:
        raise ValueError(f"shape sizes {sizes}: expected 2 <= low < high <= 50")
    width, height = ASPECTS[int(rng.integers(len(ASPECTS)))]
    count = int(rng.integers(0, max_shapes + 1))
    pairs = [(k, c) for k in KINDS for c in COLOURS]
    chosen = rng.permutation(len(pairs))[:count]
    shapes: list[Shape] = []
    for index in chosen:
        kind, colour = pairs[index]
        for _ in range(200):
            size = int(rng.integers(low, high))
            x = int(rng.integers(size + 2, width - size - 2))
            y = int(rng.integers(size + 2, height - size - 2))
            candidate = Shape(kind, colour, x, y, size)
            if all(candidate.distance(s) > candidate.size + s.size + 4 for s in shapes):
                shapes.append(candidate)
                break
    return Scene(width, height, tuple(shapes))


def render(scene: Scene) -> Image.Image:
    image = Image.new("RGB", (scene.width, scene.height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for s in scene.shapes:
        box = (s.x - s.size, s.y - s.size, s.x + s.size, s.y + s.size)
        fill = COLOURS[s.colour]
        if s.kind == "circle":
            draw.ellipse(box, fill=fill)
        elif s.kind == "square":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon(
                [(s.x, s.y - s.size), (s.x - s.size, s.y + s.size), (s.x + s.size, s.y + s.size)],
                fill=fill,
            )
    return image


def letterbox(image: Image.Image, resolution: int, colour=(0, 0, 0)) -> Image.Image:
    """`image` scaled to fit a `resolution` square, aspect ratio kept, centred on `colour`."""
    scale = resolution / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new("RGB", (resolution, resolution), tuple(colour))
    offset = ((resolution - size[0]) // 2, (resolution - size[1]) // 2)
    canvas.paste(image.convert("RGB").resize(size, Image.Resampling.BILINEAR), offset)
    return canvas


def _name(shape: Shape) -> str:
    return f"the {shape.colour} {shape.kind}"


def _side(shape: Shape, scene: Scene) -> str:
    return "left" if shape.x < scene.width / 2 else "right"


def questions(scene: Scene, rng: np.random.Generator) -> list[dict]:
    """One question of each kind the scene allows: {question, answer, stage}."""
    shapes = list(scene.shapes)
    out = [
        {"stage": 1, "question": "Is there any shape?", "answer": YES if shapes else NO},
        {"stage": 1, "question": "How many shapes are there?", "answer": str(len(shapes))},
    ]
    if not shapes:
        return out
    target = shapes[int(rng.integers(len(shapes)))]
    same_kind = [s for s in shapes if s.kind == target.kind]
    same_colour = [s for s in shapes if s.colour == target.colour]
    if len(same_kind) == 1:
        out.append(
            {"stage": 2, "question": f"What colour is the {target.kind}?", "answer": target.colour}
        )
    if len(same_colour) == 1:
        out.append(
            {"stage": 2, "question": f"Which shape is {target.colour}?", "answer": target.kind}
        )
    out.append(
        {
            "stage": 2,
            "question": f"Is {_name(target)} on the left or right?",
            "answer": _side(target, scene),
        }
    )
    if len(shapes) >= 2:
        a, b = (shapes[i] for i in rng.permutation(len(shapes))[:2])
        left = YES if a.x < b.x else NO
        out.append({"stage": 3, "question": f"Is {_name(a)} left of {_name(b)}?", "answer": left})
        larger = YES if a.size > b.size else NO
        out.append(
            {"stage": 3, "question": f"Is {_name(a)} larger than {_name(b)}?", "answer": larger}
        )
        others = [s for s in shapes if s is not a]
        nearest = min(others, key=a.distance)
        if sum(math.isclose(a.distance(s), a.distance(nearest)) for s in others) == 1:
            unique_kind = sum(s.kind == nearest.kind for s in others) == 1
            answer = nearest.kind if unique_kind else f"{nearest.colour} {nearest.kind}"
            question = f"Which shape is nearest to {_name(a)}?"
            out.append({"stage": 3, "question": question, "answer": answer})
    return out
