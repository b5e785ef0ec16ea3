"""exp3 evaluation: one loaded model, every evaluation set in one batched generation pass.

An answer that cannot be parsed is a failure (the worst error, or wrong), never skipped.
"""

from __future__ import annotations

from ftdag.core.generate import generate_answers
from ftdag.exp3.names import MULTI_TASK, eval_task_and_cities
from ftdag.exp3.tasks import EXACT_MATCH, TASKS, task_of_prompt

MAX_NEW_TOKENS = 8  # the longest answer of any task is 5 characters, then <eos>


def score_eval_set(
    eval_name: str, records: list[dict], generated: list[str], world
) -> tuple[dict, list[dict]]:
    """One row of metrics for an evaluation set, and per-record predictions (the record with
    the generated text and its score); `records` are left as they are."""
    task_name, cities = eval_task_and_cities(eval_name)
    metric = EXACT_MATCH if task_name == MULTI_TASK else TASKS[task_name].metric
    predictions, unparsed = [], 0
    for record, text in zip(records, generated, strict=True):
        task = task_of_prompt(record["prompt"])
        predicted = task.parse(text)
        unparsed += predicted is None
        if metric == EXACT_MATCH:
            score = float(predicted is not None and text.strip() == record["answer"])
        else:
            score = task.score(predicted, record["answer"], world)
        predictions.append({"eval": eval_name, **record, "generated": text, "score": score})
    row = {
        "eval": eval_name,
        "task": task_name,
        "cities": cities,
        "metric": metric,
        "value": sum(p["score"] for p in predictions) / len(predictions),
        "n": len(predictions),
        "n_unparsed": unparsed,
    }
    return row, predictions


def evaluate_model(
    model, tokenizer, eval_sets: dict[str, list[dict]], world, batch_size: int = 256
) -> tuple[list[dict], list[dict]]:
    """All evaluation sets in one generation pass: metric rows and per-prompt predictions."""
    flat = [r["prompt"] for records in eval_sets.values() for r in records]
    generated = generate_answers(model, tokenizer, flat, batch_size, MAX_NEW_TOKENS)
    rows, predictions, offset = [], [], 0
    for name, records in eval_sets.items():
        row, scored = score_eval_set(
            name, records, generated[offset : offset + len(records)], world
        )
        rows.append(row)
        predictions += scored
        offset += len(records)
    return rows, predictions
