"""The steps of the compare family, one function per Snakemake rule (workflow/rules/
compare.smk), taking plain paths and config values. Only these functions open files."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from pathlib import Path

from ftdag.core import io

log = logging.getLogger("ftdag.compare")
LOCAL = "local"  # compare.api.base_url: ftdag's own server, started by the job
BASE_MODEL_ID = "ftdag-vlm-base"  # what the local server calls the untuned tiny model


def make_data(data: dict, out_dir, out_train, out_test) -> None:
    """Scenes with a known score (or the user's records, image paths made absolute), split by
    image into train and test."""
    from ftdag.compare.data import generate_scored_scenes, load_user_scores, split

    out_dir = Path(out_dir)
    if data["source"] == "generated":
        records = generate_scored_scenes(
            data["n_scenes"], data["seed"], out_dir, size=tuple(data["image_size"])
        )
        records = [{**r, "image": str((out_dir / r["image"]).resolve())} for r in records]
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        records = load_user_scores(data["source"])
    fraction = data["test_fraction"]
    splits = split(records, {"train": 1 - fraction, "test": fraction}, data["seed"])
    io.write_jsonl(out_train, splits["train"])
    io.write_jsonl(out_test, splits["test"])
    log.info("%d records: %d train, %d test", len(records), *map(len, splits.values()))


def make_chat_files(train_split, prompt: str, fraction: float, seed: int, out_train, out_valid):
    """The fine-tunes' data in OpenAI's chat format (the image as a base64 part, the score as
    the answer), train and validation split by image, each file checked as the API would."""
    from ftdag.compare.chat_format import chat_example, check_chat_jsonl, write_chat_jsonl
    from ftdag.compare.data import split

    records = io.read_jsonl(train_split)
    parts = split(records, {"train": 1 - fraction, "validation": fraction}, seed)
    for name, path in (("train", out_train), ("validation", out_valid)):
        examples = [chat_example(prompt, str(r["score"]), r["image"]) for r in parts[name]]
        write_chat_jsonl(examples, path)
        check_chat_jsonl(path, min_examples=min(10, len(examples)))
        log.info("%s: %d examples", path, len(examples))


@contextlib.contextmanager
def api_endpoint(api: dict, server_dir, backends_factory):
    """The base URL every API step talks to, with the key in the environment variable the
    config names. `local`: ftdag's server on 127.0.0.1 for the duration (its state in
    `server_dir`, so a fine-tune survives the job; a key made up for the process when none is
    set); else the endpoint as it is. One server per state folder: a job waits for another
    job's server to finish."""
    if api["base_url"] != LOCAL:
        yield api["base_url"]
        return
    from ftdag.compare.server import serve

    variable = api["api_key_env"]
    os.environ.setdefault(variable, "ftdag-local-" + secrets.token_hex(16))
    faults = {k: v for k, v in api["faults"].items()}
    deadline = time.monotonic() + 3600
    while True:
        try:
            handle = serve(server_dir, os.environ[variable], backends_factory(), faults=faults)
            break
        except RuntimeError as error:  # the folder's lock: another job's server is up
            if "another server" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(2)
    try:
        yield handle.base_url
    finally:
        handle.stop()


def build_base(
    chat_train, prompt: str, resolution: int, dims: dict, training: dict, epochs: int, out_dir
) -> None:
    """The offline API baseline, and both fine-tunes' base: the tiny VLM after `epochs` epochs
    on the training data (with 0, an untrained model that answers nothing parseable). The
    prompt's words and the scores are single tokens of its tokenizer."""
    from ftdag.compare.local_models import build_base_vlm, fine_tune_vlm

    corpus = [prompt, *(str(score) for score in range(1, 11))]
    if not epochs:
        build_base_vlm(out_dir, resolution, dims, 0, corpus)
        return
    untrained = Path(out_dir).with_name(Path(out_dir).name + ".untrained")
    build_base_vlm(untrained, resolution, dims, 0, corpus)
    fine_tune_vlm(untrained, chat_train, out_dir, {**training, "epochs": epochs}, 0)


