"""The MTL family's plots: learning curves per domain (every kept snapshot, both arms) and a
domain x arm heatmap of the final models' test rewards."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ftdag.core.figures import new_figure, save_png
from ftdag.mtl.report import domain_curves


def plot_learning_curves(evolution: pd.DataFrame, comparison: pd.DataFrame, path) -> None:
    """Test reward per domain (mean of its tasks, over seeds) at every kept epoch snapshot;
    one panel per domain, one line per arm."""
    curves = domain_curves(evolution)
    domains = list(dict.fromkeys(curves["domain"]))
    fig = new_figure((11, 6))
    axes = fig.subplots(2, (len(domains) + 1) // 2, sharex=True, sharey=True, squeeze=False)
    for ax, domain in zip(axes.flat, domains, strict=False):
        for k, (arm, rows) in enumerate(
            curves[curves["domain"] == domain].groupby("arm", sort=False)
        ):
            ax.plot(rows["epoch"], rows["reward_mean"], marker="o", color=f"C{k}", label=arm)
        ax.set_title(domain)
        ax.set_ylim(0, 1)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("test reward")
    axes.flat[0].legend()
    fig.suptitle("Learning curves per domain (every kept snapshot)")
    save_png(fig, path)


def final_scores(comparison: pd.DataFrame) -> pd.DataFrame:
    """Domain x arm mean test reward of the final models, from comparison.csv's domain rows."""
    domains = comparison[comparison["level"] == "domain"]
    arms = [c for c in domains.columns if c not in _COMPARISON_COLUMNS]
    table = domains.groupby("name", sort=False)[arms].first()
    return table


_COMPARISON_COLUMNS = {
    "level",
    "name",
    "domain",
    "difference",
    "ci_low",
    "ci_high",
    "n",
    "verdict",
    "arm",
}


def plot_final_heatmap(evolution: pd.DataFrame, comparison: pd.DataFrame, path) -> None:
    """Final models' mean test reward, domains by arms, the value in each cell."""
    table = final_scores(comparison)
    fig = new_figure((2 + 1.6 * table.shape[1], 1 + 0.6 * table.shape[0]))
    ax = fig.subplots()
    image = ax.imshow(table.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(np.arange(table.shape[1]), table.columns)
    ax.set_yticks(np.arange(table.shape[0]), table.index)
    for (i, j), value in np.ndenumerate(table.to_numpy(dtype=float)):
        ax.text(
            j,
            i,
            f"{value:.2f}",
            ha="center",
            va="center",
            color="white" if value < 0.5 else "black",
        )
    fig.colorbar(image, ax=ax, label="mean test reward")
    ax.set_title("Final models by domain")
    save_png(fig, path)
