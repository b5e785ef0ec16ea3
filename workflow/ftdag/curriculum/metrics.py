"""Accuracy of the curriculum family's models: per question stage and overall, each with a 95%
Wilson interval, against the majority answer of each question type.

An answer is right when it equals the expected one after trimming and lower-casing; an empty
answer cannot be read and counts as wrong (and is counted apart, never dropped).
"""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from ftdag.core.stats import wilson_interval

ACCURACY_COLUMNS = ["stage", "accuracy", "ci_low", "ci_high", "n", "n_unparsed"]
OVERALL = "overall"


def normalize_answer(text: str) -> str:
    return " ".join(text.strip().lower().rstrip(".").split())


def is_correct(generated: str, expected: str) -> bool:
    return normalize_answer(generated) == normalize_answer(expected)


def question_type(question: str) -> str:
    """A question with its shape and colour words taken out: "What colour is the X?" is one
    type whatever X is."""
    return re.sub(r"\b(red|green|blue|yellow|circle|square|triangle)\b", "_", question)


def accuracy_table(predictions: list[dict]) -> pd.DataFrame:
    """Rows per question stage, then `overall`, from predictions with `stage`, `answer` and
    `generated`."""
    if not predictions:
        raise ValueError("no predictions to score")
    rows = []
    groups = sorted({p["stage"] for p in predictions})
    for stage in [*groups, OVERALL]:
        chosen = [p for p in predictions if stage == OVERALL or p["stage"] == stage]
        right = sum(is_correct(p["generated"], p["answer"]) for p in chosen)
        low, high = wilson_interval(right / len(chosen), len(chosen))
        rows.append(
            {
                "stage": str(stage),
                "accuracy": right / len(chosen),
                "ci_low": low,
                "ci_high": high,
                "n": len(chosen),
                "n_unparsed": sum(not p["generated"].strip() for p in chosen),
            }
        )
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


def majority_baseline(train_records: list[dict], test_records: list[dict]) -> float:
    """Accuracy on `test_records` of always giving each question type's most common training
    answer (the overall most common one for a type never seen in training)."""
    by_type: dict[str, Counter] = {}
    for record in train_records:
        by_type.setdefault(question_type(record["question"]), Counter())[record["answer"]] += 1
    fallback = Counter(r["answer"] for r in train_records).most_common(1)[0][0]
    right = 0
    for record in test_records:
        counts = by_type.get(question_type(record["question"]))
        guess = counts.most_common(1)[0][0] if counts else fallback
        right += is_correct(guess, record["answer"])
    return right / len(test_records)
