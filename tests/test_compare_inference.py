"""Cached, concurrent inference (ftdag.compare.inference) against ftdag's own OpenAI-compatible
server, through the real `openai` client: what the server's chat backend saw is the evidence."""

import base64
import io
import threading
import time

import pytest
from PIL import Image

from ftdag.compare.chat_format import image_data_url
from ftdag.compare.inference import (
    Answer,
    AnswerCache,
    ApiModel,
    MissingApiKeyError,
    Model,
    Settings,
    ask,
)
from ftdag.compare.server import serve
from ftdag.compare.server_faults import Faults

KEY = "sk-ftdag-inference-test-5f3a9c0e7d21"
KEY_ENV = "FTDAG_TEST_INFERENCE_KEY"
MODEL = "local-vlm"
PROMPT = "Rate this image from 1 to 10."


class Backend:
    """A chat backend reading each request's image: it answers with the image's width (the
    tests' images are i+1 pixels wide) and counts the requests that reached it."""

    def __init__(self, delay=lambda width: 0.0):
        self.delay = delay
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, model, messages, settings):
        image = messages[-1]["content"][1]["image_url"]
        data = base64.b64decode(image["url"].split(",", 1)[1])
        width = Image.open(io.BytesIO(data)).width
        with self.lock:
            self.calls.append({"width": width, "messages": messages, "settings": settings})
        time.sleep(self.delay(width))
        return {"content": f"Score: {width}", "prompt_tokens": 100 + width, "completion_tokens": 3}


