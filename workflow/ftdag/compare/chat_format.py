"""Training data for an OpenAI-compatible fine-tuning API: JSONL of chat examples
({"messages": [system?, user, assistant]}), the assistant message being the target, an image
embedded in the user message as a base64 data URL.

`validate_chat_jsonl` names every problem of a file at once, each with its file and line, so
that a file is fixed in one pass before it is uploaded (an upload rejected or an example
skipped costs a paid job, or hours). It checks only what ftdag writes, strictly:

- an example has the one key "messages": tools and function calls are not used here, and an
  unknown key (a stray ground-truth "score", say) means the file was written for something else;
- a message has role, content, and optionally name, or weight (assistant only, 0 or 1);
- images are data URLs: a fetched URL cannot be checked here, and the file stays
  self-contained; the API's image limits (type, mode, size, count) are checked from the bytes.
Token counts (model-dependent) are not checked.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from pathlib import Path

from PIL import Image

from ftdag.core.io import write_jsonl

ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = {"role", "content", "name", "weight"}
DETAILS = ("low", "high", "auto")
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp")
IMAGE_MODES = ("RGB", "RGBA")
# OpenAI's vision fine-tuning limits ("10 MB" read as the smaller, decimal value).
MAX_IMAGE_BYTES = 10_000_000
MAX_IMAGES_PER_EXAMPLE = 10
MAX_IMAGE_EXAMPLES = 50_000
MIN_EXAMPLES = 10
DATA_URL = re.compile(r"data:([^;,]*);base64,(.*)", re.DOTALL)
MAX_PROBLEMS_SHOWN = 20


class ChatFormatError(ValueError):
    pass


def media_type(data: bytes) -> str | None:
    """The media type that a file's first bytes show: PNG, JPEG or WEBP, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_problems(data: bytes, declared: str | None = None) -> list[str]:
    """Why the API would refuse these image bytes (nothing: []). Only the header is read:
    decoding every image of a large file would take minutes."""
    kind = media_type(data)
    if kind is None:
        return [f"not a PNG, JPEG or WEBP image (its bytes start {data[:8]!r})"]
    problems = []
    if declared is not None and declared != kind:
        problems.append(f"declared {declared} but holds {kind} data")
    if len(data) > MAX_IMAGE_BYTES:
        problems.append(f"image of {len(data):,} bytes; the API takes at most {MAX_IMAGE_BYTES:,}")
    try:
        with Image.open(io.BytesIO(data)) as image:
            mode = image.mode
    except (OSError, SyntaxError, ValueError) as error:
        return [*problems, f"{kind} data that cannot be read ({error})"]
    if mode not in IMAGE_MODES:
        problems.append(f"image mode {mode}; the API takes RGB or RGBA images only")
    return problems


def image_data_url(path) -> str:
    """A base64 data URL of a PNG, JPEG or WEBP file, its type read from its bytes (an
    extension can lie); a ChatFormatError if the API would refuse the image."""
    data = Path(path).read_bytes()
    problems = image_problems(data)
    if problems:
        raise ChatFormatError(f"{path}: " + "; ".join(problems))
    return f"data:{media_type(data)};base64,{base64.b64encode(data).decode('ascii')}"


