"""exp3's research question, wide vs narrow (vs wider): the archs side by side.

Per arch, the normalized Atlantis scores of the FTWB1 and FTWB2 heatmaps split into trained
cells (the tasks a model was fine-tuned on) and transfer cells (the others), each a mean with
a 95% bootstrap interval over the cells; between two archs, the mean difference over the cells
both have (same model, same task), paired. Next to it, each arch's training compute:
parameters, tokens seen, FLOPs ≈ 6·N·tokens (N all parameters, embeddings included), and the
device-hours its jobs measured, so that "compute held constant" is checked, not assumed.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd

from ftdag.core.stats import bootstrap_difference_of_means, paired_bootstrap_difference
from ftdag.exp3.names import FTWB1, FTWB2, PRETRAINED, model_kind, trained_tasks

CELL_GROUPS = ((FTWB1, "trained"), (FTWB1, "transfer"), (FTWB2, "trained"), (FTWB2, "transfer"))
SCORE_COLUMNS = ["arch", "kind", "cells", "n", "mean", "ci_low", "ci_high"]


def cells(normalized: pd.DataFrame, kind: str, group: str) -> pd.Series:
    """The finite normalized scores of `kind`'s trained or transfer cells, by (model, task)."""
    rows = normalized[normalized["kind"] == kind]
    trained = np.array(
        [t in trained_tasks(m) for m, t in zip(rows["model"], rows["task"], strict=True)]
    )
    picked = rows[trained if group == "trained" else ~trained]
    values = picked.set_index(["model", "task"])["normalized"].astype(float)
    return values[np.isfinite(values)]


