"""The compare family's data: images with a 1–10 ground-truth score, from either source.

Generated (the default): street scenes drawn as shapes on a canvas, whose safety score follows
exactly from what is drawn (`scene_score`), so the right answer is known. A user's own data: a
JSON list or a JSONL of `{image, score, description?}`, image paths relative to the file,
validated entry by entry before anything runs. Splits are by image (`split`).
"""

from __future__ import annotations

import hashlib
import json
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from ftdag.core.io import atomic_path, write_jsonl
from ftdag.curriculum.data import SPLITS, DataError, split_by_image
from ftdag.curriculum.scenes import BACKGROUND, COLOURS, KINDS, Scene, Shape, render

__all__ = ["DataError", "generate_scored_scenes", "load_user_scores", "scene_score", "split"]

# Background brightness: far apart so that a small model tells them apart at a glance.
LIGHTS = {"dark": (70, 70, 80), "dim": (150, 150, 155), "bright": BACKGROUND}
HAZARD = "red"
OTHER_COLOURS = tuple(c for c in COLOURS if c != HAZARD)
# Radius (or half side) as fractions of the shorter canvas side, [low, high). Small and large
# hazards are 2x apart at least, so "large" is never a judgement call; LARGE_FROM lies between.
SMALL, LARGE, OTHER = (0.05, 0.08), (0.16, 0.21), (0.08, 0.13)
LARGE_FROM = 0.12
MIN_SIDE = 48  # below this a small hazard would be a few pixels
SCORES_FILE = "scores.jsonl"


def scene_score(light: str, small_hazards: int, large_hazards: int) -> int:
    """The safety score, 1–10, of a scene with this light and these hazards (red shapes):

        score = clamp(1 + 3 * level + 3 - small_hazards - 2 * large_hazards, 1, 10)

    with level 0 for dark, 1 for dim, 2 for bright light. An empty street scores 10 in bright
    light, 7 dim, 4 dark; each small hazard costs 1, each large one 2; nothing scores below 1.
    Other shapes (green, blue, yellow) and every shape's kind and place do not count.
    """
    if light not in LIGHTS:
        raise ValueError(f"light {light!r} is not one of {list(LIGHTS)}")
    if min(small_hazards, large_hazards) < 0:
        raise ValueError("hazard counts must be >= 0")
    level = list(LIGHTS).index(light)
    return int(np.clip(1 + 3 * level + 3 - small_hazards - 2 * large_hazards, 1, 10))


def scene_factors(scene: Scene, light: str) -> dict:
    """The factors of the score as drawn: a hazard that found no place is not counted."""
    hazards = [s for s in scene.shapes if s.colour == HAZARD]
    large = sum(s.size >= LARGE_FROM * min(scene.width, scene.height) for s in hazards)
    return {
        "light": light,
        "small_hazards": len(hazards) - large,
        "large_hazards": large,
        "others": len(scene.shapes) - len(hazards),
    }


def describe(factors: dict) -> str:
    """The scene in words, e.g. '2 hazards (1 large, 1 small), 1 other object; dim light'."""
    small, large, others = (factors[k] for k in ("small_hazards", "large_hazards", "others"))
    sizes = [f"{n} {name}" for n, name in ((large, "large"), (small, "small")) if n]
    count = small + large
    hazards = f"{count} hazard{'s' * (count != 1)} ({', '.join(sizes)})" if count else "no hazards"
    return f"{hazards}, {others} other object{'s' * (others != 1)}; {factors['light']} light"


def draw_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[Scene, str]:
    """A random scene and its light: 0–3 hazards, each small or large, 0–2 other shapes."""
    width, height = size
    side = min(width, height)
    if side < MIN_SIDE:
        raise ValueError(f"canvas {size}: both sides must be at least {MIN_SIDE} pixels")
    light = list(LIGHTS)[int(rng.integers(len(LIGHTS)))]
    n_hazards, n_others = int(rng.integers(0, 4)), int(rng.integers(0, 3))
    # Large hazards first: placed on an empty canvas they always fit, and they matter most.
    large = sorted(rng.random(n_hazards) < 0.5, reverse=True)
    specs = [(HAZARD, LARGE if big else SMALL) for big in large]
    specs += [(OTHER_COLOURS[int(rng.integers(len(OTHER_COLOURS)))], OTHER)] * n_others
    shapes: list[Shape] = []
    for colour, (low, high) in specs:
        low_px = max(3, round(low * side))
        high_px = max(low_px + 1, round(high * side))
        kind = KINDS[int(rng.integers(len(KINDS)))]
        for _ in range(200):  # as curriculum.scenes.generate_scene: a shape may find no place
            r = int(rng.integers(low_px, high_px))
            x = int(rng.integers(r + 2, width - r - 2))
            y = int(rng.integers(r + 2, height - r - 2))
            candidate = Shape(kind, colour, x, y, r)
            if all(candidate.distance(s) > r + s.size + 4 for s in shapes):
                shapes.append(candidate)
                break
    return Scene(width, height, tuple(shapes)), light


def render_lit(scene: Scene, light: str) -> Image.Image:
    """The scene drawn by curriculum.scenes.render, its background recoloured to the light
    (render draws without anti-aliasing, so every background pixel is exactly BACKGROUND)."""
    pixels = np.asarray(render(scene)).copy()
    pixels[(pixels == BACKGROUND).all(axis=-1)] = LIGHTS[light]
    return Image.fromarray(pixels)


