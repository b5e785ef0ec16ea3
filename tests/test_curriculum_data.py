"""The curriculum family's data: scenes whose answers follow from the scene (checked against
the pixels drawn), letterboxing, the user format and its errors, and image-level splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ftdag.curriculum.data import (
    DataError,
    check_disjoint,
    load_user_records,
    split_by_image,
)
from ftdag.curriculum.scenes import (
    ASPECTS,
    COLOURS,
    NO,
    YES,
    Scene,
    generate_scene,
    letterbox,
    questions,
    render,
)

USER_DATA = Path(__file__).parent / "data" / "curriculum_user" / "questions.jsonl"


def scenes(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return [generate_scene(rng) for _ in range(n)]


def pixels_of(image, colour) -> np.ndarray:
    """(row, column) of every pixel of exactly this colour."""
    return np.argwhere((np.asarray(image) == COLOURS[colour]).all(axis=-1))


def test_scenes_are_deterministic_varied_and_drawn_where_they_say():
    first, again = scenes(50), scenes(50)
    assert [s.to_dict() for s in first] == [s.to_dict() for s in again]
    assert {(s.width, s.height) for s in scenes()} == set(ASPECTS)
    assert {len(s.shapes) for s in scenes()} == {0, 1, 2, 3}  # max_shapes 3 by default
    big = [generate_scene(np.random.default_rng(i), 5, (4, 10)) for i in range(100)]
    assert {len(s.shapes) for s in big} == {0, 1, 2, 3, 4, 5}
    assert all(4 <= shape.size < 10 for s in big for shape in s.shapes)
    with pytest.raises(ValueError, match="shape sizes"):
        generate_scene(np.random.default_rng(0), 3, (30, 20))
    for scene in first:
        assert Scene.from_dict(json.loads(json.dumps(scene.to_dict()))) == scene
        image = render(scene)
        for shape in scene.shapes:
            # each shape is one of its colour: its pixels are centred where it says
            if sum(s.colour == shape.colour for s in scene.shapes) == 1:
                rows, cols = pixels_of(image, shape.colour).T
                assert abs(cols.mean() - shape.x) <= shape.size / 2 + 1
                assert rows.min() >= shape.y - shape.size - 1


def answer(scene, question, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    return {q["question"]: q for q in questions(scene, rng)}[question]["answer"]


def test_answers_follow_from_the_scene():
    rng = np.random.default_rng(1)
    for scene in scenes(200, seed=1):
        asked = questions(scene, rng)
        by_text = {q["question"]: q for q in asked}
        assert {q["stage"] for q in asked} <= {1, 2, 3}
        assert by_text["How many shapes are there?"]["answer"] == str(len(scene.shapes))
        assert by_text["Is there any shape?"]["answer"] == (YES if scene.shapes else NO)
        for q in asked:
            assert q["answer"].strip()
            for shape in scene.shapes:
                name = f"the {shape.colour} {shape.kind}"
                if q["question"] == f"Is {name} on the left or right?":
                    assert q["answer"] == ("left" if shape.x < scene.width / 2 else "right")
                if q["question"] == f"What colour is the {shape.kind}?":
                    assert q["answer"] == shape.colour
                for other in scene.shapes:
                    pair = f"{name} left of the {other.colour} {other.kind}?"
                    if q["question"] == f"Is {pair}":
                        assert q["answer"] == (YES if shape.x < other.x else NO)
        stages = {q["stage"] for q in asked}
        assert stages == (
            {1} if not scene.shapes else {1, 2} if len(scene.shapes) == 1 else {1, 2, 3}
        )


@pytest.mark.parametrize("size", [(200, 112), (112, 200), (33, 7), (7, 33), (64, 64), (1, 99)])
def test_letterbox_keeps_the_aspect_ratio_on_a_square(size):
    image = Image.new("RGB", size, (255, 0, 0))
    boxed = letterbox(image, 56, colour=(0, 0, 255))
    assert boxed.size == (56, 56)
    red = pixels_of_rgb(boxed, (255, 0, 0))
    height = red[:, 0].max() - red[:, 0].min() + 1
    width = red[:, 1].max() - red[:, 1].min() + 1
    assert max(width, height) == 56  # fills the longer side
    assert (
        abs(width / height - size[0] / size[1])
        <= max(size[0] / size[1], 1) * 2 / min(width, height) + 0.05
    )
    # centred: equal padding either side, to a pixel
    assert abs(red[:, 1].min() - (55 - red[:, 1].max())) <= 1
    assert abs(red[:, 0].min() - (55 - red[:, 0].max())) <= 1
    if width < 56 or height < 56:
        assert len(pixels_of_rgb(boxed, (0, 0, 255))) > 0  # the padding colour from config


def pixels_of_rgb(image, rgb):
    return np.argwhere((np.asarray(image) == rgb).all(axis=-1))


def test_the_user_format_loads_with_absolute_image_paths():
    records = load_user_records(USER_DATA)
    assert len(records) == 6 and {r["stage"] for r in records} == {1, 2, 3}
    for record in records:
        assert Image.open(record["image"]).size[0] > 0


def test_user_data_errors_name_their_line(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    lines = [
        {"image": "a.png", "question": "q?", "answer": "x", "stage": 1},
        {"image": "missing.png", "question": "q?", "answer": "x", "stage": 1},
        {"image": "a.png", "question": "q?", "answer": " ", "stage": 2},
        {"image": "a.png", "question": "q?", "answer": "x", "stage": 4},
        {"image": "a.png", "answer": "x", "stage": 3},
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    with pytest.raises(DataError) as error:
        load_user_records(path)
    message = str(error.value)
    assert "line 2: image 'missing.png' not found" in message
    assert "line 3: 'answer' is empty" in message
    assert "line 4: stage 4 is not one of [1, 2, 3]" in message
    assert "line 5: missing key 'question'" in message
    assert "line 6: not JSON" in message
    assert "line 1:" not in message


def test_splits_are_by_image_and_a_leak_is_stopped():
    records = [{"image": f"img{i // 3}.png", "question": str(i)} for i in range(300)]
    splits = split_by_image(records, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=0)
    images = {name: {r["image"] for r in rs} for name, rs in splits.items()}
    assert (len(images["train"]), len(images["validation"]), len(images["test"])) == (80, 10, 10)
    assert not images["train"] & images["test"] and not images["train"] & images["validation"]
    assert sum(len(rs) for rs in splits.values()) == 300
    leaked = {**splits, "test": splits["test"] + splits["train"][:1]}
    with pytest.raises(DataError, match="in both the train and test splits"):
        check_disjoint(leaked)
    with pytest.raises(DataError, match="sum to 1"):
        split_by_image(records, {"train": 0.8, "validation": 0.1, "test": 0.2}, seed=0)