def mean_interval(values, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% bootstrap interval over the values (NaN-free); NaNs for none."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    return paired_bootstrap_difference(np.zeros_like(values), values, n_resamples, seed)


def score_table(normalized_by_arch: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """SCORE_COLUMNS: per arch, FTWB1/FTWB2 trained/transfer means with intervals."""
    rows = []
    for arch, normalized in normalized_by_arch.items():
        for kind, group in CELL_GROUPS:
            values = cells(normalized, kind, group)
            mean, low, high = mean_interval(values.to_numpy())
            rows.append([arch, kind, group, len(values), mean, low, high])
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def trained_minus_transfer(normalized_by_arch: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The study's finding per arch and kind: mean of the trained cells minus the mean of the
    transfer cells, with a 95% interval from resampling each group of cells on its own."""
    rows = []
    for arch, normalized in normalized_by_arch.items():
        for kind in (FTWB1, FTWB2):
            trained, transfer = (cells(normalized, kind, g) for g in ("trained", "transfer"))
            diff = (float("nan"),) * 3
            if len(trained) and len(transfer):
                diff = bootstrap_difference_of_means(transfer.to_numpy(), trained.to_numpy())
            rows.append([arch, kind, len(trained), len(transfer), *diff])
    columns = ["arch", "kind", "n_trained", "n_transfer", "mean", "low", "high"]
    return pd.DataFrame(rows, columns=columns)


def arch_differences(normalized_by_arch: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Each arch against the first: mean of (arch − first) over the cells both have, with a
    paired 95% interval, per kind and cell group."""
    archs = list(normalized_by_arch)
    rows = []
    for other in archs[1:]:
        for kind, group in CELL_GROUPS:
            first = cells(normalized_by_arch[archs[0]], kind, group)
            second = cells(normalized_by_arch[other], kind, group)
            shared = first.index.intersection(second.index)
            if shared.empty:
                diff = (float("nan"),) * 3
            else:
                diff = paired_bootstrap_difference(first[shared], second[shared])
            rows.append([f"{other} - {archs[0]}", kind, group, len(shared), *diff])
    return pd.DataFrame(rows, columns=["comparison", "kind", "cells", "n", "mean", "low", "high"])


def parameter_count(model_dir) -> int:
    """Parameters of a saved model, from its safetensors header (no weights read)."""
    path = Path(model_dir) / "model.safetensors"
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return sum(
        int(np.prod(entry["shape"], dtype=np.int64))
        for name, entry in header.items()
        if name != "__metadata__"
    )


def compute_row(arch: str, model_dirs: dict[str, str], device_hours: dict[str, float]) -> dict:
    """An arch's training compute: parameters, tokens (pt1 and the fine-tunes), FLOPs, and
    device-hours of its training jobs (`device_hours` by model name)."""
    stats = {
        m: json.loads((Path(d) / "train_stats.json").read_text()) for m, d in model_dirs.items()
    }
    n_params = parameter_count(model_dirs[PRETRAINED])
    pt1_tokens = int(stats[PRETRAINED]["tokens"])
    tokens = sum(int(s["tokens"]) for s in stats.values())
    return {
        "arch": arch,
        "parameters": n_params,
        "pt1_tokens": pt1_tokens,
        "pt1_flops": 6 * n_params * pt1_tokens,
        "total_tokens": tokens,
        "total_flops": 6 * n_params * tokens,
        "pt1_device_hours": device_hours.get(PRETRAINED, float("nan")),
        "total_device_hours": float(sum(device_hours.get(m, 0.0) for m in model_dirs)),
        "finetunes": sum(model_kind(m) != PRETRAINED for m in model_dirs),
    }


def compute_table(rows: list[dict]) -> pd.DataFrame:
    """compute_row per arch, with each arch's FLOPs and device-hours over the first's."""
    table = pd.DataFrame(rows)
    for column in ("pt1_flops", "total_flops", "total_device_hours"):
        table[f"{column}_vs_first"] = table[column] / table[column].iloc[0]
    return table


def _fmt(mean: float, low: float, high: float) -> str:
    return f"{mean:+.3f} (95% {low:+.3f} to {high:+.3f})"


def findings(
    differences: pd.DataFrame, compute: pd.DataFrame, gaps: pd.DataFrame | None = None
) -> list[str]:
    """The answer in sentences: per arch, trained above transfer beyond its interval or not
    (`gaps`: `trained_minus_transfer`); each difference between archs beyond its interval or
    not; and whether the archs' compute matched."""
    lines = []
    for row in (gaps if gaps is not None else pd.DataFrame()).itertuples(index=False):
        if not (row.n_trained and row.n_transfer):
            lines.append(f"{row.arch}, {row.kind.upper()}: no trained or no transfer cells")
            continue
        beyond = "beyond its interval" if row.low > 0 else "not beyond its interval"
        lines.append(
            f"{row.arch}, {row.kind.upper()}: trained − transfer cells "
            f"{_fmt(row.mean, row.low, row.high)}: {beyond}"
        )
    for row in differences.itertuples(index=False):
        if not row.n:
            lines.append(f"{row.comparison}, {row.kind.upper()} {row.cells}: no shared cells")
            continue
        beyond = row.low > 0 or row.high < 0
        verdict = (
            "a difference beyond its interval" if beyond else "no difference beyond its interval"
        )
        lines.append(
            f"{row.comparison}, {row.kind.upper()} {row.cells} cells ({row.n}): "
            f"{_fmt(row.mean, row.low, row.high)}: {verdict}"
        )
    for row in compute.iloc[1:].itertuples(index=False):
        lines.append(
            f"{row.arch}: pretraining FLOPs {row.pt1_flops_vs_first:.2f}× and device-hours "
            f"{row.total_device_hours_vs_first:.2f}× those of {compute['arch'].iloc[0]}"
        )
    return lines


def plot_arch_comparison(scores: pd.DataFrame, compute: pd.DataFrame, path) -> None:
    """Bars: trained and transfer means with 95% intervals per arch, FTWB1 and FTWB2; beside
    them each arch's training compute."""
    from ftdag.core.figures import new_figure, save_png

    archs = list(dict.fromkeys(scores["arch"]))
    fig = new_figure((13, 4.8))
    bars_ax, table_ax = fig.subplots(1, 2, width_ratios=[2, 1.3])
    width = 0.8 / len(archs)
    for i, arch in enumerate(archs):
        rows = scores[scores["arch"] == arch].set_index(["kind", "cells"]).loc[list(CELL_GROUPS)]
        x = np.arange(len(CELL_GROUPS)) + (i - (len(archs) - 1) / 2) * width
        errors = [rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]]
        bars_ax.bar(x, rows["mean"], width, yerr=np.nan_to_num(errors), capsize=3, label=arch)
    bars_ax.set_xticks(range(len(CELL_GROUPS)), [f"{k.upper()}\n{c}" for k, c in CELL_GROUPS])
    bars_ax.set_ylabel("normalized Atlantis score (mean of cells, 95% CI)")
    bars_ax.axhline(0, color="grey", lw=0.8)
    bars_ax.legend(title="arch")
    table_ax.axis("off")
    shown = [
        [
            row.arch,
            f"{row.parameters / 1e6:.2f}M",
            f"{row.pt1_tokens / 1e6:.1f}M",
            f"{row.pt1_flops:.2e}",
            f"{row.total_device_hours:.3f}",
        ]
        for row in compute.itertuples(index=False)
    ]
    columns = ["arch", "params", "pt1 tokens", "pt1 FLOPs", "device-h"]
    table = table_ax.table(cellText=shown, colLabels=columns, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1.0, 1.7)
    table_ax.set_title("training compute (FLOPs ≈ 6·N·tokens)", fontsize=10)
    fig.suptitle("exp3: archs side by side, FTWB1 and FTWB2 trained vs transfer cells")
    save_png(fig, path)
