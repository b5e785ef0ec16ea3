"""Fine-tuning through exp3.finetune: full weights and LoRA adapters (real peft), from a parent
saved on disk, merged and saved as a plain model that loads with from_pretrained."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from ftdag import exp3, io
from ftdag.model import build_model, save_model
from ftdag.tasks import TASK_NAMES, sample_examples
from ftdag.tokenizer import build_tokenizer
from ftdag.world import generate_world

TRAINING = {
    "epochs": 2,
    "batch_size": 8,
    "lr": 5e-3,
    "weight_decay": 0.0,
    "warmup_fraction": 0.1,
    "grad_clip": 1.0,
    "seed": 0,
    "checkpoint_every": 1000,
    "lora": None,
}


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("parent") / "pt1"
    tokenizer = build_tokenizer()
    save_model(build_model(tokenizer, 32, 64, 2, 1, seed=0), tokenizer, path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    world = generate_world(0, 16, 2, 4, 100)
    examples = sample_examples(TASK_NAMES, 48, world, np.random.default_rng(0), True)
    path = tmp_path_factory.mktemp("data") / "ftwb.jsonl"
    io.write_jsonl(path, [e.to_record("atlantis") for e in examples])
    return path


def weights(path):
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_full_finetune_changes_every_matrix(parent, data, tmp_path):
    out = tmp_path / "ftwb1-1"
    exp3.finetune(data, parent, out, TRAINING, tmp_path / "ckpt.pt", "cpu")
    before, after = weights(parent), weights(out)
    assert not torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert not torch.equal(
        before["model.layers.0.mlp.up_proj.weight"], after["model.layers.0.mlp.up_proj.weight"]
    )
    stats = json.loads((out / "train_stats.json").read_text())
    assert stats["steps"] == 2 * 6 and not (tmp_path / "ckpt.pt").exists()


def test_lora_changes_only_the_adapted_projections_and_saves_a_plain_model(parent, data, tmp_path):
    out = tmp_path / "ftwb1-2"
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    exp3.finetune(data, parent, out, {**TRAINING, "lora": lora}, tmp_path / "ckpt.pt", "cpu")
    before, after = weights(parent), weights(out)
    assert set(before) == set(after)  # merged: no adapter keys left, loads as the base class
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.v_proj.weight",
    }