def generate_scored_scenes(
    n: int, seed: int, out_dir, size: tuple[int, int] = (192, 128)
) -> list[dict]:
    """`n` distinct scenes as PNGs under out_dir/images (no two with the same bytes), and their
    records in out_dir/scores.jsonl:
    {image (relative to out_dir), score, description, light, small_hazards, large_hazards,
    others}. The same seed gives the same bytes. Each file is written atomically and
    scores.jsonl last, so an interrupted run never leaves a list naming a missing image."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    records, seen = [], set()
    while len(records) < n:
        scene, light = draw_scene(rng, size)
        buffer = BytesIO()
        render_lit(scene, light).save(buffer, format="PNG")
        digest = hashlib.sha256(buffer.getvalue()).digest()
        if digest in seen:  # a scene drawn twice would sit in train and test at once
            continue
        seen.add(digest)
        factors = scene_factors(scene, light)
        image = f"images/scene_{len(records):05d}.png"
        with atomic_path(out_dir / image) as tmp:
            tmp.write_bytes(buffer.getvalue())
        score = scene_score(light, factors["small_hazards"], factors["large_hazards"])
        records.append(
            {"image": image, "score": score, "description": describe(factors), **factors}
        )
    write_jsonl(out_dir / SCORES_FILE, records)
    return records


def load_user_scores(path) -> list[dict]:
    """The entries of a user's JSON list or JSONL as {image (absolute path), score (int),
    description (str or None)}, other keys kept. A score must be an integer 1–10; a float
    with no fraction (7.0, as pandas or JavaScript may write it) is taken as that integer,
    but 7.5 or "7" is an error: a ground truth is never rounded or guessed. Every problem
    (missing key, bad score, missing or unreadable image, image listed twice) is reported
    at once, each with its line (JSONL) or list index (JSON)."""
    path = Path(path)
    records, problems, first_seen = [], [], {}
    entries = _read_entries(path)
    for where, entry in entries:
        found = [str(entry)] if isinstance(entry, DataError) else _entry_problems(entry, path)
        name = entry.get("image") if isinstance(entry, dict) else None
        if isinstance(name, str) and name.strip():
            # a duplicate is reported even where either entry has other problems too
            image = (path.parent / name).resolve()
            if image in first_seen:
                found.append(f"image '{name}' is also at {first_seen[image]}")
            first_seen.setdefault(image, where.rsplit(", ", 1)[1])
        problems += [f"{where}: {p}" for p in found]
        if not found:
            extra = {"image": str(image), "score": int(entry["score"])}
            records.append({**entry, **extra, "description": entry.get("description")})
    if not entries:
        problems.append(f"{path}: no entries")
    if problems:
        more = [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        raise DataError("invalid compare data:\n  " + "\n  ".join(problems[:20] + more))
    return records


def _read_entries(path: Path) -> list[tuple[str, object]]:
    """(where, entry) of each entry; an entry that is not JSON is a DataError in its place."""
    if not path.is_file():
        raise DataError(f"invalid compare data: {path}: no such file")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise DataError(f"invalid compare data: {path}: not JSON ({error})") from None
        if not isinstance(data, list):
            raise DataError(f"invalid compare data: {path}: expected a list of entries")
        return [(f"{path}, index {k}", entry) for k, entry in enumerate(data)]
    if path.suffix != ".jsonl":
        raise DataError(f"invalid compare data: {path}: expected a .json or .jsonl file")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                entries.append((f"{path}, line {number}", json.loads(line)))
            except json.JSONDecodeError as error:
                entries.append((f"{path}, line {number}", DataError(f"not JSON ({error.msg})")))
    return entries


def _entry_problems(entry, path: Path) -> list[str]:
    """What is wrong with one entry (nothing: [])."""
    if not isinstance(entry, dict):
        return ["expected an object with 'image' and 'score'"]
    problems = [f"missing '{k}'" for k in ("image", "score") if k not in entry]
    score = entry.get("score")
    if "score" in entry and not _is_score(score):
        problems.append(f"score {score!r} is not an integer from 1 to 10")
    description = entry.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(f"description {description!r} is not a string")
    image = entry.get("image")
    if "image" in entry:
        if not (isinstance(image, str) and image.strip()):
            problems.append(f"image {image!r} is not a file name")
        else:
            problems += _image_problems(path.parent / image, image)
    return problems


def _is_score(value) -> bool:
    if isinstance(value, bool):  # True is an int to Python, never a score
        return False
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return isinstance(value, int) and 1 <= value <= 10


def _image_problems(file: Path, name: str) -> list[str]:
    if not file.is_file():
        return [f"image '{name}' not found (paths are relative to the data file)"]
    try:
        with Image.open(file) as image:
            image.verify()  # reads the whole file: a truncated image fails here, not in training
    except Exception as error:  # PIL raises many kinds for a bad file
        return [f"image '{name}' cannot be read ({type(error).__name__})"]
    return []


def split(
    records: list[dict], fractions: dict | None = None, seed: int = 0
) -> dict[str, list[dict]]:
    """Records into the named splits (of train, validation, test; default 90% train, 10%
    test) by image: no image is in two splits. The same seed gives the same splits."""
    fractions = fractions or {"train": 0.9, "test": 0.1}
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise DataError(f"unknown splits {sorted(unknown)}: expected some of {list(SPLITS)}")
    # curriculum's split_by_image wants all three; a split not asked for gets none.
    splits = split_by_image(records, {s: fractions.get(s, 0.0) for s in SPLITS}, seed)
    return {name: splits[name] for name in fractions}
