"""Batched greedy generation gives `model.generate`'s answers, prompt by prompt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from finetune_helpers import TINY_DIMS
from ftdag.core.batches import PromptAnswerData
from ftdag.core.generate import generate_answers
from ftdag.core.model import build_model
from ftdag.core.tokenizer import build_tokenizer
from ftdag.core.train import TrainConfig, train
from ftdag.exp3.tasks import TASK_NAMES, sample_examples
from ftdag.exp3.world import generate_world

TINY = {**TINY_DIMS, "num_hidden_layers": 2}


@pytest.fixture(scope="module")
def tokenizer():
    torch.set_num_threads(1)
    return build_tokenizer()


@pytest.fixture(scope="module")
def records():
    world = generate_world(seed=0, n_cities=16, n_continents=2, n_atlantis=4, map_size=100)
    examples = sample_examples(TASK_NAMES, 300, world, np.random.default_rng(0), False)
    return [e.to_record("standard") for e in examples]


def reference(model, tokenizer, prompts, max_new_tokens):
    """`model.generate`, one prompt at a time: no padding at all."""
    answers = []
    for prompt in prompts:
        ids = tokenizer(tokenizer.bos_token + prompt, add_special_tokens=False, return_tensors="pt")
        out = model.generate(
            **ids,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        answers.append(
            tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        )
    return answers


@pytest.mark.parametrize("trained", [False, True])
def test_batched_answers_are_generates_answers(tokenizer, records, tmp_path, trained):
    model = build_model(tokenizer, seed=0, **TINY)
    if trained:  # answers of their real lengths, ending in <eos>
        config = TrainConfig(epochs=3, batch_size=16, lr=1e-2, checkpoint_every=1000)
        train(
            model,
            PromptAnswerData(tokenizer, records[:240]),
            config,
            tmp_path / "c.pt",
            progress=False,
        )
    model.eval()
    prompts = [r["prompt"] for r in records[240:]]  # seven tasks: prompts of many lengths
    batched = generate_answers(
        model, tokenizer, prompts, batch_size=16, max_new_tokens=6, progress=False
    )
    assert batched == reference(model, tokenizer, prompts, 6)
    if trained:
        assert sum(a == r["answer"][:6] for a, r in zip(batched, records[240:], strict=True)) > 0
        assert any(len(a) < 6 for a in batched)  # stopped at <eos>, before the limit
