"""The curriculum family's summary and verdict: means over seeds, device-hours that add up over
an arm's stages, cost per accuracy point, a paired interval for the difference between arms,
and a verdict that says when the arms differ in more than their stages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ftdag.core.stats import mean_sd, paired_bootstrap_difference
from ftdag.curriculum import plots
from ftdag.curriculum.summary import correctness, cumulative_hours, summarize, verdict

ARMS = {
    "random": {"base": "tiny", "template": "standard", "lora": None, "stages": [{}]},
    "curriculum": {"base": "tiny", "template": "standard", "lora": None, "stages": [{}] * 3},
}


def by_seed_rows(accuracies: dict[tuple[str, int, int], float], n=200) -> pd.DataFrame:
    rows = []
    for (arm, seed, stage_model), accuracy in accuracies.items():
        for eval_stage in ("1", "overall"):
            rows.append(
                {
                    "arm": arm,
                    "seed": seed,
                    "stage_model": stage_model,
                    "eval_stage": eval_stage,
                    "accuracy": accuracy,
                    "ci_low": accuracy - 0.05,
                    "ci_high": accuracy + 0.05,
                    "n": n,
                    "n_unparsed": 0,
                    "majority_baseline": 0.4,
                }
            )
    return pd.DataFrame(rows)


def test_mean_sd_and_paired_bootstrap():
    assert mean_sd([0.5]) == (0.5, None)
    mean, sd = mean_sd([0.4, 0.6])
    assert mean == pytest.approx(0.5) and sd == pytest.approx(np.sqrt(0.02))
    same = [1, 0, 1, 1, 0] * 20
    assert paired_bootstrap_difference(same, same) == (0.0, 0.0, 0.0)
    better = [1] * 100
    mean, low, high = paired_bootstrap_difference(same, better)
    assert mean == pytest.approx(0.4) and 0.25 < low < 0.36 and 0.44 < high < 0.55
    with pytest.raises(ValueError, match="equal"):
        paired_bootstrap_difference([1, 0], [1])


def test_device_hours_add_up_over_an_arms_stages():
    hours = {("c", 0, 1): 1.0, ("c", 0, 2): 2.0, ("c", 0, 3): 4.0, ("r", 0, 1): 5.0}
    assert cumulative_hours(hours) == {
        ("c", 0, 1): 1.0,
        ("c", 0, 2): 3.0,
        ("c", 0, 3): 7.0,
        ("r", 0, 1): 5.0,
    }


def test_summary_is_a_mean_over_seeds_with_cost_per_point():
    by_seed = by_seed_rows(
        {("random", 0, 1): 0.5, ("random", 1, 1): 0.7, ("curriculum", 0, 1): 0.6}
    )
    hours = {("random", 0, 1): 0.01, ("random", 1, 1): 0.03, ("curriculum", 0, 1): 0.02}
    table = summarize(by_seed, hours).set_index(["arm", "eval_stage"])
    random = table.loc[("random", "overall")]
    assert random["seeds"] == 2 and random["accuracy"] == pytest.approx(0.6)
    assert random["accuracy_sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert random["device_hours"] == pytest.approx(0.02)
    assert random["cost_per_point"] == pytest.approx(0.02 / 60)
    assert pd.isna(table.loc[("curriculum", "overall"), "accuracy_sd"])  # one seed: no sd


def test_verdict_names_the_winner_the_interval_and_a_confound():
    by_seed = by_seed_rows(
        {("random", 0, 1): 0.5, **{("curriculum", 0, k): 0.5 + 0.1 * k for k in (1, 2, 3)}}
    )
    hours = {("random", 0, 1): 0.01, **{("curriculum", 0, k): 0.01 for k in (1, 2, 3)}}
    table = summarize(by_seed, hours)
    correct = {"random": np.array([1.0, 0.0] * 100), "curriculum": np.array([1.0] * 200)}
    text = verdict(table, ARMS, correct)
    assert "**Most accurate**: curriculum" in text
    assert "**Cheapest per accuracy point**: random" in text  # 0.01 / 50 < 0.03 / 80
    assert "curriculum − random: +0.500" in text and "beyond the interval" in text
    assert "Confounded" not in text
    assert "random against the majority answer: +0.100 (its interval excludes it)" in text
    other_base = {**ARMS, "curriculum": {**ARMS["curriculum"], "base": "Qwen/Qwen3-VL-8B"}}
    text = verdict(table, other_base, correct)
    assert "**Confounded**" in text and "base (random: tiny, curriculum: Qwen/Qwen3-VL-8B)" in text


def test_correctness_averages_seeds_over_the_same_questions():
    seed0 = [{"image": "a", "question": "q", "answer": "yes", "generated": "Yes"}] * 2
    seed1 = [{"image": "a", "question": "q", "answer": "yes", "generated": "no"}] * 2
    assert correctness([seed0, seed1]).tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="same test questions"):
        correctness([seed0, [{**seed1[0], "question": "other"}] * 2])


@pytest.mark.parametrize(
    "plot", ["accuracy_by_stage", "accuracy_after_each_stage", "cost_vs_accuracy"]
)
def test_plots_draw_from_the_summary(tmp_path, plot):
    by_seed = by_seed_rows(
        {("random", 0, 1): 0.5, **{("curriculum", 0, k): 0.5 + 0.1 * k for k in (1, 2, 3)}}
    )
    hours = {("random", 0, 1): 0.01, **{("curriculum", 0, k): 0.01 for k in (1, 2, 3)}}
    path = tmp_path / f"{plot}.png"
    getattr(plots, f"plot_{plot}")(summarize(by_seed, hours), path)
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 10_000


def test_an_arm_that_answers_nothing_right_has_no_cost_per_point():
    by_seed = by_seed_rows({("random", 0, 1): 0.0, ("curriculum", 0, 1): 0.0})
    hours = {("random", 0, 1): 0.01, ("curriculum", 0, 1): 0.01}
    table = summarize(by_seed, hours)
    assert table["cost_per_point"].isna().all()
    arms = {**ARMS, "curriculum": {**ARMS["curriculum"], "stages": [{}]}}
    text = verdict(table, arms, {a: np.zeros(200) for a in arms})
    assert "n/a (accuracy 0)" in text and "none (no arm answered any question right)" in text
