"""The compare family's data: the score rule (known answers), the generated scenes (files,
determinism, every score occurs, drawn as their factors say), a user's file and its errors, and
image-level splits."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ftdag.compare.data import (
    HAZARD,
    LIGHTS,
    DataError,
    describe,
    generate_scored_scenes,
    load_user_scores,
    scene_score,
    split,
)
from ftdag.curriculum.scenes import COLOURS

USER_DATA = Path(__file__).parent / "data" / "compare_user" / "scores.jsonl"
SIZE = (96, 64)  # small canvases keep the test fast


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    return out, generate_scored_scenes(300, 0, out, size=SIZE)


@pytest.mark.parametrize(
    "light, small, large, expected",
    [
        ("bright", 0, 0, 10),  # an empty street in daylight
        ("dim", 0, 0, 7),
        ("dark", 0, 0, 4),
        ("bright", 1, 0, 9),
        ("bright", 0, 1, 8),
        ("bright", 1, 1, 7),
        ("dim", 2, 1, 3),
        ("bright", 3, 3, 1),  # 10 - 3 - 6 = 1
        ("dark", 1, 0, 3),
        ("dark", 0, 2, 1),  # 4 - 4 = 0, never below 1
        ("dim", 0, 3, 1),
    ],
)
def test_score_rule_gives_known_answers(light, small, large, expected):
    assert scene_score(light, small, large) == expected


def test_score_rule_rejects_unknown_light_and_negative_counts():
    with pytest.raises(ValueError, match="light"):
        scene_score("dusk", 0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        scene_score("dim", -1, 0)


def test_description_says_what_is_drawn():
    factors = {"light": "dim", "small_hazards": 1, "large_hazards": 1, "others": 1}
    assert describe(factors) == "2 hazards (1 large, 1 small), 1 other object; dim light"
    factors = {"light": "bright", "small_hazards": 0, "large_hazards": 0, "others": 2}
    assert describe(factors) == "no hazards, 2 other objects; bright light"


def test_generated_files_are_pngs_of_the_size_and_listed(scenes):
    out, records = scenes
    assert len(records) == 300
    assert [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()] == (
        records
    )
    for record in records[:50]:
        with Image.open(out / record["image"]) as image:
            assert (image.format, image.size) == ("PNG", SIZE)
    # the listed file reads back as a user's would
    assert [r["score"] for r in load_user_scores(out / "scores.jsonl")] == [
        r["score"] for r in records
    ]


def test_generation_is_deterministic_per_seed_and_differs_across_seeds(tmp_path):
    first = generate_scored_scenes(20, 3, tmp_path / "a", size=SIZE)
    again = generate_scored_scenes(20, 3, tmp_path / "b", size=SIZE)
    other = generate_scored_scenes(20, 4, tmp_path / "c", size=SIZE)
    assert first == again
    pngs = [r["image"] for r in first]
    assert all((tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes() for p in pngs)
    assert first != other
    assert sum((tmp_path / "a" / p).read_bytes() != (tmp_path / "c" / p).read_bytes() for p in pngs)
    with pytest.raises(ValueError, match="at least"):
        generate_scored_scenes(1, 0, tmp_path / "d", size=(40, 40))


def test_no_two_generated_scenes_are_the_same_image(tmp_path):
    # Simple scenes repeat (a dark street with nothing in it): drawn freely, 400 at the default
    # size held 26 repeats, which can put one image in train and test.
    records = generate_scored_scenes(400, 0, tmp_path, size=(48, 48))  # 30 repeats before
    contents = {(tmp_path / r["image"]).read_bytes() for r in records}
    assert len(records) == 400 and len(contents) == 400


def test_every_score_occurs_and_no_single_factor_gives_it(scenes):
    _, records = scenes
    histogram = Counter(r["score"] for r in records)
    assert sorted(histogram) == list(range(1, 11)), histogram
    # each factor alone leaves the score open: a model must weigh light and hazards together
    for factor in ("light", "small_hazards", "large_hazards", "others"):
        scores_by_value = {}
        for r in records:
            scores_by_value.setdefault(r[factor], set()).add(r["score"])
        assert all(len(s) > 1 for s in scores_by_value.values()), factor
    hazards = {}
    for r in records:
        hazards.setdefault(r["small_hazards"] + r["large_hazards"], set()).add(r["score"])
    assert all(len(s) > 1 for s in hazards.values())


def test_score_follows_from_the_saved_factors(scenes):
    _, records = scenes
    for r in records:
        assert r["score"] == scene_score(r["light"], r["small_hazards"], r["large_hazards"])
        assert r["description"] == describe(r)


def test_images_are_drawn_as_their_factors_say(scenes):
    out, records = scenes
    for r in records[:60]:
        pixels = np.asarray(Image.open(out / r["image"]).convert("RGB"))
        # shapes keep 2 pixels from the edge: the corner is the light
        assert tuple(pixels[0, 0]) == LIGHTS[r["light"]]
        red = (pixels == COLOURS[HAZARD]).all(axis=-1).sum()
        assert (red > 0) == (r["small_hazards"] + r["large_hazards"] > 0)
        # a large hazard alone covers more than 2x the area of the largest small square
        if r["large_hazards"]:
            assert red > 2 * (2 * 0.08 * min(SIZE)) ** 2


def test_user_example_loads_with_absolute_paths():
    records = load_user_scores(USER_DATA)
    assert [r["score"] for r in records] == [7, 6, 4, 7]
    assert all(Path(r["image"]).is_absolute() and Path(r["image"]).is_file() for r in records)
    assert records[0]["description"].endswith("bright light")
    assert records[3]["description"] is None  # optional


def _write_images(folder: Path) -> None:
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / name)
    (folder / "broken.png").write_text("not an image")


def test_user_jsonl_reports_every_broken_entry_with_its_line(tmp_path):
    _write_images(tmp_path)
    lines = [
        {"image": "a.png", "score": 7, "description": "fine"},  # 1
        {"image": "b.png"},  # 2
        {"image": "c.png", "score": 11},  # 3
        {"image": "missing.png", "score": 3},  # 4
        {"image": "broken.png", "score": 3},  # 5
        {"image": "a.png", "score": 5},  # 6: a.png again
        {"score": 2},  # 7
        {"image": "b.png", "score": 7.5},  # 8
        {"image": "c.png", "score": "7", "description": 3},  # 9: and c.png again
        {"image": "b.png", "score": True},  # 10
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\n{not json\n"  # 11
    (tmp_path / "scores.jsonl").write_text(text)
    with pytest.raises(DataError) as caught:
        load_user_scores(tmp_path / "scores.jsonl")
    message = str(caught.value)
    expected = {
        2: "missing 'score'",
        3: "score 11 is not an integer",
        4: "image 'missing.png' not found",
        5: "image 'broken.png' cannot be read",
        6: "image 'a.png' is also at line 1",
        7: "missing 'image'",
        8: "score 7.5 is not an integer",
        9: "score '7' is not an integer",
        10: "score True is not an integer",
        11: "not JSON",
    }
    for line, problem in expected.items():
        assert f"scores.jsonl, line {line}: {problem}" in message, (line, message)
    assert "line 9: description 3 is not a string" in message
    assert "line 9: image 'c.png' is also at line 3" in message
    assert "line 10: image 'b.png' is also at line 2" in message  # the first, not line 8
    assert "line 1:" not in message


def test_user_json_list_accepts_whole_floats_and_names_indices(tmp_path):
    _write_images(tmp_path)
    good = [{"image": "a.png", "score": 7.0}, {"image": "b.png", "score": 1, "extra": "kept"}]
    (tmp_path / "good.json").write_text(json.dumps(good))
    records = load_user_scores(tmp_path / "good.json")
    assert [r["score"] for r in records] == [7, 1]
    assert isinstance(records[0]["score"], int) and records[1]["extra"] == "kept"
    bad = [*good, {"image": "c.png", "score": 0}, "c.png"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(DataError) as caught:
        load_user_scores(tmp_path / "bad.json")
    assert "bad.json, index 2: score 0 is not an integer" in str(caught.value)
    assert "bad.json, index 3: expected an object" in str(caught.value)
    (tmp_path / "dict.json").write_text(json.dumps({"image": "a.png", "score": 3}))
    for name, problem in [("dict.json", "a list"), ("none.json", "no such file")]:
        with pytest.raises(DataError, match=problem):
            load_user_scores(tmp_path / name)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no entries"):
        load_user_scores(tmp_path / "empty.jsonl")


def test_splits_are_disjoint_by_image_deterministic_and_90_10():
    # 200 images, some with two records (two raters): both must land in the same split
    records = [{"image": f"img{k}.png", "score": 1 + k % 10} for k in range(200)]
    records += [{"image": f"img{k}.png", "score": 5} for k in range(0, 200, 7)]
    splits = split(records, seed=1)
    assert set(splits) == {"train", "test"}
    images = {name: {r["image"] for r in rs} for name, rs in splits.items()}
    assert not images["train"] & images["test"]
    assert (len(images["train"]), len(images["test"])) == (180, 20)
    assert sum(len(rs) for rs in splits.values()) == len(records)
    assert split(records, seed=1) == splits
    assert split(records, seed=2) != splits
    three = split(records, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=1)
    assert [len({r["image"] for r in three[s]}) for s in three] == [160, 20, 20]
    with pytest.raises(DataError, match="unknown splits"):
        split(records, {"train": 0.9, "holdout": 0.1})
    with pytest.raises(DataError, match="sum to 1"):
        split(records, {"train": 0.9, "test": 0.2})
