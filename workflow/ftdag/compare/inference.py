"""Cached, concurrent inference for the compare family: every model answers through one interface.

    model = ApiModel("gpt-4o-mini", base_url=url, settings=Settings(temperature=0, max_tokens=16))
    run = ask(model, "Rate this image from 1 to 10.", image_paths, cache=AnswerCache(folder),
              concurrency=8, progress=True)
    run.answers[i].text, .prompt_tokens, .completion_tokens, .cached;  run.requests, run.cache_hits

A model is anything with `name`, `identity()` and `answer(prompt, image_path) -> Answer` (the
`Model` protocol): `ApiModel` for an OpenAI-compatible endpoint (the API itself, or ftdag's own
server), and the local model, added later, the same way. `ask` handles what every model shares:
the disk cache, bounded concurrency, input order, progress and the request/hit counts.

Retries are the `openai` client's own (`max_retries`): exponential backoff with jitter, honouring
Retry-After, on connection errors, timeouts, 408, 409, 429 and 5xx. No second layer is added: it
would multiply the attempts (7 x 7 per item) and its waits would ignore the client's. An item
still failing after them stops the run with that error; the answers made so far are cached, so
a rerun resumes where it stopped.

The cache key is a hash of the model's identity (its id and every request setting that shapes
the answer), the prompt and the image's bytes (their SHA-256: a renamed image still hits, an
edited one misses). It never holds the API key, nor the endpoint's URL: ftdag's local server
takes a new port each run, and a rerun must still hit. Give endpoints that share model ids
(the API and a local server) separate cache folders.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from tqdm import tqdm

from ftdag.compare.chat_format import image_data_url
from ftdag.core.io import write_json

CACHE_VERSION = 1  # bump when the stored record or the key's fields change


class MissingApiKeyError(RuntimeError):
    """The environment variable that should hold an API key is unset or empty."""


@dataclass(frozen=True)
class Answer:
    """One model answer. Tokens are the response's usage (None where it reported none); a cached
    answer keeps the tokens its request was billed for."""

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cached: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything of a request, besides prompt and image, that shapes its answer: all of it is
    in the cache key. None: not sent (the endpoint's default)."""

    temperature: float | None = 0.0
    max_tokens: int | None = 16
    top_p: float | None = None
    seed: int | None = None
    detail: str | None = None  # the image part's "low", "high" or "auto"
    system: str | None = None  # a system message before the prompt


@runtime_checkable
class Model(Protocol):
    """What `ask` needs of a model. `answer` is called from several threads at once (up to
    `concurrency`); a model that cannot run concurrently (one GPU) is asked with concurrency 1."""

    name: str

    def identity(self) -> dict:
        """JSON-able: what, besides prompt and image, makes this model's answers differ."""
        ...

    def answer(self, prompt: str, image_path: str | Path | None) -> Answer: ...


def api_key_from(variable: str) -> str:
    """The key held by the environment variable `variable`; a clear error naming it if none."""
    key = os.environ.get(variable, "")
    if not key.strip():
        raise MissingApiKeyError(
            f"no API key: the environment variable {variable} is unset or empty "
            f"(set it, or give the model another api_key_env)"
        )
    return key.strip()


class ApiModel:
    """A model behind an OpenAI-compatible chat completions endpoint, through the `openai`
    client. `base_url` None is OpenAI's API; the key is read from `api_key_env` now, so that a
    missing key stops a run before its first request."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        settings: Settings | None = None,
        timeout: float = 60.0,
        max_retries: int = 6,
    ):
        import openai  # here: the local model's users need not import the client

        self.name = model
        self.settings = settings or Settings()
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key_from(api_key_env),
            timeout=timeout,
            max_retries=max_retries,
        )

    def identity(self) -> dict:
        return {"kind": "openai-chat", "model": self.name, "settings": asdict(self.settings)}

    def messages(self, prompt: str, image_path) -> list[dict]:
        """The chat: an optional system message, then the prompt with the image after it."""
        system = self.settings.system
        messages = [] if system is None else [{"role": "system", "content": system}]
        content: str | list = prompt
        if image_path is not None:
            image = {"url": image_data_url(image_path)}
            if self.settings.detail is not None:
                image["detail"] = self.settings.detail
            content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": image}]
        return [*messages, {"role": "user", "content": content}]

    def answer(self, prompt: str, image_path) -> Answer:
        s = self.settings
        # max_completion_tokens, not max_tokens: the latter is deprecated, and refused by
        # reasoning models.
        sampling = {
            "temperature": s.temperature,
            "max_completion_tokens": s.max_tokens,
            "top_p": s.top_p,
            "seed": s.seed,
        }
        sampling = {k: v for k, v in sampling.items() if v is not None}
        response = self.client.chat.completions.create(
            model=self.name, messages=self.messages(prompt, image_path), **sampling
        )
        message = response.choices[0].message
        usage = response.usage
        return Answer(
            # A refusal is kept as the answer: the family counts it as unparsed, not lost.
            text=message.content or getattr(message, "refusal", None) or "",
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )


def image_digest(image_path) -> str | None:
    """SHA-256 of the image's bytes (None: no image)."""
    if image_path is None:
        return None
    return hashlib.sha256(Path(image_path).read_bytes()).hexdigest()


