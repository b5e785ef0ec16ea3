"""The curriculum family through the real Snakemake: stages chained from config, a smoke run to
its plot, a user's JSONL through the same rules, and bad user data stopped before any job."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from workflow_helpers import (
    REPO,
    SMOKE_CONFIG,
    job_counts,
    planned_jobs,
    run_snakemake,
    write_config,
)

TARGET = "results/curriculum/plots/accuracy_by_stage.png"
USER_DATA = Path(__file__).parent / "data" / "curriculum_user" / "questions.jsonl"
REAL_SCALE = REPO / "config" / "curriculum_qwen_vl.yaml"
PLOTS = ("accuracy_by_stage", "accuracy_after_each_stage", "cost_vs_accuracy")


def test_each_stage_starts_from_the_previous_one(tmp_path):
    result = run_snakemake(tmp_path, "-n", TARGET)
    counts = job_counts(result.stdout)
    assert counts["curriculum_stage"] == 1 + 3  # random: one stage; curriculum: three
    assert counts["curriculum_evaluate"] == 4  # every stage model, intermediate ones too
    inputs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", result.stdout):
        output = re.search(r"output: (\S+)", block)
        if block.startswith("rule curriculum_stage:") and output:
            inputs[output.group(1).rstrip(",")] = re.search(r"input: (.*)", block).group(1)
    arm = "results/curriculum/curriculum/seed0"
    assert f"{arm}/stage2" in inputs[f"{arm}/stage3"]
    assert f"{arm}/stage1" in inputs[f"{arm}/stage2"]
    assert "results/curriculum/base/56px/seed0" in inputs[f"{arm}/stage1"]


@pytest.mark.slow
def test_smoke_run_to_the_plots_and_the_verdict(tmp_path):
    run_snakemake(
        tmp_path,
        "--cores",
        "2",
        "results/curriculum/verdict.md",
        *(f"results/curriculum/plots/{p}.png" for p in PLOTS),
    )
    results = tmp_path / "results/curriculum"
    for plot in PLOTS:
        assert (results / f"plots/{plot}.png").read_bytes()[:4] == b"\x89PNG"
    summary = pd.read_csv(results / "summary.csv", dtype={"eval_stage": str})
    assert set(summary["arm"]) == {"random", "curriculum"}
    assert sorted(summary.loc[summary["arm"] == "curriculum", "stage_model"].unique()) == [1, 2, 3]
    assert set(summary["eval_stage"]) == {"1", "2", "3", "overall"}
    assert (
        (summary["ci_low"] <= summary["accuracy"]) & (summary["accuracy"] <= summary["ci_high"])
    ).all()
    assert summary["majority_baseline"].between(0, 1).all()
    # Device-hours from the training jobs' benchmarks, growing over the curriculum's stages.
    staged = summary[(summary["arm"] == "curriculum") & (summary["eval_stage"] == "overall")]
    assert (staged["device_hours"] > 0).all() and staged["device_hours"].is_monotonic_increasing
    expected = summary["device_hours"] / (100 * summary["accuracy"])
    right = summary["accuracy"] > 0  # no cost per point for an accuracy of 0
    assert np.allclose(summary.loc[right, "cost_per_point"], expected[right])
    assert summary.loc[~right, "cost_per_point"].isna().all()
    verdict = (results / "verdict.md").read_text()
    assert "**Most accurate**" in verdict and "curriculum − random" in verdict
    assert "Confounded" in verdict  # the smoke arms use different templates
    assert "<table>" in (results / "summary.html").read_text()
    splits = {
        s: {r["image"] for r in map(json.loads, (results / f"data/{s}.jsonl").open())}
        for s in ("train", "validation", "test")
    }
    assert not splits["train"] & splits["test"] and not splits["validation"] & splits["test"]
    stage2 = json.loads((results / "curriculum/seed0/stage2/train_stats.json").read_text())
    assert stage2["question_stages"] == [2]


def test_the_real_scale_config_plans_through_slurm_with_two_gpus_per_stage(tmp_path):
    config = yaml.safe_load(REAL_SCALE.read_text())
    config["curriculum"]["data"]["source"] = str(USER_DATA)
    path = write_config(tmp_path / "real.yaml", config)
    result = run_snakemake(
        tmp_path,
        "-n",
        "--profile",
        "slurm",
        "results/curriculum/verdict.md",
        configfile=[SMOKE_CONFIG, path],
    )
    counts = job_counts(result.stdout)
    assert counts["curriculum_stage"] == 1 + 3 + 1 and "curriculum_base" not in counts
    stages = planned_jobs(result.stdout, "curriculum_stage")
    assert set(stages) == {
        "results/curriculum/random/seed0/stage1",
        *(f"results/curriculum/curriculum/seed0/stage{k}" for k in (1, 2, 3)),
        "results/curriculum/random_448/seed0/stage1",
    }
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", result.stdout)
    stage_blocks = [b for b in blocks if b.startswith("rule curriculum_stage:")]
    assert all(re.search(r"\bgpu=2\b", b) for b in stage_blocks)
    first = next(b for b in stage_blocks if "curriculum/seed0/stage1" in b)
    assert "results/curriculum/base" not in first  # a hub base is no input file


@pytest.mark.slow
def test_a_users_jsonl_goes_through_the_same_rules(tmp_path):
    config = yaml.safe_load(SMOKE_CONFIG.read_text())
    config["curriculum"]["data"] = {
        "source": str(USER_DATA),
        "splits": {"train": 0.5, "validation": 0.0, "test": 0.5},
    }
    path = write_config(tmp_path / "user.yaml", config)
    run_snakemake(tmp_path, "--cores", "2", "results/curriculum/summary.csv", configfile=path)
    test = [json.loads(line) for line in (tmp_path / "results/curriculum/data/test.jsonl").open()]
    users = [json.loads(line) for line in USER_DATA.open()]
    assert 0 < len(test) < len(users)
    assert {r["question"] for r in test} <= {r["question"] for r in users}
    summary = pd.read_csv(tmp_path / "results/curriculum/summary.csv", dtype={"eval_stage": str})
    overall = summary[summary["eval_stage"] == "overall"]
    assert (overall["n"] == len(test)).all()


def test_bad_user_data_stops_before_any_job_naming_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"image": "nowhere.png", "question": "q?", "answer": "a", "stage": 1}) + "\n"
    )
    config = yaml.safe_load(SMOKE_CONFIG.read_text())
    config["curriculum"]["data"] = {"source": str(bad)}
    path = write_config(tmp_path / "bad.yaml", config)
    result = run_snakemake(tmp_path, "--cores", "1", TARGET, configfile=path, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "curriculum.data.source" in output and "line 1: image 'nowhere.png' not found" in output
    assert not (tmp_path / "results").exists()


def test_seeds_multiply_bases_and_stages(tmp_path):
    config = yaml.safe_load(SMOKE_CONFIG.read_text())
    config["curriculum"]["seeds"] = [0, 1, 2]
    path = write_config(tmp_path / "seeds.yaml", config)
    result = run_snakemake(tmp_path, "-n", TARGET, "--quiet", "rules", configfile=path)
    counts = job_counts(result.stdout)
    assert counts["curriculum_base"] == 3
    assert counts["curriculum_stage"] == counts["curriculum_evaluate"] == 3 * 4
    assert counts["curriculum_summary"] == 1  # one table: means and sds over the seeds
