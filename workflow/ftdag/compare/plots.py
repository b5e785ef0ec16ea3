"""The compare family's plots: the models' metrics side by side with their 95% intervals, the
scores each model gave against the true ones, and its signed errors. An unparsed answer has no
score to draw: each plot counts them in its tick labels, titles or legend instead."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ftdag.compare.metrics import ACC_AT_1_TARGET, MAE_TARGET, METRICS
from ftdag.core.figures import new_figure, save_png

LABELS = {
    "mae": "MAE (points, lower is better)",
    "rmse": "RMSE (points, lower is better)",
    "acc_at_1": "Acc@1 (within 1 point)",
    "acc_at_2": "Acc@2 (within 2 points)",
}
TARGETS = {"mae": MAE_TARGET, "acc_at_1": ACC_AT_1_TARGET}


def numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as floats, NaN for None (a model without parsed answers, an unparsed item)."""
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def unparsed_count(table: pd.DataFrame) -> int:
    return int((~table["parsed"].astype(bool)).sum())


def metric_panel(ax, metrics_table: pd.DataFrame, metric: str) -> None:
    """One metric's bars, a model each (colour C<k> for the k-th), with 95% intervals."""
    x = np.arange(len(metrics_table))
    value = numbers(metrics_table, metric)
    low = numbers(metrics_table, f"{metric}_ci_low")
    high = numbers(metrics_table, f"{metric}_ci_high")
    known = ~np.isnan(value)
    ax.bar(x[known], value[known], color=[f"C{k}" for k in np.flatnonzero(known)])
    ax.errorbar(
        x[known],
        value[known],
        yerr=[value[known] - low[known], high[known] - value[known]],
        fmt="none",
        ecolor="black",
        capsize=4,
    )
    for k in np.flatnonzero(~known):
        ax.text(x[k], 0, "no parsed\nanswer", ha="center", va="bottom", fontsize=8)
    if metric in TARGETS:
        ax.axhline(TARGETS[metric], color="black", ls="--", lw=1)
    if metric.startswith("acc"):
        ax.set_ylim(0, 1.05)
    # Model ids are long (fine-tunes especially): the legend names them, the ticks are bare.
    ax.set_xticks(x, [""] * len(x))
    ax.set_xlim(-0.6, len(x) - 0.4)  # every model's place, even where it has no bar
    ax.set_title(LABELS[metric], fontsize=10)


def plot_metrics_comparison(metrics_table: pd.DataFrame, out_png) -> None:
    """One panel per metric, a bar per model with its 95% interval, the study's targets
    dashed. A model without a parsed answer has no bar: it is marked, not drawn as 0, which
    would read as a perfect MAE. The legend counts each model's unparsed answers."""
    fig = new_figure((9, 7))
    for ax, metric in zip(fig.subplots(2, 2).flat, METRICS, strict=True):
        metric_panel(ax, metrics_table, metric)
    unparsed = numbers(metrics_table, "n_unparsed")
    handles = [Patch(color=f"C{k}") for k in range(len(metrics_table))]
    handles.append(Line2D([], [], color="black", ls="--", lw=1))
    labels = [
        f"{model} ({count:.0f} unparsed)"
        for model, count in zip(metrics_table["model"].astype(str), unparsed, strict=True)
    ]
    fig.legend(handles, [*labels, "target"], loc="outside lower center", fontsize=8)
    fig.suptitle("Metrics per model (95% bootstrap intervals over items)")
    save_png(fig, out_png)


def score_counts(table: pd.DataFrame, low: int, high: int) -> np.ndarray:
    """Counts of (predicted, expected) over the parsed items: rows predicted, columns expected."""
    size = high - low + 1
    counts = np.zeros((size, size), dtype=int)
    parsed = table[table["parsed"].astype(bool)]
    for expected, predicted in zip(parsed["expected"], parsed["predicted"], strict=True):
        counts[int(predicted) - low, int(expected) - low] += 1
    return counts


def plot_score_distribution(
    tables: dict[str, pd.DataFrame], out_png, low: int = 1, high: int = 10
) -> None:
    """A panel per model: how many items got each (expected, predicted) pair, as a count
    heatmap (rather than a jittered scatter: no randomness, and overlaps stay countable) with
    the diagonal of exact answers; the unparsed items counted in the panel's title."""
    if not tables:
        raise ValueError("no models to plot")
    fig = new_figure((4.2 * len(tables) + 0.8, 4.4))
    axes = np.atleast_1d(fig.subplots(1, len(tables), squeeze=False)[0])
    edges = (low - 0.5, high + 0.5)
    counts_by_model = {model: score_counts(table, low, high) for model, table in tables.items()}
    # one colour scale for every panel, so that equal shades are equal counts
    top = max(1, *(counts.max() for counts in counts_by_model.values()))
    for ax, (model, table) in zip(axes, tables.items(), strict=True):
        counts = counts_by_model[model]
        image = ax.imshow(
            counts, origin="lower", extent=(*edges, *edges), cmap="Blues", vmin=0, vmax=top
        )
        for (row, column), count in np.ndenumerate(counts):
            if count:
                colour = "white" if count > top / 2 else "black"
                place = (column + low, row + low)
                ax.text(*place, count, ha="center", va="center", fontsize=7, color=colour)
        ax.plot(edges, edges, color="C3", lw=1, ls="--", label="exact")
        ax.set_xticks(range(low, high + 1))
        ax.set_yticks(range(low, high + 1))
        ax.set_xlabel("expected score")
        parsed = len(table) - unparsed_count(table)
        ax.set_title(f"{model}\n{parsed} parsed, {unparsed_count(table)} unparsed", fontsize=10)
    axes[0].set_ylabel("predicted score")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.colorbar(image, ax=list(axes), label="items")
    fig.suptitle("Predicted against expected scores")
    save_png(fig, out_png)


def plot_error_distribution(tables: dict[str, pd.DataFrame], out_png) -> None:
    """Signed errors (predicted − expected) per model, as bars side by side for each whole
    error; the legend gives each model's parsed and unparsed counts."""
    if not tables:
        raise ValueError("no models to plot")
    errors = {model: numbers(table, "error") for model, table in tables.items()}
    seen = np.concatenate([e[~np.isnan(e)] for e in errors.values()])
    span = int(np.abs(seen).max()) if seen.size else 1
    values = np.arange(-span, span + 1)
    width = 0.8 / len(tables)
    fig = new_figure((max(7.0, 0.45 * len(values) * max(1, len(tables) / 2)), 4.8))
    ax = fig.subplots()
    for k, (model, error) in enumerate(errors.items()):
        parsed = error[~np.isnan(error)].astype(int)
        heights = [(parsed == v).sum() for v in values]
        label = f"{model} ({parsed.size} parsed, {np.isnan(error).sum()} unparsed: not drawn)"
        ax.bar(values + (k - (len(tables) - 1) / 2) * width, heights, width, label=label)
    ax.axvline(0, color="black", lw=1, ls=":")
    ax.set_xticks(values)
    ax.set_xlabel("error: predicted − expected (points)")
    ax.set_ylabel("items")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Signed errors per model")
    fig.legend(loc="outside lower center", fontsize=8)
    save_png(fig, out_png)
