"""The curriculum family's results in one table and a verdict: accuracy per arm, stage model
and question stage (mean ± sd over seeds), the device-hours that produced each model, the cost
per accuracy point, and which arm wins by how much.

Device-hours are read from the training jobs' benchmark files with the same function that
writes `results/cost.csv` (`ftdag.core.cost.read_benchmark`), so the numbers are the cost
table's: measured wall time × GPUs (or cores where a job had none).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ftdag.core.stats import mean_sd, paired_bootstrap_difference
from ftdag.curriculum.metrics import OVERALL, is_correct

SUMMARY_COLUMNS = [
    "arm",
    "stage_model",
    "eval_stage",
    "seeds",
    "accuracy",
    "accuracy_sd",
    "ci_low",
    "ci_high",
    "n",
    "n_unparsed",
    "majority_baseline",
    "device_hours",
    "cost_per_point",
]
# What, besides the order of its stages, an arm may change; any difference between two arms
# in one of these confounds their comparison.
ARM_SETTINGS = ("base", "resolution", "template", "lora")


def cumulative_hours(stage_hours: dict[tuple[str, int, int], float]) -> dict:
    """Device-hours that produced each stage model: its own training and all earlier stages'
    of the same arm and seed. Keys: (arm, seed, stage)."""
    return {
        (arm, seed, stage): sum(
            h for (a, s, k), h in stage_hours.items() if a == arm and s == seed and k <= stage
        )
        for arm, seed, stage in stage_hours
    }


def summarize(by_seed: pd.DataFrame, stage_hours: dict[tuple[str, int, int], float]):
    """One row per arm, stage model and question stage: means over seeds (sd where there are
    several), the 95% interval over test questions (averaged over seeds), device-hours and
    device-hours per accuracy point (accuracy in %)."""
    hours = cumulative_hours(stage_hours)
    rows = []
    keys = ["arm", "stage_model", "eval_stage"]
    for (arm, stage_model, eval_stage), group in by_seed.groupby(keys, sort=False):
        accuracy, sd = mean_sd(group["accuracy"])
        device_hours = float(np.mean([hours[(arm, s, stage_model)] for s in group["seed"]]))
        rows.append(
            {
                "arm": arm,
                "stage_model": stage_model,
                "eval_stage": eval_stage,
                "seeds": len(group),
                "accuracy": accuracy,
                "accuracy_sd": sd,
                "ci_low": group["ci_low"].mean(),
                "ci_high": group["ci_high"].mean(),
                "n": int(group["n"].iloc[0]),
                "n_unparsed": group["n_unparsed"].mean(),
                "majority_baseline": group["majority_baseline"].iloc[0],
                "device_hours": device_hours,
                "cost_per_point": device_hours / (100 * accuracy) if accuracy else None,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def final_models(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows of each arm's final model (its last stage), every question stage."""
    last = summary.groupby("arm", sort=False)["stage_model"].transform("max")
    return summary[summary["stage_model"] == last]


def final_rows(summary: pd.DataFrame, eval_stage: str = OVERALL) -> pd.DataFrame:
    """Each arm's final model on `eval_stage`, indexed by arm, in arm order."""
    final = final_models(summary)
    return final[final["eval_stage"] == eval_stage].set_index("arm")


def correctness(predictions: list[list[dict]]) -> np.ndarray:
    """Per test question, the share of seeds whose model answered it right. `predictions`:
    one list per seed, each in the test split's order."""
    questions = [(p["image"], p["question"]) for p in predictions[0]]
    for other in predictions[1:]:
        if [(p["image"], p["question"]) for p in other] != questions:
            raise ValueError("the seeds' predictions are not of the same test questions")
    return np.mean(
        [[is_correct(p["generated"], p["answer"]) for p in seed] for seed in predictions], axis=0
    )


def _differences(arms: dict) -> list[str]:
    """Settings in which the arms differ, besides their stages."""
    return [
        f"{setting} ({', '.join(f'{name}: {arm.get(setting)}' for name, arm in arms.items())})"
        for setting in ARM_SETTINGS
        if len({repr(arm.get(setting)) for arm in arms.values()}) > 1
    ]


def _interval(row) -> str:
    sd = "" if pd.isna(row["accuracy_sd"]) else f" ± {row['accuracy_sd']:.3f} sd"
    return f"{row['accuracy']:.3f}{sd} (95%: {row['ci_low']:.3f}–{row['ci_high']:.3f})"


def _cost(value) -> str:
    return "n/a (accuracy 0)" if value is None or pd.isna(value) else f"{value:.2e}"


def verdict(summary: pd.DataFrame, arms: dict, correct: dict[str, np.ndarray]) -> str:
    """A short Markdown verdict on each arm's final model: accuracy against the first arm (the
    reference) with a paired 95% interval over test questions, cost per accuracy point, the
    majority baseline, and whether the arms differ in anything besides their stages."""
    final = final_rows(summary)
    names = list(final.index)
    reference = names[0]
    lines = [
        "# Curriculum family: verdict",
        "",
        f"Test split: {int(final['n'].iloc[0])} questions; seeds: {int(final['seeds'].iloc[0])}; "
        f"majority answer per question type: {final['majority_baseline'].iloc[0]:.3f}.",
        "",
        "| arm | stages | overall accuracy | device-hours | device-hours per point |",
        "|---|---|---|---|---|",
    ]
    for arm, row in final.iterrows():
        lines.append(
            f"| {arm} | {len(arms[arm]['stages'])} | {_interval(row)} | "
            f"{row['device_hours']:.5f} | {_cost(row['cost_per_point'])} |"
        )
    lines.append("")
    best = final["accuracy"].idxmax()
    costs = final["cost_per_point"].astype(float).dropna()
    cheapest = costs.idxmin() if len(costs) else "none (no arm answered any question right)"
    lines.append(f"- **Most accurate**: {best}. **Cheapest per accuracy point**: {cheapest}.")
    for arm in names[1:]:
        mean, low, high = paired_bootstrap_difference(correct[reference], correct[arm])
        beyond = low > 0 or high < 0
        lines.append(
            f"- {arm} − {reference}: {mean:+.3f} (paired 95% interval {low:+.3f} to {high:+.3f} "
            "over the test questions): "
            + ("beyond the interval." if beyond else "within the interval: no difference shown.")
        )
    for arm, row in final.iterrows():
        margin = row["accuracy"] - row["majority_baseline"]
        clear = row["ci_low"] > row["majority_baseline"]
        lines.append(
            f"- {arm} against the majority answer: {margin:+.3f}"
            + (" (its interval excludes it)." if clear else " (not clearly above it).")
        )
    confounds = _differences({name: arms[name] for name in names})
    if confounds:
        lines.append(
            "- **Confounded**: the arms differ in more than their stages: "
            + "; ".join(confounds)
            + ". A difference in accuracy cannot be put down to the curriculum alone."
        )
    return "\n".join(lines) + "\n"
