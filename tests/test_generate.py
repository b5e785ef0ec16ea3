"""Batched greedy generation gives `model.generate`'s answers, prompt by prompt."""

from __future__ import annotations

import pytest
import torch

from finetune_helpers import TINY_DIMS, standard_records
from ftdag.core.batches import PromptAnswerData
from ftdag.core.generate import generate_answers, generate_one_at_a_time
from ftdag.core.model import build_model
from ftdag.core.tokenizer import build_tokenizer
from ftdag.core.train import TrainConfig, train
from ftdag.exp3.tasks import TASK_NAMES

TINY = {**TINY_DIMS, "num_hidden_layers": 2}


@pytest.fixture(scope="module")
def tokenizer():
    torch.set_num_threads(1)
    return build_tokenizer()


@pytest.fixture(scope="module")
def records():
    return standard_records(TASK_NAMES, 300)


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
    assert batched == generate_one_at_a_time(model, tokenizer, prompts, 6)
    if trained:
        assert sum(a == r["answer"][:6] for a, r in zip(batched, records[240:], strict=True)) > 0
        assert any(len(a) < 6 for a in batched)  # stopped at <eos>, before the limit
