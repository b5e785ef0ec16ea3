"""The curriculum family's plots, from summary.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ftdag.core.io import atomic_path


def final_models(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows of each arm's last stage model (its final model)."""
    last = summary.groupby("arm")["stage_model"].transform("max")
    return summary[summary["stage_model"] == last]


def plot_accuracy_by_stage(summary: pd.DataFrame, path) -> None:
    """Grouped bars: question stages (and overall) on x, one bar per arm's final model, 95%
    intervals (over test questions; mean of seeds where there are several), the majority
    baseline as a tick."""
    final = final_models(summary)
    stages = list(dict.fromkeys(final["eval_stage"]))
    arms = list(dict.fromkeys(final["arm"]))
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
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
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
