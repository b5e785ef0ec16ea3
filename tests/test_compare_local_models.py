"""The compare family's local vision-language models: a tiny base VLM that answers about an
image, fine-tuned on the chat JSONL an API fine-tune uploads, and both served by ftdag's own
OpenAI-compatible server to the real `openai` client."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openai
import pytest
import torch
from openai import OpenAI

from ftdag.compare.chat_format import chat_example, image_data_url, write_chat_jsonl
from ftdag.compare.data import generate_scored_scenes
from ftdag.compare.inference import Answer, Model
from ftdag.compare.local_models import LocalVlm, build_base_vlm, fine_tune_vlm, server_backends
from ftdag.compare.scores import extract_score
from ftdag.compare.server import serve
from ftdag.compare.server_jobs import JobInterrupted
from ftdag.compare.steps import BASE_MODEL_ID

KEY = "sk-ftdag-local-models-test"
BASE = "local-vlm-base"
PROMPT = "Rate the safety of this street scene from 1 to 10."
RESOLUTION = 56  # 4 image tokens
DIMS = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "vision_depth": 1,
}
# About 3 s on one CPU thread: 200 steps of 8 examples.
TRAINING = {"epochs": 40, "batch_size": 8, "lr": 1e-2, "checkpoint_every": 1000}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """40 generated scored scenes, small, and their chat fine-tuning JSONL."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("scenes")
    records = generate_scored_scenes(40, seed=0, out_dir=root, size=(96, 64))
    paths = [root / r["image"] for r in records]
    examples = [
        chat_example(PROMPT, str(r["score"]), p) for r, p in zip(records, paths, strict=True)
    ]
    write_chat_jsonl(examples, root / "train.jsonl")
    return {"paths": paths, "scores": [r["score"] for r in records], "jsonl": root / "train.jsonl"}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "base"
    return build_base_vlm(folder, RESOLUTION, DIMS, seed=0, corpus=[PROMPT, *map(str, range(11))])


@pytest.fixture(scope="module")
def tuned(base, scenes, tmp_path_factory):
    """The base fine-tuned on the scenes, with the messages it reported."""
    out = tmp_path_factory.mktemp("tuned") / "model"
    messages: list[str] = []
    stats = fine_tune_vlm(base, scenes["jsonl"], out, TRAINING, seed=0, report=messages.append)
    return out, stats, messages


def test_a_base_vlm_is_built_saved_loaded_and_answers_text_about_an_image(base, scenes):
    model = LocalVlm(base, name=BASE)
    assert isinstance(model, Model)
    answer = model.answer(PROMPT, scenes["paths"][0])
    assert isinstance(answer, Answer) and isinstance(answer.text, str)
    assert model.identity()["model"] == BASE and len(model.identity()["weights"]) == 16
    with pytest.raises(ValueError, match="needs an image"):
        model.answer(PROMPT, None)


def test_answer_many_equals_answering_one_by_one(tuned, scenes):
    model = LocalVlm(tuned[0])
    paths = scenes["paths"][:5]
    batched = model.answer_many(PROMPT, paths, batch_size=2)  # a last batch of one
    assert batched == [model.answer(PROMPT, path) for path in paths]
    assert len({a.text for a in batched}) > 1  # not vacuous: the images get different answers


def test_fine_tuning_lowers_the_loss_and_teaches_scores_that_follow_the_image(base, tuned, scenes):
    folder, stats, messages = tuned
    curve, per_epoch = stats["loss_curve"], len(stats["loss_curve"]) // TRAINING["epochs"]
    assert np.mean(curve[-per_epoch:]) < 0.5 * np.mean(curve[:per_epoch]), curve
    assert len(messages) == TRAINING["epochs"] and messages[-1].startswith("Epoch 40/40")

    def scores(model_dir):
        answers = LocalVlm(model_dir).answer_many(PROMPT, scenes["paths"], batch_size=40)
        return [extract_score(a.text) for a in answers]

    before, after = scores(base), scores(folder)
    assert sum(s is not None for s in before) <= 4, before  # untrained: hardly ever a score
    assert all(s is not None for s in after), after
    # Not one constant answer: the scores rise with the true ones (about 0.8 here).
    truth = scenes["scores"]
    assert np.corrcoef(after, truth)[0, 1] > 0.4, (after, truth)
    assert np.mean(np.abs(np.subtract(after, truth))) < np.mean(np.abs(np.subtract(truth, 5.5)))


def chat(client: OpenAI, model: str, image_path) -> str:
    image = {"type": "image_url", "image_url": {"url": image_data_url(image_path)}}
    content = [{"type": "text", "text": PROMPT}, image]
    response = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], max_completion_tokens=8
    )
    return response.choices[0].message.content