def make_images(folder, n, color=(200, 30, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.png"
        Image.new("RGB", (i + 1, 2), color).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def start(tmp_path, backend, faults=None):
    return serve(tmp_path / "state", KEY, {"chat": backend, "base_models": [MODEL]}, faults=faults)


def api_model(handle, **options):
    return ApiModel(MODEL, base_url=handle.base_url, api_key_env=KEY_ENV, **options)


def test_answers_in_input_order_with_the_image_reaching_the_backend(tmp_path, key):
    images = make_images(tmp_path / "images", 12)
    # Earlier items answer later, so that completion order is not input order.
    backend = Backend(delay=lambda width: (12 - width) * 0.004)
    settings = Settings(temperature=0.0, max_tokens=8, detail="low")
    with start(tmp_path, backend) as handle:
        model = api_model(handle, settings=settings)
        assert isinstance(model, Model)
        run = ask(model, PROMPT, images, concurrency=4)
    assert [a.text for a in run.answers] == [f"Score: {i + 1}" for i in range(12)]
    assert run.answers[0] == Answer("Score: 1", 101, 3, cached=False)
    assert (run.requests, run.cache_hits, run.tokens()) == (12, 0, (sum(range(101, 113)), 36))
    first = next(call for call in backend.calls if call["width"] == 1)
    user = first["messages"][-1]["content"]
    assert user[0] == {"type": "text", "text": PROMPT}
    assert user[1]["image_url"] == {"url": image_data_url(images[0]), "detail": "low"}
    assert first["settings"] == {"temperature": 0.0, "max_completion_tokens": 8}


def test_a_rerun_makes_no_requests_and_returns_the_same_answers(tmp_path, key):
    images = make_images(tmp_path / "images", 10)
    backend = Backend()
    cache = AnswerCache(tmp_path / "cache")
    with start(tmp_path, backend) as handle:
        first = ask(api_model(handle), PROMPT, images, cache=cache, concurrency=4, progress=True)
        assert (first.requests, first.cache_hits, len(backend.calls)) == (10, 0, 10)
        second = ask(api_model(handle), PROMPT, images, cache=cache, concurrency=4)
    assert (second.requests, second.cache_hits, len(backend.calls)) == (0, 10, 10)
    assert [a.text for a in second.answers] == [a.text for a in first.answers]
    assert all(a.cached for a in second.answers)
    # The tokens billed for the first run stay with the cached answers; the rerun cost nothing.
    assert second.tokens() == first.tokens() and second.tokens(cached=False) == (0, 0)


def test_temperature_or_image_bytes_change_misses_the_cache(tmp_path, key):
    images = make_images(tmp_path / "images", 6)
    backend = Backend()
    cache = AnswerCache(tmp_path / "cache")
    with start(tmp_path, backend) as handle:
        assert ask(api_model(handle), PROMPT, images, cache=cache).requests == 6
        warmer = api_model(handle, settings=Settings(temperature=0.7))
        assert ask(warmer, PROMPT, images, cache=cache).requests == 6
        assert len(backend.calls) == 12
        assert backend.calls[-1]["settings"]["temperature"] == 0.7
        Image.new("RGB", (1, 2), (0, 90, 255)).save(images[0])  # same path, other bytes
        copy = tmp_path / "renamed.png"
        copy.write_bytes(images[1].read_bytes())  # same bytes, other path: a hit
        run = ask(api_model(handle), PROMPT, [*images, copy], cache=cache)
    assert (run.requests, run.cache_hits, len(backend.calls)) == (1, 6, 13)
    assert [a.cached for a in run.answers] == [False] + [True] * 6


class RecordingFaults(Faults):
    """Faults that record each draw: every attempt the client made, the retried ones too."""

    def __post_init__(self):
        super().__post_init__()
        self.drawn = []

    def draw(self):
        kind = super().draw()
        self.drawn.append(kind)
        return kind


def test_every_item_answered_through_30_percent_faults(tmp_path, key):
    settings = {"rate_limit": 0.2, "server_error": 0.1, "retry_after": 0.01, "seed": 12}
    # Concurrency 1: items draw in input order, so the seed decides each item's attempts and the
    # test cannot flake. Seed 12: 15 faults over 12 of 30 items, at most 2 for one (under 6
    # retries), one of them a 500 (0.5 s of the client's backoff).
    expected, attempts = Faults(**settings), []
    for _ in range(30):
        kinds = [expected.draw()]
        while kinds[-1] is not None:
            kinds.append(expected.draw())
        attempts.append(kinds)
    assert {"rate_limit", "server_error"} <= {k for item in attempts for k in item}
    assert max(len(item) for item in attempts) <= 6
    images = make_images(tmp_path / "images", 30)
    backend, faults = Backend(), RecordingFaults(**settings)
    with start(tmp_path, backend, faults=faults) as handle:
        run = ask(api_model(handle, max_retries=6), PROMPT, images, concurrency=1)
    assert [a.text for a in run.answers] == [f"Score: {i + 1}" for i in range(30)]
    assert faults.drawn == [k for item in attempts for k in item]  # the retries happened
    assert len(faults.drawn) > 30 and len(backend.calls) == run.requests == 30


def test_concurrency_8_is_faster_than_1(tmp_path, key):
    images = make_images(tmp_path / "images", 24)
    backend = Backend(delay=lambda width: 0.05)
    rates = {}
    with start(tmp_path, backend) as handle:
        model = api_model(handle)
        ask(model, PROMPT, images[:8], concurrency=8)  # connections opened outside the timing
        for concurrency in (1, 8):
            begin = time.perf_counter()
            run = ask(model, PROMPT, images, concurrency=concurrency)
            rates[concurrency] = len(images) / (time.perf_counter() - begin)
            assert run.requests == 24
    print(f"requests/s: concurrency 1 {rates[1]:.1f}, concurrency 8 {rates[8]:.1f}")
    assert rates[1] < 20.5  # 50 ms a request, one at a time
    assert rates[8] > 3 * rates[1], rates


def test_a_missing_key_variable_raises_naming_it(monkeypatch):
    monkeypatch.delenv("FTDAG_TEST_ABSENT_KEY", raising=False)
    with pytest.raises(MissingApiKeyError, match="FTDAG_TEST_ABSENT_KEY"):
        ApiModel(MODEL, base_url="http://127.0.0.1:9/v1", api_key_env="FTDAG_TEST_ABSENT_KEY")
    monkeypatch.setenv("FTDAG_TEST_ABSENT_KEY", "  ")
    with pytest.raises(MissingApiKeyError, match="FTDAG_TEST_ABSENT_KEY"):
        ApiModel(MODEL, base_url="http://127.0.0.1:9/v1", api_key_env="FTDAG_TEST_ABSENT_KEY")


def test_the_cache_never_holds_the_api_key(tmp_path, key):
    images = make_images(tmp_path / "images", 5)
    cache = AnswerCache(tmp_path / "cache")
    with start(tmp_path, Backend()) as handle:
        ask(api_model(handle), PROMPT, images, cache=cache)
    files = [path for path in cache.folder.rglob("*") if path.is_file()]
    assert len(files) == 5
    for path in files:
        data = path.read_bytes()
        assert b'"text": "Score: ' in data and b'"prompt_tokens"' in data
        assert KEY.encode() not in data and KEY[-12:].encode() not in data
        assert KEY[-12:] not in path.name
