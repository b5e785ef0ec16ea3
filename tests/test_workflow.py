"""The workflow itself, through the real Snakemake: job counts, bad config, an end-to-end run of
the smoke config that is killed half-way and resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest
import yaml

from ftdag.exp3 import arch_comparison
from ftdag.exp3 import names as exp3_names
from ftdag.exp3.tasks import TASK_NAMES
from workflow_helpers import (
    REPO,
    SMOKE_CONFIG,
    job_counts,
    planned_jobs,
    run_snakemake,
    snakemake_command,
    snakemake_env,
    write_config,
)

DEFAULT_CONFIG = REPO / "config" / "config.yaml"
PLOTS = exp3_names.PLOTS


def dry_run(tmp_path, *targets, configfile=DEFAULT_CONFIG):
    result = run_snakemake(tmp_path, "-n", "--quiet", "rules", *targets, configfile=configfile)
    return job_counts(result.stdout)


def test_default_dry_run_plans_the_wide_campaign(tmp_path):
    counts = dry_run(tmp_path)
    assert counts["exp3_pretrain"] == 1  # only wide is in run_archs
    assert counts["exp3_finetune"] == 7 + 6  # FTWB1-1..7 and the study's six pairs
    assert counts["exp3_evaluate"] == 14  # one job per model, all 15 evaluations each
    assert counts["exp3_training_set"] == 14  # pt1 + 13 fine-tunes, shared by all archs
    assert counts["exp3_plot"] == 3
    assert counts["exp3_training_curves"] == 1
    assert counts["exp3_pt1_learning"] == 1
    assert "exp3_arch_comparison" not in counts  # one arch: nothing to compare
    assert counts["campaign_cost"] == counts["campaign_page"] == 1
    # curriculum: data, splits, one base; random 1 stage + curriculum 3, each evaluated.
    assert counts["curriculum_base"] == 1
    assert counts["curriculum_stage"] == counts["curriculum_evaluate"] == 4
    assert counts["curriculum_plot"] == 3
    # mtl: two arms x two seeds trained; what they keep is evaluated once they have run (the
    # evaluations are not planned yet, the steps after them are).
    assert counts["mtl_train"] == counts["mtl_arm_evolution"] == 4
    assert "mtl_evaluate" not in counts
    assert counts["mtl_plot"] == 2
    # compare: data, chat files, the base, two fine-tunes, three models' answers, the summary.
    assert counts["compare_answers"] == 3 and counts["compare_summary"] == 1
    assert counts["total"] == 54 + 16 + 13 + 9


def test_all_archs_and_pairs(tmp_path):
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["exp3"]["run_archs"] = ["wide", "narrow", "wider"]
    config["exp3"]["ftwb2_pairs"] = list(range(1, 22))
    counts = dry_run(tmp_path, configfile=write_config(tmp_path / "all.yaml", config))
    assert counts["exp3_pretrain"] == 3
    assert counts["exp3_finetune"] == 3 * (7 + 21)
    assert counts["exp3_evaluate"] == 3 * 29
    assert counts["exp3_training_set"] == 29  # data do not depend on the arch
    assert counts["exp3_plot"] == 9
    assert counts["exp3_training_curves"] == 3
    assert counts["exp3_pt1_learning"] == 3
    assert counts["exp3_arch_comparison"] == 1  # the three side by side


def test_a_subset_of_specialists(tmp_path):
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["exp3"]["ftwb1_tasks"] = ["distance", "compass", "angle"]
    config["exp3"]["ftwb2_pairs"] = [2, 15]  # angle+compass, distance+compass
    counts = dry_run(tmp_path, configfile=write_config(tmp_path / "subset.yaml", config))
    assert counts["exp3_finetune"] == 3 + 2
    assert counts["exp3_evaluate"] == 1 + 3 + 2


def test_dag_is_a_graph_of_the_rules(tmp_path):
    dag = run_snakemake(tmp_path, "--dag", configfile=SMOKE_CONFIG).stdout
    assert dag.lstrip().startswith("digraph")
    for rule in ("exp3_pretrain", "exp3_finetune", "exp3_evaluate", "exp3_plot"):
        assert rule in dag


def test_one_plot_builds_only_its_arch(tmp_path):
    result = run_snakemake(
        tmp_path,
        "-n",
        "results/exp3/plots/narrow_ftwb2_vs_ftwb1.png",
        configfile=DEFAULT_CONFIG,
    )
    assert "results/exp3/narrow/models/pt1" in result.stdout
    assert "/wide/" not in result.stdout and "/wider/" not in result.stdout
    assert job_counts(result.stdout)["exp3_pretrain"] == 1


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"ftwb2_pairs": [2, 22]}, "exp3.ftwb2_pairs[1]"),
        (
            {"data": {"pt1_stages": [{"tasks": ["distance"], "samples": -5}]}},
            "exp3.data.pt1_stages[0].samples",
        ),
        ({"world": {"seed": "zero"}}, "exp3.world.seed"),
        ({"wrold": {}}, "exp3"),
        ({"run_archs": ["huge"]}, "exp3.run_archs"),
        ({"ftwb1_tasks": ["distance", "teleport"]}, "exp3.ftwb1_tasks[1]"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, change, key):
    config = yaml.safe_load(SMOKE_CONFIG.read_text())
    for name, value in change.items():
        if isinstance(value, dict) and isinstance(config["exp3"].get(name), dict):
            config["exp3"][name].update(value)
        else:
            config["exp3"][name] = value
    bad = write_config(tmp_path / "bad.yaml", config)
    result = run_snakemake(tmp_path, "--cores", "1", configfile=bad, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"config key '{key}'" in output
    assert not (tmp_path / "results").exists()  # nothing ran


def outputs_done(workdir) -> dict:
    models = workdir / "results/exp3/tiny/models"
    return {
        "finetuned": sorted(
            p.name
            for p in models.glob("ftwb*")
            if (p / "model.safetensors").exists() and not p.name.startswith(".")
        )
        if models.exists()
        else [],
    }


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke campaign, from clean to the end, uninterrupted."""
    workdir = tmp_path_factory.mktemp("smoke")
    run_snakemake(workdir, "--cores", "2")
    return workdir


