"""A tiny parent model and fine-tuning data, shared by the fine-tuning and DDP tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import AutoModelForCausalLM

from ftdag.core import io
from ftdag.core.model import build_model, save_model
from ftdag.core.tokenizer import build_tokenizer
from ftdag.exp3.tasks import TASK_NAMES, sample_examples
from ftdag.exp3.world import generate_world

# The model every test builds: 1 layer, 32 wide (0.03 M parameters).
TINY_DIMS = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 2,
    "num_hidden_layers": 1,
}

# Fine-tuning settings (the `exp3.finetune` keys) small enough for a test.
TINY_FINETUNE = {
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


def save_tiny_parent(path) -> Path:
    """A 1-layer, 32-wide pt1 stand-in, saved as a real checkpoint is."""
    tokenizer = build_tokenizer()
    save_model(build_model(tokenizer, seed=0, **TINY_DIMS), tokenizer, path)
    return Path(path)


def standard_records(tasks, n: int) -> list[dict]:
    """`n` samples of `tasks` in turn on the standard cities of a 16-city world."""
    world = generate_world(0, 16, 2, 4, 100)
    examples = sample_examples(tasks, n, world, np.random.default_rng(0), False)
    return [e.to_record("standard") for e in examples]


def write_finetune_data(path, n: int, cities: str) -> Path:
    """`n` samples of every task, each with an Atlantis city, labelled with `cities`."""
    world = generate_world(0, 16, 2, 4, 100)
    examples = sample_examples(TASK_NAMES, n, world, np.random.default_rng(0), True)
    io.write_jsonl(path, [e.to_record(cities) for e in examples])
    return Path(path)


def weights(path) -> dict:
    return AutoModelForCausalLM.from_pretrained(path).state_dict()
