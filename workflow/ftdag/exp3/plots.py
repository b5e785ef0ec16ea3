"""exp3 heatmaps of normalized Atlantis scores, each with a trained-vs-transfer summary table.

Every function takes the table of `ftdag.exp3.metrics.normalize`, writes one PNG atomically, and
returns the summary dict of `ftdag.exp3.metrics.summarize`. Tasks pt1 did not clearly learn
(`unlearned`, from pt1_learning.csv) get a hatched column and a starred name: normalized against
a pt1 that knows little, their cells are mostly noise.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ftdag.core.io import atomic_path
from ftdag.exp3.metrics import CLIP_HIGH, CLIP_LOW, summarize
from ftdag.exp3.names import (
    FTWB1,
    FTWB2,
    PRETRAINED,
    ftwb1_name,
    model_kind,
    model_label,
    model_order,
    trained_tasks,
)
from ftdag.exp3.tasks import TASK_NAMES

NAN_COLOR = "lightgrey"
SCALE_NOTE = "0 = pt1 level, 1 = standard-city level, grey = n/a"
UNLEARNED_NOTE = (
    "* hatched: pt1 did not clearly learn this task (pt1_learning.csv), so its cells are mostly "
    "noise"
)


# --- matrices -------------------------------------------------------------------------------


def _matrix(normalized: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Models of `kind` (rows, canonical order) x TASK_NAMES (columns) of normalized values."""
    rows = normalized[normalized["kind"] == kind]
    if rows.empty:
        raise ValueError(f"no {kind.upper()} rows in the normalized table: nothing to plot")
    matrix = rows.pivot(index="model", columns="task", values="normalized")
    models = sorted(matrix.index, key=model_order)
    return matrix.reindex(index=models, columns=list(TASK_NAMES)).astype(float)


def _trained_mask(matrix: pd.DataFrame) -> np.ndarray:
    return np.array([[t in trained_tasks(m) for t in matrix.columns] for m in matrix.index])


def ftwb2_vs_ftwb1_matrix(normalized: pd.DataFrame) -> pd.DataFrame:
    """FTWB2 actual minus expected, per experiment (rows) and evaluated task (columns).

    expected = the better (max) of the two FTWB1 specialists of the experiment's trained tasks,
    on the evaluated task. It is NaN when either specialist is NaN: an unknown specialist might
    have been the better one.
    """
    ftwb2 = _matrix(normalized, FTWB2)
    ftwb1 = normalized[normalized["kind"] == FTWB1].pivot(
        index="model", columns="task", values="normalized"
    )
    specialist = {task: ftwb1_name(task) for task in TASK_NAMES}
    missing = sorted(
        {specialist[t] for m in ftwb2.index for t in trained_tasks(m)} - set(ftwb1.index),
        key=model_order,
    )
    if missing:
        raise ValueError(f"FTWB1 specialist(s) missing for the FTWB2 comparison: {missing}")

    diff = ftwb2.copy()
    for model in ftwb2.index:
        a, b = (ftwb1.loc[specialist[t]].reindex(ftwb2.columns) for t in trained_tasks(model))
        expected = np.fmax(a, b).where(a.notna() & b.notna())
        diff.loc[model] = ftwb2.loc[model] - expected
    return diff


# --- drawing --------------------------------------------------------------------------------


def _draw_heatmap(
    fig, ax, matrix, trained, row_labels, cmap, norm, colorbar_label, mark_t, unlearned
):
    cmap = matplotlib.colormaps[cmap].with_extremes(bad=NAN_COLOR)
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    column_labels = [f"{t}*" if t in unlearned else t for t in matrix.columns]
    ax.set_xticks(range(values.shape[1]), column_labels, rotation=35, ha="right")
    for j, task in enumerate(matrix.columns):
        if task in unlearned:
            ax.add_patch(
                Rectangle((j - 0.5, -0.5), 1, len(matrix), fill=False, hatch="//", ec="0.55", lw=0)
            )
    ax.set_yticks(range(values.shape[0]), row_labels)
    ax.set_xlabel("evaluated task (Atlantis cities)")
    for (i, j), v in np.ndenumerate(values):
        if math.isnan(v):
            text, color = "n/a", "black"
        else:
            text, color = f"{v:.2f}", _text_color(cmap(norm(v)))
        if mark_t and trained[i, j]:
            text += " T"
        ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
        if trained[i, j]:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, ec="black"))
    fig.colorbar(image, ax=ax, label=colorbar_label, fraction=0.05, pad=0.02)


