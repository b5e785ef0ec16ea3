"""The MTL report's logic on made-up tables: improvements and regressions named only where the
paired interval excludes 0, the best epoch per domain, overfitting flags, the final snapshot."""

from __future__ import annotations

import pandas as pd
import pytest

from ftdag.mtl.report import (
    IMPROVEMENT,
    NO_DIFFERENCE,
    REGRESSION,
    best_epochs,
    compare,
    domain_curves,
    final_snapshot,
    markdown,
    overfitting,
)


def predictions(rewards: dict[tuple[str, str, str], list[float]]) -> pd.DataFrame:
    """{(arm, domain, task): rewards per prompt} as one row per arm and prompt."""
    rows = []
    for (arm, domain, task), values in rewards.items():
        for k, value in enumerate(values):
            rows.append(
                {
                    "arm": arm,
                    "domain": domain,
                    "task": task,
                    "item": f"{task}{k}",
                    "reward": value,
                }
            )
    return pd.DataFrame(rows)


MADE_UP = predictions(
    {
        # math: pcgrad right on every prompt the baseline got wrong: a clear improvement
        ("baseline", "math", "add"): [0.0] * 60 + [1.0] * 40,
        ("pcgrad", "math", "add"): [1.0] * 100,
        # logic: pcgrad loses half: a clear regression
        ("baseline", "logic", "sort"): [1.0] * 100,
        ("pcgrad", "logic", "sort"): [1.0, 0.0] * 50,
        # code: one prompt apart out of 100: no difference shown
        ("baseline", "code", "program"): [0.0] * 50 + [1.0] * 50,
        ("pcgrad", "code", "program"): [0.0] * 49 + [1.0] * 51,
    }
)


def test_verdicts_follow_the_paired_interval():
    table = compare(MADE_UP, "baseline", "pcgrad").set_index(["level", "name"])
    assert table.loc[("task", "add"), "verdict"] == IMPROVEMENT
    assert table.loc[("task", "add"), "difference"] == pytest.approx(0.6)
    assert table.loc[("task", "sort"), "verdict"] == REGRESSION
    assert table.loc[("task", "program"), "verdict"] == NO_DIFFERENCE
    low, high = table.loc[("task", "program"), ["ci_low", "ci_high"]]
    assert low <= 0 < high  # one prompt apart: the interval reaches 0
    assert table.loc[("domain", "math"), "n"] == 100


def test_the_report_names_only_what_the_intervals_show():
    comparison = compare(MADE_UP, "baseline", "pcgrad")
    flags = pd.DataFrame(
        [
            {
                "arm": "pcgrad",
                "domain": "logic",
                "peak_epoch": 2,
                "peak": 0.9,
                "last_epoch": 6,
                "last": 0.5,
                "overfits": True,
            }
        ]
    )
    text = markdown(comparison, "baseline", "pcgrad", flags, {"pcgrad": "patience ran out"})
    helps = next(line for line in text.splitlines() if "helps" in line)
    hurts = next(line for line in text.splitlines() if "hurts" in line)
    assert "task add" in helps and "program" not in helps and "sort" not in helps
    assert "task sort" in hurts and "program" not in hurts
    assert "pcgrad/logic (peak 0.900 at epoch 2, 0.500 at epoch 6)" in text
    assert "**pcgrad stopped**: patience ran out" in text


def evolution(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """{(arm, domain): reward per epoch 1..n} as rows of evolution.csv (one task per domain)."""
    rows = []
    for (arm, domain), per_epoch in values.items():
        for epoch, value in enumerate(per_epoch, start=1):
            rows.append(
                {
                    "arm": arm,
                    "seed": 0,
                    "snapshot": f"epoch_{epoch}",
                    "epoch": epoch,
                    "domain": domain,
                    "task": domain + "_t",
                    "reward_mean": value,
                }
            )
    return pd.DataFrame(rows)


def test_best_epoch_and_overfitting_per_domain():
    curves = domain_curves(
        evolution(
            {("pcgrad", "math"): [0.1, 0.6, 0.5, 0.2], ("pcgrad", "logic"): [0.2, 0.4, 0.4, 0.39]}
        )
    )
    best = best_epochs(curves).set_index("domain")
    assert best.loc["math", "best_epoch"] == 2 and best.loc["logic", "best_epoch"] == 2
    flags = overfitting(curves, threshold=0.1).set_index("domain")
    assert flags.loc["math", "overfits"] and flags.loc["math", "last"] == pytest.approx(0.2)
    assert not flags.loc["logic", "overfits"]  # fell by 0.01 only


def test_the_final_snapshot_is_the_best_else_the_last():
    assert final_snapshot(["epoch_2", "epoch_10", "best"]) == "best"
    assert final_snapshot(["epoch_2", "epoch_10", "epoch_9"]) == "epoch_10"
