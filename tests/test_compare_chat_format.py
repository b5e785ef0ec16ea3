"""Training data for an OpenAI-compatible fine-tuning API (the compare family): chat examples
with embedded images are written as JSONL, and every problem of a file is named by file and
line before anything is uploaded."""

from __future__ import annotations

import base64
import json

import pytest
from PIL import Image

from ftdag.compare.chat_format import (
    ChatFormatError,
    chat_example,
    check_chat_jsonl,
    image_data_url,
    validate_chat_jsonl,
    write_chat_jsonl,
)

PROMPT = "Rate this street scene from 1 to 10."


def make_image(path, kind: str, mode: str = "RGB"):
    Image.new(mode, (8, 6), (40, 120, 200) if mode == "RGB" else 128).save(path, format=kind)
    return path


def text_examples(n: int) -> list[dict]:
    return [chat_example(f"Scene {k}: rate it 1 to 10.", str(k % 10 + 1)) for k in range(n)]


def write_lines(path, rows) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def test_text_and_image_examples_round_trip_with_no_problems(tmp_path):
    png = make_image(tmp_path / "a.png", "PNG")
    jpeg = make_image(tmp_path / "b.jpg", "JPEG")
    examples = text_examples(6) + [
        chat_example(PROMPT, "7", png, system="You rate street scenes.", detail="low"),
        chat_example(PROMPT, "3", jpeg),
        chat_example(PROMPT, "10", png, detail="high"),
        chat_example(PROMPT, "1", jpeg, system="You rate street scenes."),
    ]
    path = tmp_path / "out" / "train.jsonl"
    write_chat_jsonl(examples, path)
    assert validate_chat_jsonl(path) == []
    check_chat_jsonl(path)  # raises nothing
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == examples and [p.name for p in path.parent.iterdir()] == ["train.jsonl"]
    assert lines[0]["messages"] == [
        {"role": "user", "content": "Scene 0: rate it 1 to 10."},
        {"role": "assistant", "content": "1"},
    ]
    system, user, answer = lines[6]["messages"]
    assert system == {"role": "system", "content": "You rate street scenes."}
    text, image = user["content"]
    assert text == {"type": "text", "text": PROMPT}
    assert image["type"] == "image_url" and image["image_url"]["detail"] == "low"
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert answer == {"role": "assistant", "content": "7"}
    assert "detail" not in lines[7]["messages"][0]["content"][1]["image_url"]


def test_the_media_type_comes_from_the_bytes_not_the_name(tmp_path):
    png = make_image(tmp_path / "looks_like.jpg", "PNG")
    jpeg = make_image(tmp_path / "looks_like.png", "JPEG")
    webp = make_image(tmp_path / "scene.webp", "WEBP")
    for path, media in ((png, "image/png"), (jpeg, "image/jpeg"), (webp, "image/webp")):
        url = image_data_url(path)
        prefix = f"data:{media};base64,"
        assert url.startswith(prefix)
        assert base64.b64decode(url[len(prefix) :]) == path.read_bytes()
    gif = make_image(tmp_path / "scene.gif", "GIF")
    with pytest.raises(ChatFormatError, match=r"scene.gif: not a PNG, JPEG or WEBP image"):
        image_data_url(gif)
    gray = make_image(tmp_path / "gray.png", "PNG", mode="L")
    with pytest.raises(ChatFormatError, match=r"gray.png: image mode L; the API takes RGB or RGBA"):
        image_data_url(gray)
    with pytest.raises(ChatFormatError, match="detail 'medium'"):
        chat_example(PROMPT, "5", png, detail="medium")
    with pytest.raises(ChatFormatError, match="the answer must be a non-empty string"):
        chat_example(PROMPT, " ")


def good_image_example(tmp_path) -> dict:
    return chat_example(PROMPT, "6", make_image(tmp_path / "scene.png", "PNG"))


def with_image(tmp_path, role: str, url: str | None = None) -> dict:
    """An image example whose image part sits in the given role's message, or has this url."""
    example = good_image_example(tmp_path)
    user, answer = example["messages"]
    if url is not None:
        user["content"][1]["image_url"]["url"] = url
    if role == "assistant":
        answer["content"] = [{"type": "text", "text": "6"}, user["content"].pop()]
    return example