def _text_color(rgba) -> str:
    """Black on light cells, white on dark ones."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _draw_summary(ax, summary: dict) -> None:
    ax.axis("off")
    cells = []
    for name in ("trained", "transfer"):
        s = summary[name]
        mean = "n/a" if s["mean"] is None else f"{s['mean']:.2f}"
        sd = "n/a" if s["sd"] is None else f"{s['sd']:.2f}"
        cells.append([name, str(s["n"]), f"{mean} ± {sd}", str(s["n_nan"])])
    table = ax.table(
        cellText=cells,
        colLabels=["cells", "n", "mean ± sd", "n/a"],
        colWidths=[0.28, 0.14, 0.44, 0.14],
        loc="center",
        cellLoc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1.0, 1.8)
    ax.set_title("summary (n/a cells excluded)", fontsize=10)


def plot_summary(matrix: pd.DataFrame, trained, unlearned: Collection[str]) -> dict:
    """The table beside a heatmap: trained vs transfer cells, and the columns pt1 did not
    clearly learn."""
    unknown = sorted(set(unlearned) - set(TASK_NAMES))
    if unknown:
        raise ValueError(f"unlearned tasks {unknown} are not tasks; expected some of {TASK_NAMES}")
    summary = summarize(matrix, trained)
    summary["pt1_did_not_learn"] = [t for t in matrix.columns if t in unlearned]
    return summary


def _plot(
    path, matrix, trained, row_labels, title, cmap, norm, colorbar_label, mark_t, unlearned
) -> dict:
    summary = plot_summary(matrix, trained, unlearned)
    height = max(4.0, 1.8 + 0.55 * len(matrix))
    fig = Figure(figsize=(13, height), layout="constrained")
    FigureCanvasAgg(fig)
    heat_ax, table_ax = fig.subplots(1, 2, width_ratios=[3, 1.2])
    _draw_heatmap(
        fig, heat_ax, matrix, trained, row_labels, cmap, norm, colorbar_label, mark_t, unlearned
    )
    _draw_summary(table_ax, summary)
    fig.suptitle(title)
    if summary["pt1_did_not_learn"]:
        fig.supxlabel(UNLEARNED_NOTE, fontsize=9)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return summary


# --- the three exp3 plots -------------------------------------------------------------------


def plot_ftwb1_heatmap(
    normalized: pd.DataFrame, arch: str, path, unlearned: Collection[str] = ()
) -> dict:
    """7x7: rows = the task FTWB1-k trained, columns = evaluated task; trained = diagonal."""
    matrix = _matrix(normalized, FTWB1)
    return _plot(
        path,
        matrix,
        _trained_mask(matrix),
        row_labels=[model_label(m) for m in matrix.index],
        title=f"{arch}: FTWB1 (one task) normalized Atlantis score\n{SCALE_NOTE}",
        cmap="viridis",
        norm=Normalize(CLIP_LOW, CLIP_HIGH),
        colorbar_label="normalized score",
        mark_t=False,
        unlearned=unlearned,
    )


def plot_ftwb2_heatmap(
    normalized: pd.DataFrame, arch: str, path, unlearned: Collection[str] = ()
) -> dict:
    """Rows = FTWB2 experiments present, columns = evaluated task; trained cells marked T."""
    matrix = _matrix(normalized, FTWB2)
    return _plot(
        path,
        matrix,
        _trained_mask(matrix),
        row_labels=[model_label(m) for m in matrix.index],
        title=f"{arch}: FTWB2 (two tasks) normalized Atlantis score\n{SCALE_NOTE}, T = trained",
        cmap="viridis",
        norm=Normalize(CLIP_LOW, CLIP_HIGH),
        colorbar_label="normalized score",
        mark_t=True,
        unlearned=unlearned,
    )


def plot_ftwb2_vs_ftwb1(
    normalized: pd.DataFrame, arch: str, path, unlearned: Collection[str] = ()
) -> dict:
    """FTWB2 actual - expected (best FTWB1 specialist of its two tasks); 0 = as expected."""
    matrix = ftwb2_vs_ftwb1_matrix(normalized)
    finite = np.abs(matrix.to_numpy(dtype=float))
    finite = finite[~np.isnan(finite)]
    # Symmetric limits keep 0 at the centre; a floor keeps an all-zero matrix drawable.
    limit = max(float(finite.max()) if finite.size else 0.0, 0.05)
    return _plot(
        path,
        matrix,
        _trained_mask(matrix),
        row_labels=[model_label(m) for m in matrix.index],
        title=f"{arch}: FTWB2 minus the best FTWB1 specialist of its two tasks\n"
        "> 0 (blue) = better than expected, T = trained",
        cmap="RdBu",
        norm=TwoSlopeNorm(0.0, -limit, limit),
        colorbar_label="actual - expected",
        mark_t=True,
        unlearned=unlearned,
    )


# --- training curves ------------------------------------------------------------------------


def smooth(values, window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start), so a curve starts at its first step."""
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.arange(len(values)) + 1 - counts]) / counts


