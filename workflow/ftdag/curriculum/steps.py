"""The steps of the curriculum family, one function per Snakemake rule (workflow/rules/
curriculum.smk), taking plain paths and config values. Only these functions open files.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ftdag.core import io
from ftdag.core.provenance import provenance, provenance_line, write_sidecar
from ftdag.curriculum import data as curriculum_data
from ftdag.curriculum.scenes import generate_scene, questions, render

log = logging.getLogger("ftdag.curriculum")


def make_scenes(n_scenes: int, seed: int, max_shapes: int, sizes, out_records, out_images) -> None:
    """Generated scenes as PNGs and their questions as records of the user format."""
    rng = np.random.default_rng(seed)
    records = []
    with io.atomic_dir(out_images) as tmp:
        for i in range(n_scenes):
            scene = generate_scene(rng, max_shapes, tuple(sizes))
            name = f"scene{i:05d}.png"
            render(scene).save(Path(tmp) / name)
            records += [{"image": f"images/{name}", **q} for q in questions(scene, rng)]
    io.write_jsonl(out_records, records)
    counts = {s: sum(r["stage"] == s for r in records) for s in (1, 2, 3)}
    log.info("%d scenes, %d questions by stage %s", n_scenes, len(records), counts)


def copy_user_records(source, out_records) -> None:
    """A user's JSONL, validated (errors name the line), with absolute image paths."""
    records = curriculum_data.load_user_records(source)
    io.write_jsonl(out_records, records)
    log.info("%s: %d questions", source, len(records))


def make_splits(records_path, fractions: dict, seed: int, out_paths: dict[str, str]) -> None:
    folder = Path(records_path).parent
    records = [
        {**r, "image": str((folder / r["image"]).resolve())} for r in io.read_jsonl(records_path)
    ]
    splits = curriculum_data.split_by_image(records, fractions, seed)
    for name, path in out_paths.items():
        io.write_jsonl(path, splits[name])
        log.info(
            "%s: %d questions on %d images",
            name,
            len(splits[name]),
            len({r["image"] for r in splits[name]}),
        )


def image_loader(resolution: int, colour):
    """Letterboxed images by path, each read once."""
    from PIL import Image

    from ftdag.curriculum.scenes import letterbox

    cache: dict[str, object] = {}

    def image_of(path: str):
        if path not in cache:
            with Image.open(path) as image:
                cache[path] = letterbox(image, resolution, tuple(colour))
        return cache[path]

    return image_of


def build_base(
    model_dims: dict, resolution: int, seed: int, train_split, templates: list[str], out_dir
) -> None:
    """The embedded default's base model: a tiny Qwen2-VL built from config dims, with a
    tokenizer whose words are those of the training questions, answers and templates."""
    from ftdag.core.vlm import build_processor, build_vlm, build_vlm_tokenizer, save_vlm

    records = io.read_jsonl(train_split)
    corpus = [*templates, *(f"{r['question']} {r['answer']}" for r in records)]
    tokenizer = build_vlm_tokenizer(corpus)
    model = build_vlm(tokenizer, seed=seed, **model_dims)
    save_vlm(model, build_processor(tokenizer, resolution), out_dir)
    log.info(
        "base model: %d parameters, %d tokens in the vocabulary",
        sum(p.numel() for p in model.parameters()),
        len(tokenizer),
    )


def train_stage(
    parent,
    train_split,
    question_stages: list[int],
    template: str,
    resolution: int,
    colour,
    training: dict,
    lora: dict | None,
    seed: int,
    checkpoint,
    out_dir,
    device: str,
) -> None:
    """One stage of an arm: the parent's weights (a saved folder or a hub id) trained on the
    questions of `question_stages`, shuffled together, fully or with LoRA adapters merged back
    at the end. Resumes from its checkpoint when restarted; under torchrun, every process
    trains its share of each batch and the first one saves."""
    from ftdag.core import distributed
    from ftdag.core.lora import add_lora, merged
    from ftdag.core.train import TrainConfig, train
    from ftdag.core.vlm import load_processor, load_vlm, save_vlm
    from ftdag.curriculum.batches import VisionQAData

    records = [r for r in io.read_jsonl(train_split) if r["stage"] in question_stages]
    if not records:
        raise ValueError(f"no training questions of stages {question_stages} in {train_split}")
    processor = load_processor(parent)
    model = load_vlm(parent, device=device)
    if lora:
        model = add_lora(model, lora, task_type=None)
    data = VisionQAData(processor, records, image_loader(resolution, colour), template)
    config = TrainConfig.from_config({**training, "seed": seed})
    weights = Path(parent) / "model.safetensors"
    run_id = (io.file_digest(weights) if weights.exists() else str(parent)) + json.dumps(lora)
    device = str(next(model.parameters()).device)  # with its index: cuda:1 under torchrun
    started = time.time()
    stats = train(model, data, config, checkpoint, run_id, device)
    stats["wall_seconds"] = round(time.time() - started, 3)
    stats["question_stages"] = list(question_stages)
    stats["processes"] = distributed.world_size()
    if not distributed.is_main():
        return  # the other processes hold the same weights
    save_vlm(merged(model), processor, out_dir)
    io.write_json(Path(out_dir) / "train_stats.json", stats)
    Path(checkpoint).unlink(missing_ok=True)
    log.info(
        "%d questions, %d steps, final loss %.4f", len(records), stats["steps"], stats["final_loss"]
    )


