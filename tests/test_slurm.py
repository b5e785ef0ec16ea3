"""SLURM: what profiles/slurm plans (dry-runs; no cluster needed), and the smoke campaign on a
real single-node cluster (Debian's slurm-wlm, started by tools/local_slurm.sh), with a training
job cancelled mid-way and a rerun that completes only what is missing."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter

import pytest
import torch
import yaml

from ftdag.mtl.steps import kept_snapshots
from workflow_helpers import (
    REPO,
    SMOKE_CONFIG,
    job_counts,
    snakemake_command,
    snakemake_env,
    write_config,
)

LOCAL_SLURM = REPO / "tools" / "local_slurm.sh"
SLURM_PROFILE = REPO / "profiles" / "slurm"
# Test-only layer: the local cluster's partition, small memory and time, fast polling.
TEST_LAYER = REPO / "tests" / "profiles" / "slurm-local"
SLURM_SMOKE_CONFIG = REPO / "tests" / "slurm_smoke_config.yaml"


def submissions_in_dry_run(output: str) -> Counter:
    """What the cluster would see: one sbatch per group job and per job outside a group
    (group members are indented under their 'Group job' line; local rules never go out)."""
    planned = Counter(re.findall(r"^(?:\[.*\] )?Group job (\w+)", output, re.MULTILINE))
    planned.update(re.findall(r"^rule (\w+):", output, re.MULTILINE))
    return planned


def submissions_in_run(output: str) -> Counter:
    """sbatch submissions of a real run, by rule or group (from the plugin's log paths)."""
    names = re.findall(r"has been submitted with SLURM jobid \d+ \(log: \S*/slurm/(\w+)", output)
    groups = (
        r"^group_(exp3_data|exp3_evaluation|curriculum_prep|curriculum_evaluation"
        r"|mtl_evaluation)_.*"
    )
    return Counter(re.sub(groups, r"\1", n) for n in names)


def progress_percentages(output: str) -> list[int]:
    """Snakemake's 'N of M steps (P%) done' lines: above 100 means a job ran twice."""
    return [int(p) for p in re.findall(r"\d+ of \d+ steps \((\d+)%\) done", output)]


def dry_run(workdir, *args, env=None, cwd=REPO, configfile=SMOKE_CONFIG) -> str:
    result = subprocess.run(
        snakemake_command(workdir, "-n", *args, configfile=configfile),
        cwd=cwd,
        env=env or snakemake_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_28_models_go_out_in_at_most_16_evaluation_submissions(tmp_path):
    # The study's exp3: wide and narrow, 1 + 7 + 6 models each = 28 models x 15 evaluations.
    config = write_config(tmp_path / "two_archs.yaml", {"exp3": {"run_archs": ["wide", "narrow"]}})
    output = dry_run(tmp_path / "work", "--profile", str(SLURM_PROFILE), configfile=config)
    assert job_counts(output)["exp3_evaluate"] == 28
    planned = submissions_in_dry_run(output)
    assert "exp3_evaluate" not in planned  # every evaluation is inside a chunk
    assert planned["exp3_evaluation"] == 7  # chunks of 4 models (group-components)
    assert planned["exp3_evaluation"] <= 16
    # Data preparation is one submission; training is one per model. (A dry-run does not
    # mark local rules; the real run below shows plots and metrics never go out.)
    assert planned["exp3_data"] == 1
    assert planned["exp3_pretrain"] == 2
    assert planned["exp3_finetune"] == 26


def test_chunk_size_is_a_profile_setting(tmp_path):
    output = dry_run(
        tmp_path / "work",
        "--profile",
        str(SLURM_PROFILE),
        "--group-components",
        "exp3_evaluation=5",
        "exp3_data=100",
    )
    # The smoke config has 10 models: chunks of 5 make 2 submissions.
    assert submissions_in_dry_run(output)["exp3_evaluation"] == 2


def test_bare_profile_name_resolves_from_the_repository_root(tmp_path):
    # How users write it: Snakemake looks for a bare profile name in the working directory,
    # where `slurm` links to profiles/slurm.
    assert (REPO / "slurm").resolve() == SLURM_PROFILE.resolve()
    output = dry_run(
        tmp_path / "work", "--profile", "slurm", "results/exp3/plots/tiny_ftwb2_vs_ftwb1.png"
    )
    assert "Using profiles slurm" in output
    assert submissions_in_dry_run(output)["exp3_evaluation"] == 3  # 10 models, chunks of 4


def test_partition_and_account_come_from_the_environment(tmp_path):
    site = {"FTDAG_SLURM_PARTITION": "gpu-a100", "FTDAG_SLURM_ACCOUNT": "mylab"}
    output = dry_run(
        tmp_path / "work", "--profile", str(SLURM_PROFILE), env={**snakemake_env(), **site}
    )
    assert "slurm_partition=gpu-a100, slurm_account=mylab" in output
    unset = {k: v for k, v in snakemake_env().items() if k not in site}
    output = dry_run(tmp_path / "work", "--profile", str(SLURM_PROFILE), env=unset)
    # Empty: the plugin falls back to the cluster's default partition and guesses the account.
    assert "slurm_partition=, slurm_account=," in output


def test_a_retry_asks_for_more_time_and_memory():
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    for rule in (
        "exp3_pretrain",
        "exp3_finetune",
        "exp3_evaluate",
        "curriculum_stage",
        "curriculum_evaluate",
    ):
        resources = profile["set-resources"][rule]
        for key in ("mem_mb", "runtime"):
            first, second = (eval(resources[key], {"attempt": a}) for a in (1, 2))
            assert second == 2 * first > 0, (rule, key)
    assert profile["retries"] >= 1
    assert profile["slurm-requeue"] is True


def test_site_example_profile_layers_over_the_slurm_profile(tmp_path):
    output = dry_run(
        tmp_path / "work",
        "--profile",
        str(SLURM_PROFILE),
        "--profile",
        str(REPO / "profiles" / "slurm-example-site"),
    )
    assert "slurm_partition=gpu-a100" in output and "gpu_model=a100" in output
    assert submissions_in_dry_run(output)["exp3_evaluation"] == 2  # chunks of 8


# --- a real cluster -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """The single-node cluster, started (and installed) if need be; stopped afterwards if this
    fixture started it."""
    check = subprocess.run([LOCAL_SLURM, "check"], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"cannot run a local SLURM cluster here: {check.stdout.strip()}")
    was_running = (
        "slurmctld: running"
        in subprocess.run([LOCAL_SLURM, "status"], capture_output=True, text=True).stdout
    )
    started = subprocess.run([LOCAL_SLURM, "start"], capture_output=True, text=True, timeout=600)
    assert started.returncode == 0, started.stderr
    yield
    if not was_running:
        subprocess.run([LOCAL_SLURM, "stop"], check=True, timeout=60)


def slurm_run_command(workdir, *args) -> list[str]:
    # The smoke campaign, with a longer pretraining run.
    return snakemake_command(
        workdir,
        "--profile",
        str(SLURM_PROFILE),
        "--profile",
        str(TEST_LAYER),
        *args,
        configfile=[SMOKE_CONFIG, SLURM_SMOKE_CONFIG],
    )


def run_output(command, workdir) -> str:
    result = subprocess.run(
        command, cwd=workdir, env=snakemake_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def wait_for(condition, timeout, describe):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, describe()
        time.sleep(0.5)


def stopped_steps(log_text: str) -> set[int]:
    return {int(s) for s in re.findall(r"stopped by signal at step (\d+)", log_text)}


def assert_mtl_trained_once_and_evaluated_in_chunks(workdir, both: str) -> None:
    """`both`: the consoles of the cancelled run and the rerun."""
    # mtl: each arm's training is one submission, and the snapshots it kept were evaluated in
    # chunks of up to 3 (tests/profiles/slurm-local), planned once training had run, each
    # snapshot once. (Whether that happened before or after the cancel varies.) With a
    # checkpoint finishing mid-run, no chunk was re-packed and submitted twice.
    everything = submissions_in_run(both)
    kept = [
        snapshot
        for arm in ("baseline", "pcgrad")
        for snapshot in kept_snapshots(workdir / f"results/mtl/{arm}/seed0/training")
    ]
    assert everything["rule_mtl_train"] == 2 and "rule_mtl_evaluate" not in everything
    assert 1 <= everything["mtl_evaluation"] <= len(kept)
    assert len(re.findall(r"Finished jobid: \d+ \(Rule: mtl_evaluate\)", both)) == len(kept)
    assert max(progress_percentages(both)) <= 100
    assert (workdir / "results/mtl/report.md").exists()


def test_smoke_campaign_through_slurm_with_a_cancelled_training_job(cluster, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    console = workdir / "snakemake_first.out"
    checkpoint = workdir / "results/exp3/tiny/checkpoints/pt1.pt"
    pretrain_log = workdir / "results/logs/exp3/tiny/train_pt1.log"

    # 1. Start the campaign; cancel pretraining once it has written its first checkpoint.
    started = time.time()
    with open(console, "w") as out:
        first = subprocess.Popen(
            slurm_run_command(workdir),
            cwd=workdir,
            env=snakemake_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    pretrain_job = re.compile(r"submitted with SLURM jobid (\d+) \(log: \S*rule_exp3_pretrain/")
    wait_for(lambda: pretrain_job.search(console.read_text()), 300, console.read_text)
    wait_for(checkpoint.exists, 300, lambda: console.read_text() + pretrain_log.read_text())
    job_id = pretrain_job.search(console.read_text()).group(1)
    subprocess.run(["scancel", job_id], check=True)
    assert first.wait(timeout=300) != 0
    first_seconds = time.time() - started

    # Plain scancel also signals srun in the batch step, which may kill the training step
    # before the stop checkpoint is written (a race of milliseconds): then the periodic one
    # bounds the loss to one interval. When the stop checkpoint wins, every process stopped at
    # its step and nothing is lost. (`scancel --signal=TERM` and the profile's time-limit
    # signal reach the training step alone, and always let it checkpoint.)
    step = torch.load(checkpoint, weights_only=False)["state"]["step"]
    stopped = stopped_steps(pretrain_log.read_text())
    assert step >= 20  # at least the first periodic checkpoint
    assert stopped <= {step}, (step, stopped)  # a logged stop is the step on disk
    assert (workdir / "results/exp3/data/train/pt1.jsonl").exists()
    assert not (workdir / "results/exp3/tiny/models/pt1").exists()

    # 2. The rerun plans only what is missing: no data preparation again.
    plan = run_output(slurm_run_command(workdir, "-n"), workdir)
    assert "exp3_data" not in submissions_in_dry_run(plan)
    assert "exp3_training_set" not in job_counts(plan)

    started = time.time()
    second = subprocess.run(
        slurm_run_command(workdir),
        cwd=workdir,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    second_seconds = time.time() - started
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-6000:]
    assert f"at step {step}/" in pretrain_log.read_text()  # resumed where it stopped
    submitted = submissions_in_run(output)
    # exp3: 1 pretraining + 9 fine-tunes + 10 models' evaluations in chunks of 2; nothing else.
    # (The curriculum family ran beside it; how far it got before the cancel varies.)
    exp3 = Counter({k: v for k, v in submitted.items() if "exp3" in k})
    assert exp3 == Counter(
        {"rule_exp3_pretrain": 1, "rule_exp3_finetune": 9, "exp3_evaluation": 5}
    ), output[-4000:]
    assert (workdir / "results/curriculum/verdict.md").exists()
    assert_mtl_trained_once_and_evaluated_in_chunks(workdir, console.read_text() + output)

    for plot in ("ftwb2_vs_ftwb1", "ftwb1_evaluation_heatmap", "ftwb2_evaluation_heatmap"):
        assert (workdir / f"results/exp3/plots/tiny_{plot}.png").stat().st_size > 10_000
    stats = yaml.safe_load((workdir / "results/exp3/tiny/models/pt1/train_stats.json").read_text())
    assert stats["processes"] == 2  # two GPU slots: two DDP processes
    assert not checkpoint.exists()
    assert "Nothing to be done" in run_output(slurm_run_command(workdir, "-n"), workdir)
    print(
        f"\nSLURM smoke: first run (cancelled) {first_seconds:.0f} s, rerun {second_seconds:.0f}"
        f" s with {sum(submitted.values())} submissions {dict(submitted)}"
    )
