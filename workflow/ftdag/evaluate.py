"""Evaluation: batched greedy generation of every evaluation set with one loaded model.

Loading a model and importing torch cost seconds; one job runs all of a model's evaluations.
An answer that cannot be parsed is a failure (the worst error, or wrong), never skipped.
"""

from __future__ import annotations

import sys

import torch
from tqdm import tqdm

from ftdag.datasets import MULTI_TASK, eval_task_and_cities
from ftdag.tasks import EXACT_MATCH, TASKS, task_of_prompt

MAX_NEW_TOKENS = 8  # the longest answer of any task is 5 characters, then <eos>


@torch.inference_mode()
def generate_answers(
    model, tokenizer, prompts: list[str], batch_size: int = 256, progress: bool = True
) -> list[str]:
    """Greedy continuation of each prompt, up to <eos>, as text."""
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
            max_new_tokens=MAX_NEW_TOKENS,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for i, text in zip(index, texts, strict=True):
            answers[i] = text
    return answers


def score_eval_set(eval_name: str, records: list[dict], generated: list[str], world) -> dict:
    """One row of metrics for an evaluation set, and per-record parsed values and scores."""
    task_name, cities = eval_task_and_cities(eval_name)
    metric = EXACT_MATCH if task_name == MULTI_TASK else TASKS[task_name].metric
    scores, unparsed = [], 0
    for record, text in zip(records, generated, strict=True):
        task = task_of_prompt(record["prompt"])
        predicted = task.parse(text)
        unparsed += predicted is None
        if metric == EXACT_MATCH:
            scores.append(float(predicted is not None and text.strip() == record["answer"]))
        else:
            scores.append(task.score(predicted, record["answer"], world))
        record["generated"], record["score"] = text, scores[-1]
    return {
        "eval": eval_name,
        "task": task_name,
        "cities": cities,
        "metric": metric,
        "value": sum(scores) / len(scores),
        "n": len(scores),
        "n_unparsed": unparsed,
    }


def evaluate_model(
    model, tokenizer, eval_sets: dict[str, list[dict]], world, batch_size: int = 256
) -> tuple[list[dict], list[dict]]:
    """All evaluation sets in one generation pass: metric rows and per-prompt predictions."""
    flat = [(name, r) for name, records in eval_sets.items() for r in records]
    generated = generate_answers(model, tokenizer, [r["prompt"] for _, r in flat], batch_size)
    rows, predictions, offset = [], [], 0
    for name, records in eval_sets.items():
        records = [dict(r) for r in records]
        rows.append(score_eval_set(name, records, generated[offset : offset + len(records)], world))
        predictions += [{"eval": name, **r} for r in records]
        offset += len(records)
    return rows, predictions
