"""The curriculum family's data in one format, from either source: the scenes it generates, or
a user's JSONL of `{image, question, answer, stage}` (image paths relative to the file).

A user's file is validated line by line before anything trains: a missing image, an unknown
stage, an empty question or answer is an error that names the line. Splits are by image: no
image is in two splits, and `check_disjoint` stops a run that would break that.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FIELDS = ("image", "question", "answer", "stage")
SPLITS = ("train", "validation", "test")
STAGES = (1, 2, 3)  # initial assessment, findings identification, context


class DataError(ValueError):
    pass


def load_user_records(path) -> list[dict]:
    """The records of a user's JSONL, image paths made absolute; every problem of the file is
    reported at once, each with its line number."""
    path = Path(path)
    records, problems = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"{where}: not JSON ({error.msg})")
            continue
        problems += [f"{where}: {p}" for p in _record_problems(record, path.parent)]
        if isinstance(record, dict) and record.get("image"):
            record = {**record, "image": str((path.parent / record["image"]).resolve())}
        records.append(record)
    if not records and not problems:
        problems.append(f"{path}: no records")
    if problems:
        raise DataError("invalid curriculum data:\n  " + "\n  ".join(problems))
    return records


def _record_problems(record, folder: Path) -> list[str]:
    if not isinstance(record, dict):
        return [f"expected an object with {', '.join(FIELDS)}"]
    problems = [f"missing key '{k}'" for k in FIELDS if k not in record]
    for key in ("question", "answer"):
        if key in record and not str(record[key]).strip():
            problems.append(f"'{key}' is empty")
    if "stage" in record and record["stage"] not in STAGES:
        problems.append(f"stage {record['stage']!r} is not one of {list(STAGES)}")
    image = record.get("image")
    if image is not None and not (folder / str(image)).is_file():
        problems.append(f"image '{image}' not found (paths are relative to the JSONL file)")
    return problems


def split_by_image(records: list[dict], fractions: dict[str, float], seed: int) -> dict[str, list]:
    """Records into train/validation/test by image, in the given fractions of the images."""
    if abs(sum(fractions[s] for s in SPLITS) - 1) > 1e-9:
        raise DataError(f"split fractions must sum to 1, not {sum(fractions.values())}")
    images = sorted({r["image"] for r in records})
    order = np.random.default_rng(seed).permutation(len(images))
    cut1 = round(fractions["train"] * len(images))
    cut2 = cut1 + round(fractions["validation"] * len(images))
    split_of = {}
    for rank, index in enumerate(order):
        split_of[images[index]] = (
            "train" if rank < cut1 else "validation" if rank < cut2 else "test"
        )
    splits = {s: [r for r in records if split_of[r["image"]] == s] for s in SPLITS}
    check_disjoint(splits)
    return splits


def check_disjoint(splits: dict[str, list]) -> None:
    """Stop when an image is in two splits: its questions would leak into the test."""
    seen: dict[str, str] = {}
    for name, records in splits.items():
        for record in records:
            other = seen.setdefault(record["image"], name)
            if other != name:
                raise DataError(f"image {record['image']} is in both the {other} and {name} splits")
