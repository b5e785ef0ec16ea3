"""The MTL family through the real Snakemake: training is a checkpoint rule, and the DAG gets
one evaluation job per snapshot that training kept, planned exactly once training has run."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from ftdag.mtl.steps import kept_snapshots
from workflow_helpers import (
    REPO,
    SMOKE_CONFIG,
    job_counts,
    run_snakemake,
    write_config,
)

TARGET = "results/mtl/evolution.csv"
REAL_SCALE = REPO / "config" / "mtl_qwen2.5.yaml"
USER_DATA = REPO / "tests" / "data" / "mtl"
TRAININGS = [f"results/mtl/{arm}/seed0/training" for arm in ("baseline", "pcgrad")]


def test_before_training_both_arms_are_planned_and_evaluations_wait(tmp_path):
    result = run_snakemake(tmp_path, "-n", TARGET)
    counts = job_counts(result.stdout)
    assert counts["mtl_train"] == 2 and counts["mtl_arm_evolution"] == 2
    assert "mtl_evaluate" not in counts  # unknown until training has chosen what to keep
    assert "checkpoint jobs" in result.stdout + result.stderr


@pytest.mark.slow
def test_after_training_exactly_the_kept_snapshots_are_evaluated(tmp_path):
    run_snakemake(tmp_path, "--cores", "2", *TRAININGS)
    kept = {t: kept_snapshots(tmp_path / t) for t in TRAININGS}
    assert all(kept.values())
    plan = job_counts(run_snakemake(tmp_path, "-n", TARGET).stdout)
    assert plan["mtl_evaluate"] == sum(len(k) for k in kept.values())
    assert "mtl_train" not in plan

    run_snakemake(tmp_path, "--cores", "2", TARGET)
    evolution = pd.read_csv(tmp_path / TARGET)
    assert set(evolution["arm"]) == {"baseline", "pcgrad"}
    for training, snapshots in kept.items():
        arm = training.split("/")[2]
        assert set(evolution.loc[evolution["arm"] == arm, "snapshot"]) == set(snapshots)
    assert evolution.groupby(["arm", "snapshot"]).size().eq(19).all()  # every task, once
    assert evolution["reward_mean"].between(0, 1).all()
    validations = pd.read_csv(tmp_path / TRAININGS[1] / "validations.csv")
    assert validations["epoch"].iloc[0] == 0  # validated before training
    assert "Nothing to be done" in run_snakemake(tmp_path, "-n", TARGET).stdout

    # The report compares each arm's final snapshot: best by validation, else the last kept.
    plots = [f"results/mtl/plots/{p}.png" for p in ("learning_curves", "final_heatmap")]
    run_snakemake(tmp_path, "--cores", "1", "results/mtl/report.md", *plots)
    for plot in plots:
        assert (tmp_path / plot).read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "results/mtl/report.md").read_text()
    assert report.startswith("# MTL: pcgrad against baseline")
    assert "**baseline/0 stopped**" in report and "**pcgrad/0 stopped**" in report
    comparison = pd.read_csv(tmp_path / "results/mtl/comparison.csv")
    assert set(comparison.loc[comparison["level"] == "domain", "name"]) == {
        "math",
        "logic",
        "code",
        "science",
        "simulation",
        "tabular",
    }
    assert (comparison.loc[comparison["level"] == "task", "n"] == 5).all()  # test_per_task
    assert (comparison["ci_low"] <= comparison["difference"]).all()


def test_the_real_scale_config_dry_runs_through_the_slurm_profile(tmp_path):
    config = yaml.safe_load(REAL_SCALE.read_text())
    config["mtl"]["data"]["files"] = {
        "train": [str(USER_DATA / "train.jsonl")],
        "test": [str(USER_DATA / "test.parquet")],
    }
    config["mtl"]["data"]["validation_per_task"] = 4
    path = write_config(tmp_path / "real.yaml", config)
    result = run_snakemake(
        tmp_path,
        "-n",
        "--profile",
        "slurm",
        "results/mtl/report.md",
        configfile=[SMOKE_CONFIG, path],
    )
    blocks = re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", result.stdout)
    train_blocks = [b for b in blocks if b.startswith("checkpoint mtl_train:")]
    outputs = {re.search(r"output: (\S+)", b).group(1) for b in train_blocks}
    assert outputs == {f"results/mtl/{arm}/seed0/training" for arm in ("baseline", "pcgrad")}
    assert all(re.search(r"\bgpu=2\b", b) for b in train_blocks)  # two DDP processes each
    data_block = next(b for b in blocks if b.startswith(("rule mtl_data:", "localrule mtl_data:")))
    assert str(USER_DATA / "test.parquet") in data_block  # the user's files are its inputs