def chat_example(
    prompt: str,
    answer: str,
    image_path=None,
    system: str | None = None,
    detail: str | None = None,
) -> dict:
    """One training example: an optional system message, the user's prompt (with the image
    after the text when there is one) and the assistant's answer, the target."""
    if detail is not None and (image_path is None or detail not in DETAILS):
        raise ChatFormatError(f"detail {detail!r} needs an image and one of {', '.join(DETAILS)}")
    if not (isinstance(answer, str) and answer.strip()):
        raise ChatFormatError(f"the answer must be a non-empty string, not {answer!r}")
    messages = [{"role": "system", "content": system}] if system is not None else []
    if image_path is None:
        content = prompt
    else:
        image = {"url": image_data_url(image_path)}
        if detail is not None:
            image["detail"] = detail
        content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": image}]
    messages += [{"role": "user", "content": content}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def write_chat_jsonl(examples, path) -> None:
    """Write examples one a line, atomically: an interrupted job leaves no half file behind."""
    write_jsonl(path, examples)


def data_url_problems(url) -> list[str]:
    """Why an image part's URL is not an embedded image the API accepts (nothing: [])."""
    if not isinstance(url, str):
        return [f"image url must be a string, not {type(url).__name__}"]
    if not url.startswith("data:"):
        return [f"image url {url[:40]!r} is not a data URL; ftdag embeds every image"]
    match = DATA_URL.fullmatch(url)
    if match is None:
        return ["malformed data URL; expected data:image/<type>;base64,<data>"]
    declared, payload = match.groups()
    if declared not in MEDIA_TYPES:
        return [f"data URL of type {declared!r}; expected {', '.join(MEDIA_TYPES)}"]
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        return [f"data URL is not valid base64 ({error})"]
    if not data:
        return ["data URL holds no data"]
    return image_problems(data, declared)


def part_problems(part, role: str) -> tuple[list[str], int]:
    """What is wrong with one content part, and the number of images it holds."""
    if not isinstance(part, dict):
        return [f"is {type(part).__name__}, not an object with a 'type'"], 0
    kind = part.get("type")
    if kind == "text":
        extra = sorted(set(part) - {"type", "text"})
        problems = [f"has unknown key {key!r}" for key in extra]
        if not isinstance(part.get("text"), str):
            problems.append(f"text must be a string, not {part.get('text')!r}")
        return problems, 0
    if kind != "image_url":
        return [f"has type {kind!r}; expected text or image_url"], 0
    if role != "user":
        return [f"is an image; images are allowed only in user messages, not {role}"], 1
    image = part.get("image_url")
    extra = sorted(set(part) - {"type", "image_url"})
    if not isinstance(image, dict):
        return [f"image_url must be an object with a 'url', not {image!r}"], 1
    extra += sorted(set(image) - {"url", "detail"})
    problems = [f"has unknown key {key!r}" for key in extra]
    if "detail" in image and image["detail"] not in DETAILS:
        problems.append(f"has detail {image['detail']!r}; expected {', '.join(DETAILS)}")
    return problems + data_url_problems(image.get("url")), 1


def content_problems(content, role: str) -> tuple[list[str], int, bool]:
    """What is wrong with a message's content, its number of images, and whether it has
    any text."""
    if isinstance(content, str):
        return [], 0, bool(content.strip())
    if not isinstance(content, list):
        shown = "missing" if content is None else type(content).__name__
        return [f"content must be a string or a list of parts, not {shown}"], 0, False
    problems, images, text = [], 0, False
    for number, part in enumerate(content, start=1):
        found, count = part_problems(part, role)
        problems += [f"part {number} {p}" for p in found]
        images += count
        text = text or (isinstance(part, dict) and str(part.get("text") or "").strip() != "")
    return problems, images, text


def message_problems(message, number: int) -> tuple[list[str], int]:
    """What is wrong with one message, each problem naming it, and its number of images."""
    if not isinstance(message, dict):
        return [f"message {number} is {type(message).__name__}, not an object"], 0
    role = message.get("role")
    if role not in ROLES:
        return [f"message {number} has role {role!r}; expected system, user or assistant"], 0
    name = f"message {number} ({role})"
    problems = [f"{name} has unknown key {key!r}" for key in sorted(set(message) - MESSAGE_KEYS)]
    if "weight" in message:
        weight = message["weight"]
        if role != "assistant":
            problems.append(f"{name} has a weight; only assistant messages take one")
        elif type(weight) is not int or weight not in (0, 1):
            problems.append(f"{name} has weight {weight!r}; expected 0 or 1")
    if "name" in message and not isinstance(message["name"], str):
        problems.append(f"{name} has name {message['name']!r}; expected a string")
    found, images, has_text = content_problems(message.get("content"), role)
    problems += [f"{name} {p}" for p in found]
    if not found and not has_text and (role != "user" or not images):
        problems.append(f"{name} has no text")
    return problems, images


def example_problems(record) -> tuple[list[str], int]:
    """What is wrong with one example (nothing: []), and its number of images."""
    if not isinstance(record, dict):
        return [f"expected an object with 'messages', not {type(record).__name__}"], 0
    problems = [
        f"unknown key {key!r}; an example has only 'messages'"
        for key in sorted(set(record) - {"messages"})
    ]
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, f"'messages' must be a non-empty list, not {messages!r}"], 0
    images = 0
    for number, message in enumerate(messages, start=1):
        found, count = message_problems(message, number)
        problems += found
        images += count
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if "user" not in roles:
        problems.append("no user message")
    if roles[-1] != "assistant":
        problems.append(f"the last message is {roles[-1]!r}, not the assistant's answer")
    weights = [
        m.get("weight", 1) for m in messages if isinstance(m, dict) and m.get("role") == "assistant"
    ]
    if weights and all(w == 0 for w in weights):
        problems.append("every assistant message has weight 0; the example trains nothing")
    if images > MAX_IMAGES_PER_EXAMPLE:
        problems.append(f"{images} images; the API takes at most {MAX_IMAGES_PER_EXAMPLE}")
    return problems, images


def validate_chat_jsonl(path, min_examples: int = MIN_EXAMPLES) -> list[str]:
    """Every problem of a chat JSONL file, each as 'file, line N: ...' (nothing: [])."""
    if not Path(path).is_file():
        return [f"{path}: no such file"]
    problems, examples, with_images = [], 0, 0
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, start=1):
            where = f"{path}, line {number}"
            examples += 1
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                problems.append(f"{where}: not UTF-8 text")
                continue
            except json.JSONDecodeError as error:
                problems.append(
                    f"{where}: " + ("blank line" if not raw.strip() else f"not JSON ({error.msg})")
                )
                continue
            found, images = example_problems(record)
            problems += [f"{where}: {p}" for p in found]
            with_images += images > 0
    if examples < min_examples:
        problems.append(f"{path}: {examples} examples; the API needs at least {min_examples}")
    if with_images > MAX_IMAGE_EXAMPLES:
        problems.append(
            f"{path}: {with_images:,} examples with images; the API takes at most "
            f"{MAX_IMAGE_EXAMPLES:,}"
        )
    return problems


def check_chat_jsonl(path, min_examples: int = MIN_EXAMPLES) -> None:
    """Stop with a ChatFormatError listing the file's problems, if it has any."""
    problems = validate_chat_jsonl(path, min_examples)
    if problems:
        more = problems[MAX_PROBLEMS_SHOWN:]
        shown = problems[:MAX_PROBLEMS_SHOWN] + ([f"... and {len(more)} more"] if more else [])
        raise ChatFormatError("invalid chat fine-tuning data:\n  " + "\n  ".join(shown))