RESULT_TABLES = ("metrics.csv", "normalized.csv", "pt1_learning.csv")


@pytest.mark.slow
def kill_once_fine_tunes_finish(workdir, count: int) -> list[str]:
    """Starts the smoke campaign, kills its whole process group once `count` fine-tunes are
    done, and returns the fine-tunes done by then."""
    process = subprocess.Popen(
        snakemake_command(workdir, "--cores", "2"),
        cwd=REPO,
        env=snakemake_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while len(outputs_done(workdir)["finetuned"]) < count:
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.time() < deadline, "no fine-tune finished in time"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return outputs_done(workdir)["finetuned"]


def assert_rerun_plans_only_what_is_missing(tmp_path, finished: list[str]) -> None:
    """After the kill: the lock removed, the plan retrains no pt1 and redoes at most a job per
    core of what was finished."""
    # A hard kill leaves Snakemake's lock behind; what a user does next:
    run_snakemake(tmp_path, "--unlock")
    plan = run_snakemake(tmp_path, "-n").stdout
    counts = job_counts(plan)
    assert "exp3_pretrain" not in counts  # pt1 survived the kill and is not retrained
    assert "exp3_world" not in counts and "exp3_tokenizer" not in counts
    planned = planned_jobs(plan, "exp3_finetune")
    planned_models = {output.rsplit("/", 1)[1] for output in planned}
    all_models = {f"ftwb1-{k}" for k in range(1, 8)} | {"ftwb2-2", "ftwb2-4"}
    # Everything missing is planned; of what exists, only a job cut off between writing its
    # output and Snakemake recording it (at most one per core) is redone, flagged incomplete.
    assert planned_models >= all_models - set(finished)
    redone = planned_models & set(finished)
    assert len(redone) <= 2
    for output, reason in planned.items():
        if output.rsplit("/", 1)[1] in redone:
            # rerun-incomplete (profiles/default) reports these as forced
            assert "incomplete" in reason.lower() or reason == "Forced execution", reason


def assert_a_complete_smoke_run(tmp_path) -> None:
    """All plots, metrics, normalized scores and the pt1 check of the smoke run, and nothing
    left to do."""
    results = tmp_path / "results/exp3"
    for plot in PLOTS:
        png = results / "plots" / f"tiny_{plot}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (results / "plots/tiny_training_curves.png").read_bytes()[:4] == b"\x89PNG"
    metrics = pd.read_csv(results / "tiny/metrics.csv")
    assert list(metrics.columns) == [
        "model",
        "eval",
        "task",
        "cities",
        "metric",
        "value",
        "n",
        "n_unparsed",
    ]
    assert len(metrics) == 10 * 15  # pt1 + 7 FTWB1 + 2 FTWB2, 15 evaluations each
    assert (metrics["n"] == 10).all()
    normalized = pd.read_csv(results / "tiny/normalized.csv")
    assert len(normalized) == 9 * 7
    learning = pd.read_csv(results / "tiny/pt1_learning.csv")
    assert learning["task"].tolist() == list(TASK_NAMES)
    assert (learning["n"] == 10).all()
    assert (learning["ci95_low"] <= learning["margin"]).all()
    assert (learning["margin"] <= learning["ci95_high"]).all()
    # The verdict follows the interval: clear exactly when all of it is above zero.
    assert (learning["clear"] == (learning["ci95_low"] > 0)).all()
    # The plots mark exactly the tasks that pt1_learning.csv says pt1 did not learn.
    for plot in PLOTS:
        summary = json.loads((results / "plots" / f"tiny_{plot}.summary.json").read_text())
        assert summary["pt1_did_not_learn"] == learning.loc[~learning["clear"], "task"].tolist()
    learning_log = tmp_path / "results/logs/exp3/tiny/pt1_learning.log"
    assert "pt1 beats knowing nothing" in learning_log.read_text()
    assert not list(results.glob("tiny/checkpoints/*.pt"))  # finished runs leave none behind
    assert "Nothing to be done" in run_snakemake(tmp_path, "-n").stdout


def assert_same_results(results, smoke_run) -> None:
    """Tables and plot summaries equal those of the uninterrupted run."""
    for table in RESULT_TABLES:
        resumed = pd.read_csv(results / "tiny" / table)
        pd.testing.assert_frame_equal(resumed, pd.read_csv(smoke_run / "results/exp3/tiny" / table))
    for plot in PLOTS:
        name = f"plots/tiny_{plot}.summary.json"
        resumed = json.loads((results / name).read_text())
        uninterrupted = json.loads((smoke_run / "results/exp3" / name).read_text())
        assert (
            resumed.pop("provenance")["config_hash"]
            == uninterrupted.pop("provenance")["config_hash"]
        )
        assert resumed == uninterrupted


def test_smoke_campaign_killed_and_resumed(tmp_path, smoke_run):
    """Kill the whole run once some fine-tunes are done; the rerun plans only what is missing,
    then completes all three plots, and a further dry-run has nothing to do. Its metrics are
    those of the uninterrupted run: same config and seed on one machine, same values."""
    finished = kill_once_fine_tunes_finish(tmp_path, 2)
    assert_rerun_plans_only_what_is_missing(tmp_path, finished)
    run_snakemake(tmp_path, "--cores", "2")
    assert_a_complete_smoke_run(tmp_path)
    assert_same_results(tmp_path / "results/exp3", smoke_run)

    run_snakemake(tmp_path, "--report", "report.html")
    report = (tmp_path / "report.html").read_text(errors="replace")
    assert "tiny_ftwb2_vs_ftwb1.png" in report and "FTWB2 vs FTWB1" in report
    assert "pt1_learning.html" in report and "Did pt1 learn the world?" in report
    assert "campaign.html" in report and "cost.html" in report
    assert "opens on the campaign" in report  # the landing page (workflow.rst)
    assert "accuracy_after_each_stage.png" in report and "Accuracy after each stage" in report
    assert "summary.html" in report and "Curriculum verdict" in report


@pytest.mark.slow
def test_every_result_carries_provenance_and_the_campaign_its_cost(smoke_run):
    results = smoke_run / "results"
    for table in RESULT_TABLES:
        sidecar = json.loads((results / "exp3/tiny" / f"{table}.provenance.json").read_text())
        assert len(sidecar["config_hash"]) == 16
        assert "git_commit" in sidecar["code"] or "package_version" in sidecar["code"]
        assert {"python", "torch", "transformers", "peft", "snakemake"} <= set(sidecar["versions"])
        assert sidecar["devices"]  # the CPU model here
    summary = json.loads((results / "exp3/plots/tiny_ftwb2_vs_ftwb1.summary.json").read_text())
    assert summary["provenance"]["config_hash"] == sidecar["config_hash"]
    curriculum = json.loads((results / "curriculum/summary.csv.provenance.json").read_text())
    assert len(curriculum["config_hash"]) == 16 and curriculum["devices"]
    assert (
        "Provenance: config hash " + curriculum["config_hash"]
        in (results / "curriculum/verdict.md").read_text()
    )

    cost = pd.read_csv(results / "cost.csv")
    counts = cost["rule"].value_counts()
    assert counts["exp3_pretrain"] == 1 and counts["exp3_finetune"] == 9
    assert counts["exp3_evaluate"] == 10 and counts["exp3_plot"] == 3
    assert (cost["wall_seconds"] > 0).all() and (cost["gpus"] == 0).all()
    pretrain = cost[cost["rule"] == "exp3_pretrain"].iloc[0]
    assert pretrain["wildcards"] == "arch=tiny" and pretrain["threads"] == 2
    assert pretrain["device_hours"] == pytest.approx(pretrain["wall_seconds"] * 2 / 3600, rel=1e-3)

    per_result = pd.read_csv(results / "cost_per_result.csv").set_index("result")
    plot = per_result.loc["results/exp3/plots/tiny_ftwb2_vs_ftwb1.png"]
    # Upstream of the plot: world, tokenizer, eval sets, 10 training sets, pt1, 9 fine-tunes,
    # 10 evaluations, metrics, pt1_learning and the plot itself; not the other two plots.
    assert plot["jobs"] == 1 + 1 + 1 + 10 + 1 + 9 + 10 + 1 + 1 + 1
    exp3 = cost[cost["rule"].str.startswith("exp3_")]
    upstream = exp3[~exp3["rule"].isin(["exp3_plot", "exp3_training_curves"])]
    own = cost[(cost["rule"] == "exp3_plot") & (cost["wildcards"].str.contains("ftwb2_vs_ftwb1"))]
    expected = upstream["device_hours"].sum() + own["device_hours"].sum()
    assert plot["core_hours"] == pytest.approx(expected, rel=1e-3, abs=1e-6)
    curves = per_result.loc["results/exp3/plots/tiny_training_curves.png"]
    assert curves["jobs"] == 3 + 10 + 1 + 9 + 1  # data, pt1, fine-tunes, itself: no evaluation
    page = (results / "campaign.html").read_text()
    assert "config hash" in page and "pt1 clearly learned" in page and "device-hours" in page
    assert "<h3>curriculum</h3>" in page and "Most accurate" in page
    # mtl: the report's summary (where PCGrad helps and hurts, the domain table), not its
    # per-task and per-epoch sections.
    assert "<h3>mtl</h3>" in page and "pcgrad helps" in page and "<td>tabular</td>" in page
    assert "Best epoch per domain" not in page
    # compare: its metrics and the study's criteria, not the examples or the cost.
    assert "<h3>compare</h3>" in page and "Success criteria" in page and "<td>baseline</td>" in page
    assert "Best and worst predictions" not in page


@pytest.mark.slow
def test_arch_comparison_puts_a_second_arch_beside_the_first(tmp_path, smoke_run):
    """Adding an arch to run_archs trains only that arch, then compares the two: scores with
    intervals, paired differences and each arch's compute."""
    workdir = tmp_path / "work"
    shutil.copytree(smoke_run, workdir, symlinks=True)
    narrow = {"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2}
    extra = {
        "exp3": {
            "run_archs": ["tiny", "narrow"],
            "archs": {"narrow": {**narrow, "num_hidden_layers": 1, "epochs": 4}},
        }
    }
    configs = [SMOKE_CONFIG, write_config(tmp_path / "two_archs.yaml", extra)]
    target = "results/exp3/plots/arch_comparison.png"
    counts = job_counts(run_snakemake(workdir, "-n", target, configfile=configs).stdout)
    assert counts["exp3_pretrain"] == 1 and counts["exp3_arch_comparison"] == 1  # narrow's only
    run_snakemake(workdir, "--cores", "2", target, configfile=configs)

    results = workdir / "results/exp3"
    assert (results / "plots/arch_comparison.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((results / "arch_comparison.json").read_text())
    compute = {row["arch"]: row for row in summary["compute"]}
    assert list(compute) == ["tiny", "narrow"]
    assert compute["narrow"]["parameters"] < compute["tiny"]["parameters"]
    # the same pt1 data, 4 epochs of its last stage instead of 2: more tokens
    assert compute["narrow"]["pt1_tokens"] > compute["tiny"]["pt1_tokens"]
    for row in compute.values():
        assert row["pt1_flops"] == 6 * row["parameters"] * row["pt1_tokens"]
        assert row["pt1_device_hours"] > 0 and row["total_device_hours"] > row["pt1_device_hours"]
    scores = pd.read_csv(results / "arch_comparison.csv")
    assert len(scores) == 2 * 4 and set(scores["arch"]) == {"tiny", "narrow"}
    # the smoke models learn too little for most cells to normalize: those are left out
    for arch in ("tiny", "narrow"):
        normalized = pd.read_csv(results / arch / "normalized.csv")
        rows = scores[scores["arch"] == arch].set_index(["kind", "cells"])
        for kind, group in arch_comparison.CELL_GROUPS:
            assert rows.loc[(kind, group), "n"] == len(
                arch_comparison.cells(normalized, kind, group)
            )
    known = scores.dropna(subset=["mean"])
    assert (known["ci_low"] <= known["mean"]).all() and (known["mean"] <= known["ci_high"]).all()
    assert len(summary["differences"]) == 4
    assert len(summary["trained_minus_transfer"]) == 2 * 2  # per arch, FTWB1 and FTWB2
    prefixes = ("tiny, FTWB", "narrow, FTWB", "narrow - tiny", "narrow:")
    assert all(line.startswith(prefixes) for line in summary["findings"])
    assert summary["provenance"]["config_hash"]


@pytest.mark.parametrize("name", ["exp3_learning.yaml", "exp3_paper.yaml"])
def test_shipped_exp3_configs_plan_their_campaigns(tmp_path, name):
    """The shipped exp3 configs pass the schema and plan every arch, with the comparison."""
    config = REPO / "config" / name
    run_archs = yaml.safe_load(config.read_text())["exp3"]["run_archs"]
    archs = write_config(tmp_path / "archs.yaml", {"exp3": {"run_archs": ["wide", "narrow"]}})
    counts = dry_run(tmp_path, configfile=[config, archs])
    assert counts["exp3_pretrain"] == 2 and counts["exp3_arch_comparison"] == 1
    assert counts["exp3_finetune"] == 2 * (7 + 6)
    assert "wide" in run_archs