def local_backends(server_dir, base_dir, training: dict):
    """A factory of the local server's backends: the base model under BASE_MODEL_ID, fine-tunes
    trained with `training` (the job's epochs and learning-rate multiplier applied)."""
    from ftdag.compare.local_models import server_backends

    return lambda: server_backends(
        Path(server_dir) / "models", {BASE_MODEL_ID: str(base_dir)}, training
    )


def api_fine_tune(
    chat_train,
    chat_validation,
    base_dir,
    api: dict,
    job: dict,
    training: dict,
    base_model: str,
    run_hash: str,
    server_dir,
    out_state,
) -> None:
    """The fine-tune through the API (never paid twice: `ftdag.compare.finetune_api`); its
    state, with the new model's id, in `out_state`."""
    import openai

    from ftdag.compare.finetune_api import run_fine_tune

    settings = {**job, "model": base_model}
    with api_endpoint(api, server_dir, local_backends(server_dir, base_dir, training)) as url:
        client = openai.OpenAI(
            base_url=url, api_key=os.environ[api["api_key_env"]], timeout=api["timeout_seconds"]
        )
        # The job's state lives beside the output, not in it: Snakemake deletes a failed or
        # killed job's outputs, and this file is what keeps a rerun from paying again.
        state_path = Path(out_state).with_name(f".{Path(out_state).stem}.state.json")
        state = run_fine_tune(
            client, chat_train, chat_validation, settings, run_hash, state_path, poll_seconds=2.0
        )
    io.write_json(out_state, state)
    log.info("fine-tuned %s: %s", base_model, state["fine_tuned_model"])


def local_fine_tune(base_dir, chat_train, training: dict, seed: int, out_dir, checkpoint) -> None:
    """The local fine-tune: the same chat data, ftdag's own loop, no API."""
    from ftdag.compare.local_models import fine_tune_vlm

    stats = fine_tune_vlm(base_dir, chat_train, out_dir, training, seed, checkpoint=checkpoint)
    log.info("local fine-tune: %d steps, final loss %.4f", stats["steps"], stats["final_loss"])


def answer(
    test_split,
    spec: dict,
    model_source,
    prompt: str,
    api: dict,
    sampling: dict,
    server_dir,
    base_dir,
    training: dict,
    cache_dir,
    out_answers,
    out_run,
) -> None:
    """One model's answer for every test image, in the split's order: API models through the
    client (cached on disk, so a rerun asks nothing), a local model in batches."""
    from ftdag.compare.inference import AnswerCache, ApiModel, Settings, ask
    from ftdag.compare.local_models import LocalVlm

    records = io.read_jsonl(test_split)
    images = [r["image"] for r in records]
    started = time.time()
    if spec["kind"] == "local":
        answers = LocalVlm(model_source, spec["name"]).answer_many(prompt, images)
        run = {"requests": 0, "cache_hits": 0}
    else:
        model_id = model_source
        if spec["kind"] == "api_finetune":  # the state file of its fine-tune names the model
            import json

            model_id = json.loads(Path(model_source).read_text())["fine_tuned_model"]
        settings = Settings(temperature=sampling["temperature"], max_tokens=sampling["max_tokens"])
        backends = local_backends(server_dir, base_dir, training)
        with api_endpoint(api, server_dir, backends) as url:
            model = ApiModel(
                model_id,
                url,
                api["api_key_env"],
                settings,
                api["timeout_seconds"],
                api["max_retries"],
            )
            asked = time.time()
            result = ask(model, prompt, images, AnswerCache(cache_dir), api["concurrency"], True)
            ask_seconds = time.time() - asked  # the requests alone, not the server's start
        answers = result.answers
        run = {
            "requests": result.requests,
            "cache_hits": result.cache_hits,
            "model": model_id,
            "concurrency": api["concurrency"],
            "ask_seconds": round(ask_seconds, 3),
        }
    io.write_jsonl(
        out_answers,
        (
            {
                "image": r["image"],
                "score": r["score"],
                "answer": a.text,
                "prompt_tokens": a.prompt_tokens,
                "completion_tokens": a.completion_tokens,
                "cached": a.cached,
            }
            for r, a in zip(records, answers, strict=True)
        ),
    )
    io.write_json(out_run, {**run, "answers": len(answers), "seconds": time.time() - started})
    log.info("%s: %d answers, %s", spec["name"], len(answers), run)
