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


def cache_keyword(model) -> str:
    """transformers 5.2x names the key/value cache `cache`; earlier releases `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def cache_of(output):
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def common_prefix_length(sequences: list[list[int]]) -> int:
    """How many leading tokens every sequence shares."""
    first = sequences[0]
    length = min(len(x) for x in sequences)
    for other in sequences[1:]:
        length = next((i for i in range(length) if other[i] != first[i]), length)
    return length


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask, padded on the left (new tokens go on the right)."""
    width = max(len(x) for x in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        if seq:
            ids[i, width - len(seq) :] = torch.tensor(seq)
            mask[i, width - len(seq) :] = 1
    return ids, mask


@torch.inference_mode()
def greedy_decode(
    model, sequences: list[list[int]], max_new_tokens: int, eos_id: int, pad_id: int
) -> torch.Tensor:
    """New token ids [batch, <= max_new_tokens] continuing each token sequence, greedily; a
    sequence that produced <eos> is padded after it, and decoding stops when every one has.

    The tokens every sequence starts with (an instruction, a task's name) are computed once and
    their keys and values shared by the batch: prompts of one task share half their tokens."""
    device = next(model.parameters()).device
    keyword = cache_keyword(model)
    shared = common_prefix_length(sequences) - 1  # every row keeps a token to continue from
    cache, prefix_mask = None, torch.ones((len(sequences), 0), dtype=torch.long)
    if shared > 0:
        prefix = torch.tensor([sequences[0][:shared]], device=device)
        cache = cache_of(model(input_ids=prefix, use_cache=True, logits_to_keep=1))
        cache.batch_repeat_interleave(len(sequences))
        prefix_mask = torch.ones((len(sequences), shared), dtype=torch.long)
    input_ids, mask = left_pad([x[max(shared, 0) :] for x in sequences], pad_id)
    attention_mask = torch.cat([prefix_mask, mask], dim=1).to(device)
    # Positions count real tokens only, as `generate` numbers left-padded prompts.
    position = max(shared, 0) + (mask.cumsum(-1) - 1).clamp(min=0).to(device)
    output = model(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask,
        position_ids=position,
        use_cache=True,
        logits_to_keep=1,
        **({keyword: cache} if cache is not None else {}),
    )
    return decode_loop(
        model, output, attention_mask, position[:, -1:], max_new_tokens, eos_id, pad_id, most_likely
    )


def most_likely(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=-1)


def decode_loop(
    model, output, attention_mask, position, max_new_tokens: int, eos_id: int, pad_id: int, pick
) -> torch.Tensor:
    """New token ids [batch, <= max_new_tokens] after a prompt's forward pass (`output`, with
    its cache; `position`: each row's last position). Each step's tokens are
    `pick(last logits)`; a row that produced <eos> is padded after it, and decoding stops when
    every row has."""
    keyword = cache_keyword(model)
    finished = torch.zeros(len(attention_mask), dtype=torch.bool, device=attention_mask.device)
    new_tokens = []
    for step in range(max_new_tokens):
        token = pick(output.logits[:, -1]).masked_fill(finished, pad_id)
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
            **{keyword: cache_of(output)},
        )
    return torch.stack(new_tokens, dim=1)


def prefix_batches(prompts: list[str], batch_size: int) -> list[list[int]]:
    """Indices of `prompts` in batches of at most `batch_size`, sorted so that a batch's prompts
    share a long prefix: a new batch starts where the next prompt would cut the batch's shared
    prefix to less than half (for exp3: where one task's prompts end and the next task's
    begin)."""
    order = sorted(range(len(prompts)), key=lambda i: prompts[i])
    batches: list[list[int]] = []
    shared = 0
    for i in order:
        if batches and len(batches[-1]) < batch_size:
            first = prompts[batches[-1][0]]
            common = min(shared, common_prefix_length([list(first), list(prompts[i])]))
            if len(batches[-1]) == 1 or 2 * common >= shared:
                batches[-1].append(i)
                shared = common
                continue
        batches.append([i])
        shared = len(prompts[i])
    return batches


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
    # A batch holds prompts with a long shared prefix (one task's, of one length), so it
    # wastes little work on padding and computes the prefix once. Answers go back in order.
    answers: list[str] = [""] * len(prompts)
    batches = prefix_batches(prompts, batch_size)
    for index in tqdm(batches, desc="generate", disable=not progress, file=sys.stderr):
        sequences = tokenizer(
            [tokenizer.bos_token + prompts[i] for i in index], add_special_tokens=False
        )["input_ids"]
        new_tokens = greedy_decode(
            model, sequences, max_new_tokens, tokenizer.eos_token_id, tokenizer.pad_token_id
        )
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for i, text in zip(index, texts, strict=True):
            answers[i] = text
    return answers


@torch.inference_mode()
def generate_one_at_a_time(model, tokenizer, prompts: list[str], max_new_tokens: int = 8):
    """`model.generate` on each prompt alone (no padding): what `generate_answers` must equal,
    and what a user would otherwise write."""
    answers = []
    for prompt in prompts:
        ids = tokenizer(tokenizer.bos_token + prompt, add_special_tokens=False, return_tensors="pt")
        output = model.generate(
            **ids.to(next(model.parameters()).device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = output[0, ids["input_ids"].shape[1] :]
        answers.append(tokenizer.decode(new_tokens, skip_special_tokens=True))
    return answers
