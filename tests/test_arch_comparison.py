"""exp3's arch comparison (ftdag.exp3.arch_comparison) on hand-made heatmaps and models."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from ftdag.exp3 import arch_comparison as ac
from ftdag.exp3.names import finetune_names, model_kind, trained_tasks
from ftdag.exp3.tasks import TASK_NAMES

MODELS = finetune_names([2, 4, 9])  # ftwb1-1..7, then three FTWB2 pairs


def heatmaps(trained: float, transfer: float, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for model in MODELS:
        for task in TASK_NAMES:
            value = trained if task in trained_tasks(model) else transfer
            rows.append(
                {
                    "model": model,
                    "kind": model_kind(model),
                    "task": task,
                    "normalized": value + noise * rng.standard_normal(),
                }
            )
    return pd.DataFrame(rows)


def test_cells_split_trained_from_transfer_and_drop_missing_values():
    table = heatmaps(0.8, 0.5)
    table.loc[(table["model"] == "ftwb1-1") & (table["task"] == "angle"), "normalized"] = np.nan
    assert len(ac.cells(table, "ftwb1", "trained")) == 7  # the diagonal
    assert len(ac.cells(table, "ftwb1", "transfer")) == 7 * 6 - 1  # one n/a cell left out
    assert len(ac.cells(table, "ftwb2", "trained")) == 3 * 2
    assert set(ac.cells(table, "ftwb1", "trained")) == {0.8}


def test_score_table_means_with_intervals_around_them():
    scores = ac.score_table({"wide": heatmaps(0.8, 0.5, noise=0.1)})
    assert list(scores["cells"]) == ["trained", "transfer"] * 2
    assert (scores["ci_low"] <= scores["mean"]).all() and (
        scores["mean"] <= scores["ci_high"]
    ).all()
    ftwb1 = scores[scores["kind"] == "ftwb1"].set_index("cells")
    assert ftwb1.loc["trained", "mean"] > ftwb1.loc["transfer", "ci_high"]
    assert ftwb1.loc["transfer", "n"] == 42


def test_differences_are_paired_by_cell_and_say_whether_they_are_beyond_the_interval():
    wide = heatmaps(0.8, 0.5, noise=0.05, seed=1)
    narrow = wide.copy()
    trained = [
        task in trained_tasks(m) for m, task in zip(wide["model"], wide["task"], strict=True)
    ]
    narrow.loc[trained, "normalized"] -= 0.2  # worse on trained cells only, cell by cell
    differences = ac.arch_differences({"wide": wide, "narrow": narrow}).set_index(["kind", "cells"])
    assert differences.loc[("ftwb1", "trained"), "mean"] == pytest.approx(-0.2)
    assert differences.loc[("ftwb1", "trained"), "high"] < 0
    assert differences.loc[("ftwb1", "transfer"), "mean"] == pytest.approx(0.0)
    compute = pd.DataFrame(
        [
            {"arch": "wide", "pt1_flops_vs_first": 1.0, "total_device_hours_vs_first": 1.0},
            {"arch": "narrow", "pt1_flops_vs_first": 0.98, "total_device_hours_vs_first": 1.3},
        ]
    )
    lines = ac.findings(ac.arch_differences({"wide": wide, "narrow": narrow}), compute)
    assert any("FTWB1 trained" in line and ": a difference beyond" in line for line in lines)
    assert any("FTWB1 transfer" in line and "no difference" in line for line in lines)
    assert lines[-1] == "narrow: pretraining FLOPs 0.98× and device-hours 1.30× those of wide"


def test_trained_minus_transfer_per_arch_says_whether_it_is_beyond_its_interval():
    clear = heatmaps(0.8, 0.5, noise=0.05, seed=2)
    overlapping = heatmaps(0.55, 0.5, noise=0.4, seed=3)
    gaps = ac.trained_minus_transfer({"wide": clear, "narrow": overlapping})
    wide = gaps[gaps["arch"] == "wide"].set_index("kind")
    assert wide.loc["ftwb1", "mean"] == pytest.approx(0.3, abs=0.05)
    assert wide.loc["ftwb1", "low"] > 0 and list(wide["n_trained"]) == [7, 6]
    assert list(wide["n_transfer"]) == [42, 3 * 5]  # three FTWB2 models, five others each
    narrow = gaps[gaps["arch"] == "narrow"].set_index("kind")
    assert narrow.loc["ftwb1", "low"] < 0 < narrow.loc["ftwb1", "high"]
    compute = pd.DataFrame([{"arch": "wide"}])
    lines = ac.findings(ac.arch_differences({"wide": clear}), compute, gaps)
    assert any(
        line.startswith("wide, FTWB1: trained − transfer") and ": beyond" in line for line in lines
    )
    assert any(line.startswith("narrow, FTWB1") and "not beyond" in line for line in lines)


def test_a_group_without_cells_has_no_difference():
    table = heatmaps(0.8, 0.5)
    table = table[~((table["kind"] == "ftwb2") & (table["task"] == "angle"))]
    table.loc[table["kind"] == "ftwb2", "normalized"] = np.nan
    gaps = ac.trained_minus_transfer({"wide": table})
    by_kind = gaps.set_index("kind")
    assert by_kind.loc["ftwb2", "n_trained"] == 0 and np.isnan(by_kind.loc["ftwb2", "mean"])
    lines = ac.findings(
        ac.arch_differences({"wide": table}), pd.DataFrame([{"arch": "wide"}]), gaps
    )
    assert "wide, FTWB2: no trained or no transfer cells" in lines


def save_model(folder, shapes, tokens):
    folder.mkdir(parents=True)
    save_file(
        {f"w{i}": torch.zeros(shape) for i, shape in enumerate(shapes)},
        folder / "model.safetensors",
    )
    (folder / "train_stats.json").write_text(json.dumps({"tokens": tokens}))
    return str(folder)


def test_compute_counts_parameters_tokens_flops_and_device_hours(tmp_path):
    dirs = {
        "pt1": save_model(tmp_path / "pt1", [(10, 4), (3,)], 1000),
        "ftwb1-1": save_model(tmp_path / "f1", [(10, 4), (3,)], 200),
    }
    assert ac.parameter_count(dirs["pt1"]) == 43
    row = ac.compute_row("wide", dirs, {"pt1": 0.5, "ftwb1-1": 0.1})
    assert row["parameters"] == 43 and row["pt1_tokens"] == 1000 and row["total_tokens"] == 1200
    assert row["pt1_flops"] == 6 * 43 * 1000
    assert row["total_device_hours"] == pytest.approx(0.6) and row["finetunes"] == 1
    other = {**row, "arch": "narrow", "pt1_flops": row["pt1_flops"] / 2}
    table = ac.compute_table([row, other])
    assert list(table["pt1_flops_vs_first"]) == [1.0, 0.5]


def test_the_plot_is_written(tmp_path):
    scores = ac.score_table({"wide": heatmaps(0.8, 0.5, 0.1), "narrow": heatmaps(0.7, 0.4, 0.1)})
    compute = ac.compute_table(
        [
            {
                "arch": a,
                "parameters": 1e6,
                "pt1_tokens": 2e6,
                "pt1_flops": 1.2e13,
                "total_flops": 1.5e13,
                "total_device_hours": 0.1,
            }
            for a in ("wide", "narrow")
        ]
    )
    ac.plot_arch_comparison(scores, compute, tmp_path / "arch.png")
    assert (tmp_path / "arch.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