def _stage_label(k: int, stage: dict) -> str:
    """'stage 2: 7-task mix x3' from a stage of train_stats.json's `stages`."""
    tasks = stage.get("tasks") or []
    what = "7-task mix" if set(tasks) == set(TASK_NAMES) else "+".join(tasks) or "samples"
    return f"stage {k + 1}: {what} x{stage['epochs']}"


def _mark_stages(ax, stages: list[dict]) -> None:
    """A dotted line where each stage after the first starts (the loss jumps there when the
    stage brings tasks not seen before), and each stage named along its start."""
    if len(stages) < 2:
        return
    for k, stage in enumerate(stages):
        start = stage["first_step"]
        if k:
            ax.axvline(start, color="tab:blue", ls=":", lw=1.0)
        ax.annotate(
            _stage_label(k, stage),
            xy=(start, 0.98),
            xycoords=("data", "axes fraction"),
            xytext=(3, 0),
            textcoords="offset points",
            rotation=90,
            va="top",
            fontsize=7,
            color="tab:blue",
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
        )


def plot_training_curves(stats: dict[str, dict], arch: str, path) -> None:
    """Answer loss per step: pt1 on the left, the fine-tunes on the right (FTWB1 solid, FTWB2
    dashed). A flat pt1 curve means the world was not learned."""
    fig = Figure(figsize=(13, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    pt1_ax, ft_ax = fig.subplots(1, 2)
    for model in sorted(stats, key=model_order):
        losses = stats[model]["loss_curve"]
        if not losses:
            continue
        steps = np.arange(1, len(losses) + 1)
        if model == PRETRAINED:
            curve = smooth(losses, max(1, len(losses) // 50))
            pt1_ax.plot(steps, losses, color="lightgrey", lw=0.6, label="per step")
            pt1_ax.plot(steps, curve, color="black", lw=1.5, label="moving average")
            _mark_stages(pt1_ax, stats[model].get("stages", []))
        else:
            curve = smooth(losses, max(1, len(losses) // 8))  # short runs: a coarser average
            style = "--" if model_kind(model) == FTWB2 else "-"
            label = model_label(model)
            ft_ax.plot(steps, curve, style, lw=1.2, label=label)
    pt1_stats = stats.get(PRETRAINED, {})
    n_stages = len(pt1_stats.get("stages", []))
    what = f"{n_stages} stages" if n_stages > 1 else f"{pt1_stats.get('epochs', '?')} epochs"
    pt1_ax.set_title(f"pt1 ({what})")
    ft_ax.set_title("fine-tunes from pt1 (moving average)")
    for ax in (pt1_ax, ft_ax):
        ax.set_xlabel("step")
        ax.set_ylabel("answer loss (nats per token, per sample)")
        ax.grid(alpha=0.3)
    pt1_ax.legend(fontsize=8)
    if ft_ax.lines:
        ft_ax.legend(fontsize=7, ncol=2)
    fig.suptitle(f"{arch}: training loss")
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
