"""The compare family's metrics on hand-made scores: MAE, RMSE and Acc@k as computed by hand,
intervals around the estimates and degenerate where every error is the same, unparsed answers
out of MAE/RMSE but misses for Acc@k, the success criteria met and not met."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ftdag.compare.metrics import (
    METRICS,
    compare_models,
    mae_improvement,
    score_metrics,
    success_criteria,
)


def test_metrics_by_hand():
    result = score_metrics([5, 5, 5, 5], [5, 6, 7, 9], n_resamples=200)
    assert result["n"] == 4 and result["n_unparsed"] == 0
    assert result["mae"] == pytest.approx(1.75)
    assert result["rmse"] == pytest.approx(math.sqrt((0 + 1 + 4 + 16) / 4))
    assert result["acc_at_1"] == pytest.approx(0.5)
    assert result["acc_at_2"] == pytest.approx(0.75)


def test_errors_count_in_both_directions():
    result = score_metrics([5, 5, 5, 5], [4, 6, 3, 8], n_resamples=200)
    assert result["mae"] == pytest.approx((1 + 1 + 2 + 3) / 4)
    assert result["acc_at_1"] == pytest.approx(0.5)
    assert result["acc_at_2"] == pytest.approx(0.75)


def test_intervals_hold_the_estimates():
    rng = np.random.default_rng(1)
    expected = rng.integers(1, 11, size=80).tolist()
    predicted = np.clip(np.array(expected) + rng.integers(-3, 4, size=80), 1, 10).tolist()
    result = score_metrics(expected, predicted)
    for name in METRICS:
        low, high = result[f"{name}_ci_low"], result[f"{name}_ci_high"]
        assert low <= result[name] <= high, name
        assert low < high, name  # noisy errors: not a point


def test_intervals_are_points_when_every_error_is_the_same():
    result = score_metrics([3, 4, 5, 6], [5, 6, 7, 8], n_resamples=300)
    for name, value in {"mae": 2.0, "rmse": 2.0, "acc_at_1": 0.0, "acc_at_2": 1.0}.items():
        assert result[name] == pytest.approx(value)
        assert result[f"{name}_ci_low"] == pytest.approx(value)
        assert result[f"{name}_ci_high"] == pytest.approx(value)


def test_unparsed_answers_are_out_of_mae_but_misses_for_accuracy():
    result = score_metrics([5, 5, 5, 5], [5, None, 7, None], n_resamples=200)
    assert result["n"] == 4 and result["n_unparsed"] == 2
    assert result["mae"] == pytest.approx(1.0)  # (0 + 2) / 2 parsed
    assert result["rmse"] == pytest.approx(math.sqrt(2.0))
    assert result["acc_at_1"] == pytest.approx(0.25)  # 1 hit out of 4 items, not of 2
    assert result["acc_at_2"] == pytest.approx(0.5)
    assert result["acc_at_1_ci_high"] < 1.0  # the unparsed stay misses when resampled


def test_refusing_does_not_raise_accuracy():
    answered = score_metrics([5, 5, 5, 5], [5, 8, 8, 8], n_resamples=50)
    refused = score_metrics([5, 5, 5, 5], [5, None, None, None], n_resamples=50)
    assert refused["mae"] < answered["mae"]  # MAE alone would reward refusing
    assert refused["acc_at_1"] == answered["acc_at_1"] == pytest.approx(0.25)


def test_all_unparsed_gives_no_metrics():
    result = score_metrics([5, 6, 7], [None, None, None])
    assert result["n"] == 3 and result["n_unparsed"] == 3
    for name in METRICS:
        assert result[name] is None
        assert result[f"{name}_ci_low"] is None and result[f"{name}_ci_high"] is None


def test_mismatched_or_empty_items_are_refused():
    with pytest.raises(ValueError):
        score_metrics([5, 6], [5])
    with pytest.raises(ValueError):
        score_metrics([], [])


def test_the_seed_fixes_the_intervals():
    rng = np.random.default_rng(2)
    expected = rng.integers(1, 11, size=40).tolist()
    predicted = np.minimum(10, np.array(expected) + rng.integers(0, 4, size=40)).tolist()
    assert score_metrics(expected, predicted, seed=3) == score_metrics(expected, predicted, seed=3)
    bounds = set()
    for seed in range(4):
        result = score_metrics(expected, predicted, seed=seed)
        assert result["mae"] == score_metrics(expected, predicted, seed=3)["mae"]
        bounds.add(tuple(result[f"{m}_ci_{end}"] for m in METRICS for end in ("low", "high")))
    assert len(bounds) > 1  # other seeds, other resamples


EXPECTED = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] * 4


def shifted(errors) -> list[int]:
    """EXPECTED plus these errors, repeated over the items."""
    errors = list(errors) * (len(EXPECTED) // len(errors))
    return [e + d for e, d in zip(EXPECTED, errors, strict=True)]


def test_one_row_per_model_in_order():
    items = {
        "baseline": (EXPECTED, shifted([3])),
        "finetuned": (EXPECTED, shifted([0, 1])),
        "silent": (EXPECTED, [None] * len(EXPECTED)),
    }
    table = compare_models(items, n_resamples=200)
    assert table["model"].tolist() == ["baseline", "finetuned", "silent"]
    assert table.loc[0, "mae"] == pytest.approx(3.0)
    assert table.loc[1, "mae"] == pytest.approx(0.5)
    assert table.loc[1, "acc_at_1"] == pytest.approx(1.0)
    assert table.loc[2, "n_unparsed"] == len(EXPECTED)
    assert {"mae_ci_low", "rmse_ci_high", "acc_at_2_ci_low"} <= set(table.columns)


def test_success_criteria_met():
    items = {
        "baseline": (EXPECTED, shifted([3, -3])),
        "api_finetune": (EXPECTED, shifted([2, -2])),
        "vlm": (EXPECTED, shifted([0, 1, 0, -1])),
    }
    criteria = success_criteria(compare_models(items), "baseline", ["api_finetune", "vlm"], items)
    mae, accuracy, beats = criteria
    assert mae["met"] and mae["model"] == "vlm" and mae["value"] == pytest.approx(0.5)
    assert accuracy["met"] and accuracy["model"] == "vlm" and accuracy["value"] == 1.0
    assert beats["met"] and beats["model"] == "vlm"
    assert beats["value"] == pytest.approx(2.5)  # baseline MAE 3 − vlm MAE 0.5
    assert 0 < beats["ci_low"] <= 2.5 <= beats["ci_high"]
    assert "api_finetune: +1.000" in beats["detail"] and "40 paired items" in beats["detail"]


def test_success_criteria_not_met_at_the_thresholds():
    items = {
        "baseline": (EXPECTED, shifted([2, 1])),  # MAE 1.5: not below 1.5
        "finetuned": (EXPECTED, shifted([1, -1, 1, 3, -3])),  # Acc@1 exactly 60%: not above
    }
    criteria = success_criteria(compare_models(items), "baseline", ["finetuned"], items)
    assert [c["met"] for c in criteria[:2]] == [False, False]
    assert criteria[0]["model"] == "baseline" and criteria[0]["value"] == pytest.approx(1.5)
    assert criteria[1]["model"] == "finetuned" and criteria[1]["value"] == pytest.approx(0.6)
    assert not criteria[2]["met"] and criteria[2]["value"] == pytest.approx(1.5 - 1.8)


def test_a_difference_within_the_noise_does_not_beat_the_baseline():
    baseline = shifted([2, -2, 3, -3])
    finetuned = list(baseline)
    finetuned[0] = EXPECTED[0]  # one item better out of 40
    items = {"baseline": (EXPECTED, baseline), "finetuned": (EXPECTED, finetuned)}
    table = compare_models(items)
    paired = success_criteria(table, "baseline", ["finetuned"], items)[2]
    assert not paired["met"] and paired["ci_low"] <= 0 < paired["value"]
    unpaired = success_criteria(table, "baseline", ["finetuned"])[2]
    assert unpaired["met"] and unpaired["ci_low"] is None  # point estimates only
    assert "unpaired" in unpaired["detail"]


def test_the_paired_difference_uses_the_items_both_parsed():
    baseline = shifted([3])
    finetuned = [None] * 10 + EXPECTED[10:]
    items = {"baseline": (EXPECTED, baseline), "finetuned": (EXPECTED, finetuned)}
    paired = mae_improvement(items, "baseline", "finetuned", n_resamples=200)
    assert paired["n_paired"] == 30 and paired["value"] == pytest.approx(3.0)
    items["other_items"] = (EXPECTED[::-1], baseline)
    assert mae_improvement(items, "baseline", "other_items") is None


def test_a_model_with_nothing_parsed_meets_nothing():
    items = {"baseline": (EXPECTED, [None] * 40), "finetuned": (EXPECTED, [None] * 40)}
    criteria = success_criteria(compare_models(items), "baseline", ["finetuned"], items)
    assert not any(c["met"] for c in criteria)
    assert all(c["model"] is None for c in criteria)
