"""Requests to ftdag's local OpenAI-compatible server (server.py), parsed and checked: the
request itself, multipart uploads, typed fields, cursor pages, and the token estimate of usage.
"""

from __future__ import annotations

import email.message
import email.parser
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ftdag.compare.server_state import ApiError

CHAT_PATH = "/v1/chat/completions"
# Usage is estimated when a backend does not count: words and punctuation as tokens, and an
# image as OpenAI bills one at low detail (85) or a 1024x1024 one at high detail (765).
WORD = re.compile(r"\w+|[^\w\s]")
IMAGE_TOKENS = {"low": 85, "high": 765, "auto": 765}
MESSAGE_OVERHEAD = 3  # tokens per message and to prime the reply, as OpenAI's cookbook counts


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping
    body: bytes

    def json(self) -> dict:
        try:
            value = json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            message = f"We could not parse the JSON body of your request ({error})"
            raise ApiError(400, message) from None
        if not isinstance(value, dict):
            raise ApiError(400, "The request body must be a JSON object")
        return value

    def arg(self, name: str, default=None):
        values = self.query.get(name)
        return values[-1] if values else default


def text_tokens(text: str) -> int:
    return len(WORD.findall(text))


def prompt_tokens(messages: list) -> int:
    total = MESSAGE_OVERHEAD
    for message in messages:
        total += MESSAGE_OVERHEAD
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "image_url":
                detail = (part.get("image_url") or {}).get("detail") or "auto"
                total += IMAGE_TOKENS.get(detail, IMAGE_TOKENS["auto"])
            elif isinstance(part.get("text"), str):
                total += text_tokens(part["text"])
    return total


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """{field name: (file name or None, bytes)}, parsed by hand: the email parser may rewrite
    line endings, and an uploaded file must be stored byte for byte."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise ApiError(400, "Expected a multipart/form-data body with a boundary")
    # Each delimiter follows a line break; the first may open the body, hence the one added.
    parts = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(parts) < 3 or not parts[-1].startswith(b"--"):
        raise ApiError(400, "Malformed multipart body: no closing boundary")
    fields = {}
    for part in parts[1:-1]:
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            raise ApiError(400, "Malformed multipart body: a part without headers")
        headers = email.parser.BytesHeaderParser().parsebytes(head.lstrip(b" \t\r\n") + b"\r\n")
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ApiError(400, "Malformed multipart body: a part without a name")
        fields[name] = (headers.get_filename(), content)
    return fields


def field(body: dict, name: str, kind, required: bool = False):
    value = body.get(name)
    if value is None:
        if required:
            message = f"Missing required parameter: '{name}'."
            raise ApiError(400, message, param=name, code="missing_required_parameter")
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        message = f"Invalid type for '{name}': expected {names}, got {type(value).__name__}."
        raise ApiError(400, message, param=name, code="invalid_type")
    return value


def page(items: list[dict], request: Request, default_limit: int, max_limit: int) -> dict:
    """A cursor page: `limit` items after the one whose id is `after`."""
    try:
        limit = int(request.arg("limit", default_limit))
    except ValueError:
        limit = 0
    if not 1 <= limit <= max_limit:
        raise ApiError(400, f"limit must be an integer from 1 to {max_limit}", param="limit")
    start = 0
    after = request.arg("after")
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise ApiError(400, f"No such object to list after: {after}", param="after")
        start = ids.index(after) + 1
    data = items[start : start + limit]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    more = start + limit < len(items)
    return {"object": "list", "data": data, "has_more": more, "first_id": first, "last_id": last}
