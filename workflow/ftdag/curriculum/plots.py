"""The curriculum family's plots, from summary.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ftdag.core.figures import new_figure, save_png
from ftdag.curriculum.summary import final_models


def plot_accuracy_by_stage(summary: pd.DataFrame, path) -> None:
    """Grouped bars: question stages (and overall) on x, one bar per arm's final model, 95%
    intervals (over test questions; mean of seeds where there are several), the majority
    baseline as a tick."""
    final = final_models(summary)
    stages = list(dict.fromkeys(final["eval_stage"]))
    arms = list(dict.fromkeys(final["arm"]))
    fig = new_figure((8, 4.5))
    ax = fig.subplots()
    width = 0.8 / len(arms)
    x = np.arange(len(stages))
    for k, arm in enumerate(arms):
        rows = final[final["arm"] == arm].groupby("eval_stage", sort=False).mean(numeric_only=True)
        rows = rows.reindex(stages)
        errors = [rows["accuracy"] - rows["ci_low"], rows["ci_high"] - rows["accuracy"]]
        ax.bar(
            x + (k - (len(arms) - 1) / 2) * width,
            rows["accuracy"],
            width,
            yerr=errors,
            capsize=3,
            label=arm,
        )
    baseline = final.groupby("eval_stage", sort=False)["majority_baseline"].first().reindex(stages)
    ax.scatter(x, baseline, marker="_", s=900, color="black", label="majority answer", zorder=3)
    ax.set_xticks(x, [f"stage {s}" if s != "overall" else s for s in stages])
    ax.set_ylabel("test accuracy (95% interval)")
    ax.set_ylim(0, 1)
    ax.set_title("Accuracy by question stage: each arm's final model")
    ax.legend()
    save_png(fig, path)


def plot_accuracy_after_each_stage(summary: pd.DataFrame, path) -> None:
    """For each arm of several stages: accuracy per question stage (and overall) of its model
    after stage 1, 2, ..., with 95% bands; the majority answer dashed. Single-stage arms are
    drawn as their final accuracy, for reference."""
    staged = [a for a, g in summary.groupby("arm", sort=False) if g["stage_model"].nunique() > 1]
    fig = new_figure((4.5 * max(1, len(staged)) + 1, 4.2))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(staged)), sharey=True, squeeze=False)[0])
    if not staged:
        axes[0].text(0.5, 0.5, "no arm has more than one stage", ha="center", va="center")
    for ax, arm in zip(axes, staged, strict=False):
        rows = summary[summary["arm"] == arm]
        for k, (stage, group) in enumerate(rows.groupby("eval_stage", sort=False)):
            colour = f"C{k}"
            label = stage if stage == "overall" else f"stage {stage} questions"
            ax.plot(group["stage_model"], group["accuracy"], marker="o", color=colour, label=label)
            ax.fill_between(
                group["stage_model"], group["ci_low"], group["ci_high"], color=colour, alpha=0.15
            )
            ax.axhline(group["majority_baseline"].iloc[0], color=colour, ls=":", lw=1)
        ax.set_xticks(sorted(rows["stage_model"].unique()))
        ax.set_xlabel(f"{arm}: model after training stage")
        ax.set_ylim(0, 1)
        ax.set_title(f"{arm}")
    axes[0].set_ylabel("test accuracy (95% band; dotted: majority answer)")
    axes[0].legend(fontsize=8)
    save_png(fig, path)


def plot_cost_vs_accuracy(summary: pd.DataFrame, path) -> None:
    """Overall accuracy against the device-hours that produced each model; an arm's stage
    models joined in order, its final model labelled."""
    overall = summary[summary["eval_stage"] == "overall"]
    fig = new_figure((7, 4.5))
    ax = fig.subplots()
    for k, (arm, rows) in enumerate(overall.groupby("arm", sort=False)):
        rows = rows.sort_values("stage_model")
        errors = [rows["accuracy"] - rows["ci_low"], rows["ci_high"] - rows["accuracy"]]
        ax.errorbar(
            rows["device_hours"],
            rows["accuracy"],
            yerr=errors,
            marker="o",
            capsize=3,
            color=f"C{k}",
            label=arm,
        )
        for row in rows.itertuples():
            ax.annotate(
                f"stage {row.stage_model}",
                (row.device_hours, row.accuracy),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    ax.axhline(overall["majority_baseline"].iloc[0], color="black", ls=":", label="majority answer")
    ax.set_xlabel("device-hours (training, cumulative over stages)")
    ax.set_ylabel("overall test accuracy (95% interval)")
    ax.set_title("What each model cost and what it scored")
    ax.legend()
    save_png(fig, path)
