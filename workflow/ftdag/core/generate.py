"""Batched greedy generation: the evaluation engine every family shares.

Loading a model and importing torch cost seconds, so a job evaluates all of a model's prompts
with the model loaded once, many prompts per forward pass. Decoding is a plain greedy loop over
the model's key/value cache: the answers are those of `model.generate(do_sample=False)` (a test
checks it), without its per-step machinery, which dominates for short answers of small models.
"""

from __future__ import annotations

import inspect
import sys

import torch
from tqdm import tqdm


def _cache_keyword(model) -> str:
    """transformers 5.2x names the key/value cache `cache`; earlier releases `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _cache_of(output):
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


@torch.inference_mode()
def greedy_decode(model, input_ids, attention_mask, max_new_tokens: int, eos_id: int, pad_id: int):
    """New token ids [batch, <= max_new_tokens] of left-padded prompts, greedily; a sequence
    that produced <eos> is padded after it, and decoding stops when every one has."""
    # Positions count real tokens only, as `generate` numbers left-padded prompts.
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    output = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
    )
    cache, position, keyword = _cache_of(output), positions[:, -1:], _cache_keyword(model)
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    new_tokens = []
    for step in range(max_new_tokens):
        token = output.logits[:, -1].argmax(dim=-1)
        token = token.masked_fill(finished, pad_id)
        new_tokens.append(token)
        finished |= token == eos_id
        if bool(finished.all()) or step == max_new_tokens - 1:
            break
        attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], 1)
        position = position + 1
        output = model(
            input_ids=token[:, None],
            attention_mask=attention_mask,
            position_ids=position,
            use_cache=True,
            **{keyword: cache},
        )
        cache = _cache_of(output)
    return torch.stack(new_tokens, dim=1)


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
        new_tokens = greedy_decode(
            model,
            batch["input_ids"],
            batch["attention_mask"],
            max_new_tokens,
            tokenizer.eos_token_id,
            tokenizer.pad_token_id,
        )
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for i, text in zip(index, texts, strict=True):
            answers[i] = text
    return answers