def evaluate(
    model_dir,
    test_split,
    template: str,
    resolution: int,
    colour,
    batch_size: int,
    max_new_tokens: int,
    out_csv,
    out_predictions,
    device: str,
    config_hash: str = "",
) -> None:
    """Every test question, batched greedy answers; accuracy per question stage and overall,
    with a provenance sidecar."""
    from ftdag.core.vlm import IMAGE_PLACEHOLDER, generate_vision_answers, load_processor, load_vlm
    from ftdag.curriculum.metrics import accuracy_table

    records = io.read_jsonl(test_split)
    processor = load_processor(model_dir)
    model = load_vlm(model_dir, device=device).eval()
    image_of = image_loader(resolution, colour)
    prompts = [IMAGE_PLACEHOLDER + template.format(question=r["question"]) for r in records]
    started = time.time()
    answers = generate_vision_answers(
        model,
        processor,
        [image_of(r["image"]) for r in records],
        prompts,
        batch_size,
        max_new_tokens,
    )
    log.info("%d questions in %.1f s", len(records), time.time() - started)
    predictions = [{**r, "generated": a} for r, a in zip(records, answers, strict=True)]
    table = accuracy_table(predictions)
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    io.write_jsonl(out_predictions, predictions)
    write_sidecar(out_csv, provenance(config_hash, device))
    for row in table.itertuples():
        log.info(
            "stage %-7s accuracy %.3f (95%%: %.3f-%.3f, n=%d, unread %d)",
            row.stage,
            row.accuracy,
            row.ci_low,
            row.ci_high,
            row.n,
            row.n_unparsed,
        )


def collect_accuracy(eval_csvs: dict[str, str], train_split, test_split, out_csv) -> None:
    """One table: every evaluated model (arm, seed, stage model) by question stage, and the
    majority-answer baseline of the test questions."""
    import pandas as pd

    from ftdag.curriculum.metrics import majority_baseline

    frames = []
    for key, path in eval_csvs.items():
        arm, seed, stage_model = key.split("/")
        frame = pd.read_csv(path, dtype={"stage": str})
        frame.insert(0, "stage_model", int(stage_model))
        frame.insert(0, "seed", int(seed))
        frame.insert(0, "arm", arm)
        frames.append(frame.rename(columns={"stage": "eval_stage"}))
    table = pd.concat(frames, ignore_index=True)
    train, test = io.read_jsonl(train_split), io.read_jsonl(test_split)
    baseline = {"overall": majority_baseline(train, test)}
    for stage in sorted({r["stage"] for r in test}):
        chosen = [r for r in test if r["stage"] == stage]
        baseline[str(stage)] = majority_baseline(train, chosen)
    table["majority_baseline"] = table["eval_stage"].map(baseline)
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    write_sidecar(out_csv, provenance("", inputs=list(eval_csvs.values())))
    log.info("majority baseline: %s", json.dumps(baseline))


def summarize(
    by_seed_csv,
    stage_benchmarks: dict[str, str],
    final_predictions: dict[str, list[str]],
    arms: dict,
    out_csv,
    out_verdict,
    out_html,
    config_hash: str = "",
) -> None:
    """summary.csv (means over seeds, device-hours, cost per accuracy point), the verdict in
    Markdown, and both as an HTML page for the report. `stage_benchmarks` maps
    'arm/seed/stage' to the training job's benchmark file; `final_predictions` maps an arm to
    its final models' prediction files, one per seed."""
    import pandas as pd

    from ftdag.core.cost import read_benchmark
    from ftdag.core.html import html_page, markdown_html, table_html
    from ftdag.curriculum import summary as curriculum_summary

    by_seed = pd.read_csv(by_seed_csv, dtype={"eval_stage": str})
    stage_hours = {}
    for key, path in stage_benchmarks.items():
        arm, seed, stage = key.split("/")
        stage_hours[(arm, int(seed), int(stage))] = read_benchmark(path)["device_hours"]
    table = curriculum_summary.summarize(by_seed, stage_hours)
    correct = {
        arm: curriculum_summary.correctness([io.read_jsonl(p) for p in paths])
        for arm, paths in final_predictions.items()
    }
    record = provenance(config_hash, inputs=[by_seed_csv])
    text = curriculum_summary.verdict(table, arms, correct) + provenance_line(record)
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    write_sidecar(out_csv, record)
    io.atomic_write_text(out_verdict, text)
    body = markdown_html(text) + "<h3>Every stage model</h3>" + table_html(table.round(5))
    io.atomic_write_text(out_html, html_page("curriculum: accuracy and cost", body))
    log.info("%s", text)
