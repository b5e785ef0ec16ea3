"""Batched greedy generation: the evaluation engine every family shares.

Loading a model and importing torch cost seconds, so a job evaluates all of a model's prompts
with the model loaded once, many prompts per forward pass.
"""

from __future__ import annotations

import sys

import torch
from tqdm import tqdm


@torch.inference_mode()
def generate_answers(
    model,
    tokenizer,
    prompts: list[str],
    batch_size: int = 256,
    max_new_tokens: int = 8,
    progress: bool = True,
) -> list[str]:
    """Greedy continuation of each prompt (after <bos>), up to <eos>, as text."""
    device = next(model.parameters()).device
    # Similar lengths in a batch waste less work on padding; answers go back in input order.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[str] = [""] * len(prompts)
    batches = range(0, len(order), batch_size)
    for start in tqdm(batches, desc="generate", disable=not progress, file=sys.stderr):
        index = order[start : start + batch_size]
        batch = tokenizer(
            [tokenizer.bos_token + prompts[i] for i in index],
            add_special_tokens=False,
            padding=True,
            return_tensors="pt",
        ).to(device)
        output = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for i, text in zip(index, texts, strict=True):
            answers[i] = text
    return answers