def test_the_server_answers_with_the_base_and_fine_tunes_it_for_the_openai_client(
    base, scenes, tmp_path
):
    image = scenes["paths"][3]
    backends = server_backends(tmp_path / "models", {BASE: str(base)}, TRAINING)
    with serve(tmp_path / "state", KEY, backends) as handle:
        client = OpenAI(base_url=handle.base_url, api_key=KEY, max_retries=0)
        assert chat(client, BASE, image) == LocalVlm(base).answer(PROMPT, image).text

        with open(scenes["jsonl"], "rb") as f:
            upload = client.files.create(file=f, purpose="fine-tune")
        hyperparameters = {"n_epochs": 20}  # the server's training has 40: the job's wins
        job = client.fine_tuning.jobs.create(
            model=BASE,
            training_file=upload.id,
            method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
            seed=1,
        )
        deadline = time.monotonic() + 120
        while job.status not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
            job = client.fine_tuning.jobs.retrieve(job.id)
        assert job.status == "succeeded", job.error
        events = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
        epochs = [m for m in events if m.startswith("Epoch ")]
        assert len(epochs) == 20 and any(m.startswith("Epoch 20/20") for m in epochs), events
        assert job.trained_tokens > 0
        assert job.fine_tuned_model in {m.id for m in client.models.list()}
        assert extract_score(chat(client, job.fine_tuned_model, image)) is not None


def test_concurrent_requests_are_batched_by_the_server_to_the_same_answers(tuned, scenes, tmp_path):
    backends = server_backends(tmp_path / "models", {"tuned": str(tuned[0])}, TRAINING)
    paths = scenes["paths"][:24]
    with serve(tmp_path / "state", KEY, backends) as handle:
        client = OpenAI(base_url=handle.base_url, api_key=KEY, max_retries=0)
        with ThreadPoolExecutor(8) as pool:
            served = list(pool.map(lambda path: chat(client, "tuned", path), paths))
    alone = [answer.text for answer in LocalVlm(tuned[0]).answer_many(PROMPT, paths)]
    assert served == alone
    assert sum(extract_score(text) is not None for text in served) > len(paths) // 2


def test_an_interrupted_fine_tune_resumes_from_its_checkpoint_to_the_same_model(
    base, scenes, tmp_path
):
    training = {"epochs": 4, "batch_size": 8, "lr": 1e-2, "checkpoint_every": 5}  # every epoch

    def stop_at_epoch_3(message):
        if message.startswith("Epoch 3/"):
            raise JobInterrupted("cancelled")

    checkpoint = tmp_path / "job.pt"
    with pytest.raises(JobInterrupted):
        fine_tune_vlm(
            base, scenes["jsonl"], tmp_path / "a", training, 0, stop_at_epoch_3, checkpoint
        )
    assert checkpoint.exists() and not (tmp_path / "a").exists()
    reports: list[str] = []
    resumed = fine_tune_vlm(
        base, scenes["jsonl"], tmp_path / "a", training, 0, reports.append, checkpoint
    )
    whole = fine_tune_vlm(base, scenes["jsonl"], tmp_path / "b", training, 0)
    assert reports[0].startswith("Epoch 3/4")  # epochs 1 and 2 were not trained again
    assert resumed["loss_curve"] == whole["loss_curve"] and not checkpoint.exists()
    weights = [(tmp_path / name / "model.safetensors").read_bytes() for name in "ab"]
    assert weights[0] == weights[1]


def test_cancelling_a_served_fine_tune_stops_its_training_at_a_checkpoint(base, scenes, tmp_path):
    backends = server_backends(tmp_path / "models", {BASE: str(base)}, TRAINING)
    with serve(tmp_path / "state", KEY, backends) as handle:
        client = OpenAI(base_url=handle.base_url, api_key=KEY, max_retries=0)
        with pytest.raises(openai.BadRequestError, match="image"):
            client.chat.completions.create(model=BASE, messages=[{"role": "user", "content": "?"}])
        with open(scenes["jsonl"], "rb") as f:
            upload = client.files.create(file=f, purpose="fine-tune")
        method = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 10_000}}}
        job = client.fine_tuning.jobs.create(model=BASE, training_file=upload.id, method=method)
        deadline = time.monotonic() + 60
        while not any(
            e.message.startswith("Epoch ") for e in client.fine_tuning.jobs.list_events(job.id)
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
        # At its next report the child is sent SIGTERM; the loop checkpoints and exits.
        checkpoint = tmp_path / "models" / "checkpoints" / f"{job.id}.pt"
        while not checkpoint.exists():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model is None
    assert list((tmp_path / "models").iterdir()) == [checkpoint.parent]  # no model was saved


def test_ftdag_serve_answers_with_a_campaigns_models_until_sigterm(base, scenes, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(base, results / "compare" / "models" / "base")
    url_file = tmp_path / "url"
    ftdag = Path(sys.executable).with_name("ftdag")  # the console script pip installed
    command = [str(ftdag), "serve", "--results", str(results), "--url-file", str(url_file)]
    process = subprocess.Popen(
        command, env={**os.environ, "OPENAI_API_KEY": KEY}, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not url_file.exists():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no URL written"
            time.sleep(0.1)
        client = OpenAI(base_url=url_file.read_text().strip(), api_key=KEY, max_retries=0)
        assert [m.id for m in client.models.list()] == [BASE_MODEL_ID]
        image = scenes["paths"][0]
        assert chat(client, BASE_MODEL_ID, image) == LocalVlm(base).answer(PROMPT, image).text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert (results / "compare" / "server").is_dir()  # its state, where the jobs keep it
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ftdag_serve_without_a_campaign_says_what_is_missing(tmp_path):
    ftdag = Path(sys.executable).with_name("ftdag")
    done = subprocess.run(
        [str(ftdag), "serve", "--results", str(tmp_path)],
        env={**os.environ, "OPENAI_API_KEY": KEY},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert f"no baseline model in {tmp_path}/compare/models/base" in done.stderr
