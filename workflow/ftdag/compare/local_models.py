"""Local vision-language models for the compare family: the model behind ftdag's own server (the
offline "API" baseline and its fine-tunes) and the locally fine-tuned model, all tiny Qwen2-VLs
built, trained and answered with the curriculum family's code (core.vlm, VisionQAData and the
shared loop), so that the compare family adds no second way of doing any of it.

    build_base_vlm(folder, 56, dims, seed=0, corpus=[prompt, *answers])
    fine_tune_vlm(folder, "train.jsonl", tuned, {"epochs": 8, "batch_size": 8, "lr": 3e-3}, 0)
    LocalVlm(tuned).answer(prompt, image_path).text   # and answer_many, in batches
    serve(state, key, server_backends(models_root, {"local-vlm": folder}, training))

Training data is the chat JSONL an API fine-tune uploads (chat_format.chat_example): the last
user message's text and first image, and the final assistant answer; the model reads that text
in `TEMPLATE` when trained and when asked. System messages (a tiny model follows none) and a
job's validation file are ignored.

The shared loop installs a SIGTERM handler, which Python allows in the main thread only, while
the server trains in a worker thread: the server's fine-tune backend therefore trains in a child
process. That also gives interruption its checkpoint: a cancelled job, or a stopping server,
sends the child SIGTERM, the loop saves a checkpoint (under the job's id) at the end of its
step, and the next server resumes the job from there.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from io import BytesIO
from pathlib import Path
from urllib.parse import quote

import torch
from PIL import Image

from ftdag.compare.batching import GatheredCalls
from ftdag.compare.chat_format import DATA_URL
from ftdag.compare.inference import Answer
from ftdag.compare.server_jobs import Backends, fine_tuned_model_id
from ftdag.compare.server_state import ApiError
from ftdag.core import io, vlm
from ftdag.core.schedule import Schedule
from ftdag.core.tracking import Tracker
from ftdag.curriculum.scenes import letterbox

TEMPLATE = "{question}\n"  # VisionQAData's default; "\n" keeps the answer's first word apart
LETTERBOX_COLOUR = (0, 0, 0)
MAX_NEW_TOKENS = 8  # a score is one or two tokens, then <eos>
STOP_SECONDS = 120.0  # how long an interrupted training child may take to checkpoint


def resolution_of(processor) -> int:
    """The square side images are letterboxed to: build_processor fixes the pixel count."""
    return math.isqrt(processor.image_processor.size["shortest_edge"])


def decode_image(url: str) -> Image.Image:
    """The image of a base64 data URL (the only kind ftdag sends or trains on)."""
    match = DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        raise ValueError(f"expected a base64 data URL, not {str(url)[:40]!r}")
    try:
        return read_image(BytesIO(base64.b64decode(match.group(2))))
    except OSError as error:  # PIL's "cannot identify image": the client's fault, a 400
        raise ValueError(f"the data URL holds no readable image ({error})") from None


def read_image(path) -> Image.Image:
    """An image file (or file object) as RGB, whatever its mode: the processor takes RGB."""
    with Image.open(path) as image:
        return image.convert("RGB")


def parts_of(content, kind: str) -> list:
    """The `kind` ("text" or "image_url") values of a message's content parts."""
    parts = [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []
    return [p.get(kind) for p in parts if p.get("type") == kind]


def message_text(content) -> str:
    """The text of a message's content, a string or a list of parts."""
    return content if isinstance(content, str) else "\n".join(map(str, parts_of(content, "text")))


def prompt_and_image(messages: list[dict]) -> tuple[str, Image.Image | None]:
    """The last user message's text and its first image (None if it has none)."""
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        raise ValueError("no user message")
    content = users[-1].get("content")
    urls = [i.get("url") for i in parts_of(content, "image_url") if isinstance(i, dict)]
    return message_text(content), decode_image(urls[0]) if urls else None


class LocalVlm:
    """A saved VLM folder as inference.py's Model: loaded once, answering greedily. Answers are
    serialized by a lock (one model on one device gains nothing from interleaved generation);
    the server's requests, one per thread, are batched while the model is busy
    (`answer_request`)."""

    def __init__(self, model_dir, name: str | None = None, device: str = "cpu"):
        self.model_dir = Path(model_dir)
        self.name = name or self.model_dir.name
        self.processor = vlm.load_processor(self.model_dir)
        self.model = vlm.load_vlm(self.model_dir, device=device).eval()
        self.resolution = resolution_of(self.processor)
        # The cache key must change when the weights do, not only when the name does.
        self.weights = io.file_digest(self.model_dir / "model.safetensors")
        self._lock = threading.Lock()
        self.gathered = GatheredCalls(self._answer_batch)

    def identity(self) -> dict:
        settings = {"template": TEMPLATE, "max_new_tokens": MAX_NEW_TOKENS}
        return {"kind": "local-vlm", "model": self.name, "weights": self.weights, **settings}

    def answer_images(self, prompt, images, batch_size=32, max_new_tokens=MAX_NEW_TOKENS):
        """Greedy answers to `prompt` about each PIL image, `batch_size` per forward pass."""
        images = [letterbox(image, self.resolution, LETTERBOX_COLOUR) for image in images]
        prompts = [vlm.IMAGE_PLACEHOLDER + TEMPLATE.format(question=prompt)] * len(images)
        with self._lock:
            return vlm.generate_vision_answers(
                self.model, self.processor, images, prompts, batch_size, max_new_tokens
            )

    def _answer_batch(self, key: tuple[str, int], images: list) -> list[str]:
        prompt, max_new_tokens = key
        return self.answer_images(prompt, images, len(images), max_new_tokens)

    def answer_request(self, prompt: str, image, max_new_tokens: int = MAX_NEW_TOKENS) -> str:
        """One request's answer, batched with the requests of other threads that arrive while
        the model is busy (same prompt and length): concurrent clients get more answers per
        second, a lone client is not made to wait."""
        return self.gathered((prompt, max_new_tokens), image)

    def answer_many(self, prompt: str, image_paths, batch_size: int = 32) -> list[Answer]:
        """Answers for many images in batches: a local model needs no per-item requests.
        Token counts are None: nothing is billed."""
        if any(path is None for path in image_paths):
            raise ValueError(f"{self.name} is a vision model: every question needs an image")
        images = [read_image(path) for path in image_paths]
        texts = self.answer_images(prompt, images, batch_size)
        return [Answer(text, None, None) for text in texts]

    def answer(self, prompt: str, image_path) -> Answer:
        return self.answer_many(prompt, [image_path], batch_size=1)[0]


def build_base_vlm(out_dir, resolution: int, dims: dict, seed: int, corpus: Iterable[str] = ()):
    """A tiny untrained VLM and its processor, saved to `out_dir`: the server's baseline. The
    words of `corpus` (give the prompts and answers it will see) become single tokens."""
    tokenizer = vlm.build_vlm_tokenizer(corpus)
    model = vlm.build_vlm(tokenizer, seed=seed, **dims)
    vlm.save_vlm(model, vlm.build_processor(tokenizer, resolution), out_dir)
    return Path(out_dir)


def read_chat_examples(path, resolution: int) -> tuple[list[dict], dict]:
    """VisionQAData records {image, question, answer} of a chat JSONL, and their letterboxed
    images by key. The key is the image's digest, not a temporary path: the data's
    fingerprint, which a checkpoint must match to be resumed, stays the same across runs."""
    records, images = [], {}
    for number, example in enumerate(io.read_jsonl(path), start=1):
        messages = example.get("messages") or []
        try:
            question, image = prompt_and_image(messages)
        except ValueError as error:
            raise ValueError(f"{path}, line {number}: {error}") from None
        answer = message_text(messages[-1].get("content"))
        if image is None or messages[-1].get("role") != "assistant" or not answer:
            raise ValueError(f"{path}, line {number}: needs an image and an assistant answer")
        key = hashlib.sha256(image.tobytes()).hexdigest()[:16]
        images[key] = letterbox(image, resolution, LETTERBOX_COLOUR)
        records.append({"image": key, "question": question, "answer": answer})
    if not records:
        raise ValueError(f"{path}: no examples")
    return records, images


class _EpochReports:
    """A tracker writer that calls report(message) with each epoch's mean loss: the tracker is
    the loop's one observer of every step, so the shared loop needs no hook of its own."""

    def __init__(self, report: Callable, schedule: Schedule):
        self.report, self.schedule, self.losses = report, schedule, []

    def log(self, metrics: dict, step: int) -> None:
        if "train/loss" not in metrics:
            return
        self.losses.append(metrics["train/loss"])
        epoch, position = self.schedule.position(step - 1)
        if position == self.schedule.steps_per_epoch - 1:
            mean = sum(self.losses) / len(self.losses)
            self.losses = []
            self.report(f"Epoch {epoch + 1}/{self.schedule.epochs}: mean training loss {mean:.4f}")

    def close(self) -> None:
        pass


def fine_tune_vlm(
    base_dir, examples_jsonl, out_dir, training, seed, report=None, checkpoint=None, device="cpu"
) -> dict:
    """Fine-tune the VLM saved in `base_dir` on a chat JSONL with the shared loop (`training`:
    TrainConfig's keys), save it to `out_dir` and return the loop's statistics. Resumes from
    `checkpoint` (default: next to out_dir) when restarted. Main thread only (see above)."""
    from ftdag.core.train import TrainConfig, train
    from ftdag.curriculum.batches import VisionQAData

    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("the shared loop handles SIGTERM: train in a main thread")
    out_dir = Path(out_dir)
    checkpoint = Path(checkpoint or out_dir.parent / f".{out_dir.name}.checkpoint.pt")
    processor = vlm.load_processor(base_dir)
    model = vlm.load_vlm(base_dir, device=device)
    records, images = read_chat_examples(examples_jsonl, resolution_of(processor))
    data = VisionQAData(processor, records, images.__getitem__, TEMPLATE)
    config = TrainConfig.from_config({**training, "seed": seed})
    schedule = Schedule(data.n_samples, 0, config.epochs, config.batch_size, seed)
    tracker = Tracker([_EpochReports(report, schedule)]) if report else None
    run_id = io.file_digest(Path(base_dir) / "model.safetensors")
    stats = train(model, data, config, checkpoint, run_id, device, False, tracker=tracker)
    vlm.save_vlm(model, processor, out_dir)
    io.write_json(out_dir / "train_stats.json", stats)
    checkpoint.unlink(missing_ok=True)
    return stats


def _train_child() -> None:
    """The child process of fine_tune_in_child: argv[1] is its task as JSON; reports and the
    result go back as JSON lines on the pipe the task names."""
    task = json.loads(sys.argv[1])
    torch.set_num_threads(task["threads"])  # as the server's process: a test's or a user's
    with os.fdopen(task["fd"], "w") as pipe:

        def send(kind: str, value) -> None:
            pipe.write(json.dumps([kind, value]) + "\n")
            pipe.flush()

        try:
            send("done", fine_tune_vlm(report=lambda m: send("report", m), **task["kwargs"]))
        except Exception:
            send("error", traceback.format_exc())


def fine_tune_in_child(report: Callable, **kwargs) -> dict:
    """fine_tune_vlm in a child process (see the module docstring), its reports passed on to
    `report`; when that raises (JobInterrupted), the child is sent SIGTERM and given time to
    checkpoint. A fresh interpreter: multiprocessing's spawn would rerun the caller's main
    script (a Snakemake script has no main guard), and fork would copy the server's threads."""
    read_end, write_end = os.pipe()
    task = {"fd": write_end, "threads": torch.get_num_threads(), "kwargs": kwargs}
    command = [sys.executable, "-c", f"import {__name__} as m; m._train_child()", json.dumps(task)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # as spawn
    process = subprocess.Popen(command, env=env, pass_fds=(write_end,))
    os.close(write_end)  # the child holds the only writing end: its exit ends our reading
    pipe = os.fdopen(read_end)
    try:
        for line in pipe:
            kind, value = json.loads(line)
            if kind == "report":
                report(value)
            elif kind == "done":
                return value
            else:
                raise RuntimeError(f"training failed in its child process:\n{value}")
        raise RuntimeError(f"training stopped, exit code {process.wait()}")
    except BaseException:  # JobInterrupted, or the server's store closed under `report`
        process.terminate()
        raise
    finally:
        # The pipe stays open meanwhile: a child whose report failed would not checkpoint.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_SECONDS)
        if process.poll() is None:
            process.kill()
        pipe.close()


def model_folder(models_root, base_models: dict, model_id: str, new: bool = False) -> Path:
    """A model id's folder: a base model's own, else under `models_root`, the id percent-encoded
    (ids hold ':'; two ids never share a folder). Unless `new`, a 404 where no weights are."""
    path = Path(base_models.get(model_id) or Path(models_root) / quote(model_id, safe=""))
    if not new and not (path / "model.safetensors").is_file():
        message = f"The model `{model_id}` has no weights at {path}"
        raise ApiError(404, message, param="model", code="model_not_found")
    return path


def job_training(job: dict, training: dict) -> dict:
    """The training settings with the job's hyperparameters where it gives them ("auto":
    the settings' own)."""
    given, settings = job.get("hyperparameters") or {}, dict(training)
    for name, key in (("n_epochs", "epochs"), ("batch_size", "batch_size")):
        if isinstance(given.get(name), int):
            settings[key] = given[name]
    if isinstance(given.get("learning_rate_multiplier"), int | float):
        settings["lr"] = training["lr"] * given["learning_rate_multiplier"]
    return settings


def server_backends(
    models_root, base_models: dict[str, str], training: dict, device: str = "cpu"
) -> Backends:
    """The server's backends over local VLMs: `base_models` maps an id to a saved folder,
    fine-tunes are saved under `models_root`, trained with `training` (TrainConfig's keys)."""
    loaded: dict[str, LocalVlm] = {}
    lock = threading.Lock()

    def load(model_id: str) -> LocalVlm:
        with lock:  # each model loaded once, however many requests ask for it at once
            if model_id not in loaded:
                folder = model_folder(models_root, base_models, model_id)
                loaded[model_id] = LocalVlm(folder, model_id, device)
            return loaded[model_id]

    def chat(model: str, messages: list[dict], settings: dict) -> str:
        try:
            prompt, image = prompt_and_image(messages)
        except ValueError as error:
            raise ApiError(400, f"Invalid messages: {error}", param="messages") from None
        if image is None:
            raise ApiError(400, f"{model} answers about an image: none given", param="messages")
        limit = settings.get("max_completion_tokens") or settings.get("max_tokens")
        return load(model).answer_request(prompt, image, limit or MAX_NEW_TOKENS)

    def fine_tune(job: dict, training_path, validation_path, report) -> dict:
        model_id = fine_tuned_model_id(job)
        stats = fine_tune_in_child(
            report,
            base_dir=str(model_folder(models_root, base_models, job["model"])),
            examples_jsonl=str(training_path),
            out_dir=str(model_folder(models_root, base_models, model_id, new=True)),
            training=job_training(job, training),
            seed=int(job.get("seed") or 0),
            # Under the job's id: a server restarted on the same state resumes the job.
            checkpoint=str(Path(models_root) / "checkpoints" / f"{job['id']}.pt"),
            device=device,
        )
        return {"fine_tuned_model": model_id, "trained_tokens": stats["tokens"]}

    return Backends(chat=chat, fine_tune=fine_tune, base_models=tuple(base_models))