BROKEN = {
    "image in the answer": (
        lambda tmp: with_image(tmp, "assistant"),
        "message 2 (assistant) part 2 is an image; images are allowed only in user messages, "
        "not assistant",
    ),
    "unknown role": (
        lambda tmp: {
            "messages": [{"role": "bot", "content": "hi"}, *text_examples(1)[0]["messages"]]
        },
        "message 1 has role 'bot'; expected system, user or assistant",
    ),
    "empty answer": (
        lambda tmp: {
            "messages": [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": " "}]
        },
        "message 2 (assistant) has no text",
    ),
    "no final answer": (
        lambda tmp: {"messages": [{"role": "user", "content": PROMPT}]},
        "the last message is 'user', not the assistant's answer",
    ),
    "invalid base64": (
        lambda tmp: with_image(tmp, "user", "data:image/png;base64,iVBORw0K!!!!"),
        "message 1 (user) part 2 data URL is not valid base64",
    ),
    "non-image data URL": (
        lambda tmp: with_image(tmp, "user", "data:text/plain;base64,aGVsbG8="),
        "message 1 (user) part 2 data URL of type 'text/plain'; expected image/jpeg",
    ),
    "text posing as a PNG": (
        lambda tmp: with_image(tmp, "user", "data:image/png;base64,aGVsbG8gd29ybGQ="),
        "message 1 (user) part 2 not a PNG, JPEG or WEBP image",
    ),
    "JPEG declared as PNG": (
        lambda tmp: with_image(
            tmp, "user", image_data_url(make_image(tmp / "s.jpg", "JPEG")).replace("jpeg", "png")
        ),
        "message 1 (user) part 2 declared image/png but holds image/jpeg data",
    ),
    "weight 2": (
        lambda tmp: {
            "messages": [
                {"role": "user", "content": PROMPT},
                {"role": "assistant", "content": "4", "weight": 2},
            ]
        },
        "message 2 (assistant) has weight 2; expected 0 or 1",
    ),
    "unknown top-level key": (
        lambda tmp: {**text_examples(1)[0], "score": 4},
        "unknown key 'score'; an example has only 'messages'",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_broken_example_is_caught_and_named(tmp_path, case):
    make, expected = BROKEN[case]
    path = tmp_path / "train.jsonl"
    write_chat_jsonl([*text_examples(10), make(tmp_path)], path)
    problems = validate_chat_jsonl(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}, line 11: {expected}")


def test_every_broken_line_of_a_file_is_named_with_its_line(tmp_path):
    rows = text_examples(12)
    rows[1] = "{not json"
    rows[4] = {
        "messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "5"}]
    }
    rows[7] = ""
    rows[8] = {"messages": [{"role": "user", "content": PROMPT}, {"role": "assistant"}]}
    path = write_lines(tmp_path / "train.jsonl", rows)
    with pytest.raises(ChatFormatError) as error:
        check_chat_jsonl(path)
    assert validate_chat_jsonl(path) == [
        f"{path}, line 2: not JSON (Expecting property name enclosed in double quotes)",
        f"{path}, line 5: message 1 has role 'bot'; expected system, user or assistant",
        f"{path}, line 5: no user message",
        f"{path}, line 8: blank line",
        f"{path}, line 9: message 2 (assistant) content must be a string or a list of parts, "
        "not missing",
    ]
    assert str(error.value).startswith("invalid chat fine-tuning data:\n  ")
    assert f"{path}, line 9: message 2 (assistant)" in str(error.value)
    assert validate_chat_jsonl(tmp_path / "nowhere.jsonl") == [
        f"{tmp_path / 'nowhere.jsonl'}: no such file"
    ]


def test_fewer_than_ten_examples_is_a_problem(tmp_path):
    path = tmp_path / "train.jsonl"
    write_chat_jsonl(text_examples(9), path)
    assert validate_chat_jsonl(path) == [f"{path}: 9 examples; the API needs at least 10"]
    assert validate_chat_jsonl(path, min_examples=9) == []
