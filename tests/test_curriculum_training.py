"""The shared loop trains a tiny vision-language model on scene questions: what a batch is
(images and questions through the processor, loss on the answer) is the loop's parameter."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch

from ftdag.core.batches import IGNORE
from ftdag.core.train import TrainConfig, train
from ftdag.core.vlm import build_processor, build_vlm, build_vlm_tokenizer
from ftdag.curriculum.batches import VisionQAData
from ftdag.curriculum.scenes import generate_scene, letterbox, questions, render

RESOLUTION = 56


def scene_records(n_scenes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images, records = {}, []
    for i in range(n_scenes):
        scene = generate_scene(rng)
        images[f"scene{i}"] = letterbox(render(scene), RESOLUTION)
        for q in questions(scene, rng):
            if q["stage"] == 1:
                records.append({"image": f"scene{i}", **q})
    return images, records


def test_a_batch_labels_only_the_answer_and_the_loop_learns_stage_1(tmp_path):
    torch.set_num_threads(1)
    images, records = scene_records(24)
    tokenizer = build_vlm_tokenizer()
    processor = build_processor(tokenizer, RESOLUTION)
    data = VisionQAData(processor, records, images.__getitem__)
    batch = data.batch([0, 1, 2])
    for row in range(3):
        labelled = batch["labels"][row][batch["labels"][row] != IGNORE].tolist()
        answer = tokenizer.decode(labelled[:-1])
        assert answer == records[row]["answer"] and labelled[-1] == tokenizer.eos_token_id
    assert batch["pixel_values"].shape[0] == 3 * (RESOLUTION // 14) ** 2

    model = build_vlm(
        tokenizer,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        num_hidden_layers=2,
        vision_depth=1,
        seed=0,
    )
    config = TrainConfig(epochs=6, batch_size=8, lr=5e-3, seed=0)
    stats = train(model, data, config, tmp_path / "c.pt", progress=False)
    losses = stats["loss_curve"]
    assert stats["steps"] == 6 * -(-len(records) // 8)
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses


TINY_VLM = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 1,
    "vision_depth": 1,
}


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory):
    """Scenes, a train split and a base model on disk, as the rules leave them."""
    from ftdag.curriculum import steps

    root = tmp_path_factory.mktemp("stage")
    steps.make_scenes(16, 0, 3, (20, 36), root / "records.jsonl", root / "images")
    fractions = {"train": 0.75, "validation": 0.0, "test": 0.25}
    paths = {s: str(root / f"{s}.jsonl") for s in fractions}
    steps.make_splits(root / "records.jsonl", fractions, 0, paths)
    steps.build_base(TINY_VLM, RESOLUTION, 0, paths["train"], ["Q: {question}\nA: "], root / "base")
    return root


def run_stage(root, out, lora=None, interrupt_at=None, monkeypatch=None, calls=None):
    """One stage; with `monkeypatch`, batches built are counted into `calls`, and a SIGTERM
    (preemption) arrives while batch `interrupt_at` is built."""
    from ftdag.curriculum import steps

    if monkeypatch is not None:
        original = VisionQAData.batch

        def batch(self, indices):
            calls.append(1)
            if len(calls) == interrupt_at:
                os.kill(os.getpid(), signal.SIGTERM)
            return original(self, indices)

        monkeypatch.setattr(VisionQAData, "batch", batch)
    steps.train_stage(
        root / "base",
        root / "train.jsonl",
        [1, 2, 3],
        "Q: {question}\nA: ",
        RESOLUTION,
        [0, 0, 0],
        {"lr": 3e-3, "epochs": 2, "batch_size": 8, "checkpoint_every": 1000},
        lora,
        0,
        root / f"{out}.pt",
        root / out,
        "cpu",
    )


def weights(path):
    from safetensors.torch import load_file

    return load_file(path / "model.safetensors")


def test_a_stage_resumes_from_its_checkpoint_to_the_same_weights(stage_inputs, monkeypatch):
    torch.set_num_threads(1)
    run_stage(stage_inputs, "whole")
    with pytest.raises(SystemExit) as stop:
        run_stage(stage_inputs, "resumed", interrupt_at=3, monkeypatch=monkeypatch, calls=[])
    assert stop.value.code == 143 and (stage_inputs / "resumed.pt").exists()
    assert not (stage_inputs / "resumed").exists()
    calls = []
    run_stage(stage_inputs, "resumed", monkeypatch=monkeypatch, calls=calls)
    stats = json.loads((stage_inputs / "resumed" / "train_stats.json").read_text())
    assert len(calls) == stats["steps"] - 3  # the three steps before the stop were not redone
    whole, resumed = weights(stage_inputs / "whole"), weights(stage_inputs / "resumed")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_a_lora_stage_saves_a_plain_model_that_only_its_adapters_changed(stage_inputs):
    from ftdag.core.vlm import load_vlm

    torch.set_num_threads(1)
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    run_stage(stage_inputs, "lora", lora=lora)
    base, tuned = weights(stage_inputs / "base"), weights(stage_inputs / "lora")
    assert set(base) == set(tuned)  # merged: no adapter tensors left
    changed = {k for k in base if not torch.equal(base[k], tuned[k])}
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed)
    assert not any("visual" in k for k in changed)  # the vision tower has no q_proj
    load_vlm(stage_inputs / "lora")  # loads as a plain model


@pytest.mark.slow
def test_two_processes_train_a_stage_to_the_weights_of_one(stage_inputs):
    """The real-scale path gives a stage 2 GPUs: two DDP processes (gloo here) on halves of
    each batch make the same steps as one process on the whole batch."""
    from ftdag.core.distributed import launch

    kwargs = {
        "parent": str(stage_inputs / "base"),
        "train_split": str(stage_inputs / "train.jsonl"),
        "question_stages": [1, 2, 3],
        "template": "Q: {question}\nA: ",
        "resolution": RESOLUTION,
        "colour": [0, 0, 0],
        "training": {"lr": 3e-3, "epochs": 2, "batch_size": 8, "checkpoint_every": 1000},
        "lora": None,
        "seed": 0,
        "device": "cpu",
    }
    for name, processes in (("one_process", 1), ("two_processes", 2)):
        out = stage_inputs / name
        launch(
            "ftdag.curriculum.steps:train_stage",
            {**kwargs, "checkpoint": str(out) + ".pt", "out_dir": str(out)},
            processes=processes,
            threads=1,
        )
    one, two = weights(stage_inputs / "one_process"), weights(stage_inputs / "two_processes")
    assert all(torch.allclose(one[k], two[k], atol=1e-4) for k in one)
    stats = json.loads((stage_inputs / "two_processes" / "train_stats.json").read_text())
    assert stats["processes"] == 2