class AnswerCache:
    """Answers on disk, one JSON file each under `folder`, written atomically: a run killed
    half-way leaves whole answers only, and its rerun asks only for the rest."""

    def __init__(self, folder):
        self.folder = Path(folder)

    @staticmethod
    def key(model: Model, prompt: str, digest: str | None) -> str:
        parts = {"v": CACHE_VERSION, "model": model.identity(), "prompt": prompt, "image": digest}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"  # 256 subfolders: no huge directory

    def get(self, key: str) -> Answer | None:
        try:
            record = json.loads(self.path(key).read_text())
        except (FileNotFoundError, ValueError):
            return None  # absent, or (written by hand) unreadable: asked again and rewritten
        return Answer(record["text"], record["prompt_tokens"], record["completion_tokens"], True)

    def put(self, key: str, answer: Answer, about: dict) -> None:
        """Store the answer, with `about` (model identity, prompt, image digest) for a reader."""
        record = {k: v for k, v in asdict(answer).items() if k != "cached"}
        write_json(self.path(key), {**record, **about})


@dataclass
class Run:
    """The answers, in input order, and how they were obtained. `requests` counts the model's
    calls (a call's client retries count once); `cache_hits` the answers read from the cache."""

    answers: list[Answer] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(not a.cached for a in self.answers)

    @property
    def cache_hits(self) -> int:
        return sum(a.cached for a in self.answers)

    def tokens(self, cached: bool | None = None) -> tuple[int, int]:
        """(prompt, completion) tokens summed over the answers: all of them (None), or only the
        cached ones (True) or those requested in this run (False, what this run cost)."""
        chosen = [a for a in self.answers if cached is None or a.cached == cached]
        return (
            sum(a.prompt_tokens or 0 for a in chosen),
            sum(a.completion_tokens or 0 for a in chosen),
        )


def answer_one(model: Model, prompt: str, image_path, cache: AnswerCache | None) -> Answer:
    """One item: from the cache, else from the model (and then into the cache)."""
    if cache is None:
        return model.answer(prompt, image_path)
    digest = image_digest(image_path)
    key = cache.key(model, prompt, digest)
    hit = cache.get(key)
    if hit is not None:
        return hit
    answer = model.answer(prompt, image_path)
    cache.put(key, answer, {"model": model.identity(), "prompt": prompt, "image_sha256": digest})
    return answer


def ask(
    model: Model,
    prompt: str,
    images: Sequence,
    cache: AnswerCache | None = None,
    concurrency: int = 4,
    progress: bool = False,
) -> Run:
    """Ask `model` `prompt` about each image (a path, or None for the prompt alone), up to
    `concurrency` at once. The first item failing after the client's retries stops the run
    with its error; queued items are not started, and finished ones stay cached."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    answers: list[Answer | None] = [None] * len(images)
    with (
        ThreadPoolExecutor(max_workers=concurrency) as pool,
        tqdm(total=len(images), desc=model.name, disable=not progress) as bar,
    ):
        futures = {
            pool.submit(answer_one, model, prompt, image, cache): index
            for index, image in enumerate(images)
        }
        for future in futures:
            future.add_done_callback(lambda _: bar.update())
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()  # an item failed: do not start the rest
        for future in done:
            answers[futures[future]] = future.result()  # raises the failure
    return Run(answers)
