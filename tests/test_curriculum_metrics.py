"""Curriculum accuracy by hand: per stage and overall with Wilson intervals, unreadable answers
counted as wrong, and the majority-answer baseline per question type."""

from __future__ import annotations

import pytest

from ftdag.core.stats import wilson_interval
from ftdag.curriculum.metrics import (
    accuracy_table,
    is_correct,
    majority_baseline,
    question_type,
)


def prediction(stage, answer, generated):
    return {"stage": stage, "answer": answer, "generated": generated}


def test_answers_match_after_trimming_and_case():
    assert is_correct(" Yes.", "yes") and is_correct("3", "3")
    assert not is_correct("", "3") and not is_correct("red circle", "red")


def test_accuracy_per_stage_and_overall_with_intervals():
    predictions = [
        prediction(1, "yes", "yes"),
        prediction(1, "3", "2"),
        prediction(1, "no", ""),  # unreadable: wrong, and counted
        prediction(2, "red", "Red"),
        prediction(2, "left", "left"),
        prediction(3, "no", "yes"),
    ]
    table = accuracy_table(predictions).set_index("stage")
    assert table.loc["1", "accuracy"] == pytest.approx(1 / 3)
    assert table.loc["2", "accuracy"] == 1.0 and table.loc["3", "accuracy"] == 0.0
    assert table.loc["overall", "accuracy"] == pytest.approx(3 / 6)
    assert table.loc["1", "n_unparsed"] == 1 and table.loc["overall", "n"] == 6
    low, high = wilson_interval(0.5, 6)
    assert (table.loc["overall", "ci_low"], table.loc["overall", "ci_high"]) == (low, high)
    assert 0 < table.loc["2", "ci_low"] < 1 == table.loc["2", "accuracy"]  # not zero width
    with pytest.raises(ValueError):
        accuracy_table([])


def test_majority_baseline_per_question_type():
    assert question_type("What colour is the circle?") == question_type(
        "What colour is the square?"
    )
    train = [
        {"question": "How many shapes are there?", "answer": "2"},
        {"question": "How many shapes are there?", "answer": "2"},
        {"question": "How many shapes are there?", "answer": "3"},
        {"question": "What colour is the circle?", "answer": "red"},
        {"question": "What colour is the square?", "answer": "red"},
        {"question": "What colour is the square?", "answer": "blue"},
    ]
    test = [
        {"question": "How many shapes are there?", "answer": "2"},  # right: 2 is the majority
        {"question": "How many shapes are there?", "answer": "4"},
        {"question": "What colour is the triangle?", "answer": "red"},  # right: same type
        {"question": "Is there any shape?", "answer": "yes"},  # unseen type: overall majority
    ]
    assert majority_baseline(train, test) == pytest.approx(2 / 4)
