"""The compare family through the real Snakemake, ftdag's own server and the real openai
client: scenes to report, a rerun that asks the API nothing, and an API key that no file the
run writes contains."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest
import yaml

from workflow_helpers import (
    REPO,
    SMOKE_CONFIG,
    job_counts,
    run_snakemake,
    snakemake_command,
    snakemake_env,
    write_config,
)

TARGET = "results/compare/report.md"
KEY = "sk-ftdag-test-" + "7f3c9a1e5b2d4c6a8e0f1b3d5c7a9e1f"


def test_the_family_is_planned_from_data_to_report(tmp_path):
    counts = job_counts(run_snakemake(tmp_path, "-n", TARGET).stdout)
    assert counts["compare_answers"] == 3  # baseline, API fine-tune, local fine-tune
    assert counts["compare_api_finetune"] == counts["compare_local_finetune"] == 1
    assert counts["total"] == 9


def test_a_real_endpoint_without_a_key_stops_before_any_job(tmp_path):
    config = yaml.safe_load(SMOKE_CONFIG.read_text())
    config["compare"]["api"] = {
        "base_url": "https://api.example.invalid/v1",
        "api_key_env": "NO_SUCH_KEY_FTDAG",
    }
    path = write_config(tmp_path / "real.yaml", config)
    result = run_snakemake(tmp_path, "-n", TARGET, configfile=path, check=False)
    assert result.returncode != 0
    assert "'compare.api.api_key_env'" in result.stdout + result.stderr
    assert "NO_SUCH_KEY_FTDAG" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def run_with_key(workdir, *args):
    env = {**snakemake_env(), "OPENAI_API_KEY": KEY}
    result = subprocess.run(
        snakemake_command(workdir, *args),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


@pytest.mark.slow
def test_smoke_run_caches_every_answer_and_writes_the_key_nowhere(tmp_path):
    run_with_key(tmp_path, "--cores", "2", TARGET)
    results = tmp_path / "results/compare"
    metrics = pd.read_csv(results / "metrics.csv")
    assert list(metrics["model"]) == ["baseline", "api_finetune", "local_finetune"]
    assert (metrics["n"] == metrics["n"].iloc[0]).all() and metrics["n"].iloc[0] > 0
    report = (results / "report.md").read_text()
    assert "## Success criteria" in report and "Provenance:" in report
    sheets = pd.read_excel(results / "metrics_comparison.xlsx", sheet_name=None)
    assert "comparison" in sheets and len(sheets) == 4
    for plot in ("metrics_comparison", "score_distribution", "error_distribution"):
        assert (results / f"plots/{plot}.png").read_bytes()[:4] == b"\x89PNG"
    runs = {
        m: yaml.safe_load((results / f"answers/{m}.run.json").read_text()) for m in metrics["model"]
    }
    assert runs["baseline"]["requests"] == runs["baseline"]["answers"] > 0
    assert runs["api_finetune"]["model"].startswith("ft:ftdag-vlm-base:")
    state = yaml.safe_load((results / "finetunes/api_finetune.json").read_text())
    assert state["status"] == "succeeded"

    # A rerun of the answers asks the API nothing: every answer comes from the cache.
    answers = [f"results/compare/answers/{m}.jsonl" for m in ("baseline", "api_finetune")]
    for path in answers:
        (tmp_path / path).unlink()
    run_with_key(tmp_path, "--cores", "2", *answers)
    for model in ("baseline", "api_finetune"):
        again = yaml.safe_load((results / f"answers/{model}.run.json").read_text())
        assert again["requests"] == 0 and again["cache_hits"] == runs[model]["answers"]
    # One fine-tuning job in all, on the server's own record.
    server = yaml.safe_load((results / "server/state.json").read_text())
    assert len(server["jobs"]) == 1

    # The key is in no file the runs wrote: results, logs, benchmarks, Snakemake's metadata.
    leaks = []
    for root in (tmp_path / "results", tmp_path / ".snakemake"):
        for path in root.rglob("*"):
            if path.is_file() and KEY.encode() in path.read_bytes():
                leaks.append(str(path))
    assert leaks == []
    assert KEY not in os.environ.get("OPENAI_API_KEY", "")  # the test set it for the runs only


def test_the_real_scale_config_dry_runs_through_the_slurm_profile(tmp_path):
    """config/compare_openai.yaml: OpenAI's endpoint (no request is made by a dry-run), the
    user's file and a local model folder substituted by the test's own."""
    config = yaml.safe_load((REPO / "config/compare_openai.yaml").read_text())
    config["compare"]["data"]["source"] = str(REPO / "tests/data/compare_user/scores.jsonl")
    local = tmp_path / "local_vlm"
    local.mkdir()
    config["compare"]["models"][2]["model"] = str(local)
    path = write_config(tmp_path / "real.yaml", config)
    env = {**snakemake_env(), "OPENAI_API_KEY": KEY}
    result = subprocess.run(
        snakemake_command(
            tmp_path, "-n", "--profile", "slurm", TARGET, configfile=[SMOKE_CONFIG, path]
        ),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = job_counts(result.stdout)
    # No local server: no base model and no local fine-tune; the local model is a folder.
    assert "compare_base" not in counts and "compare_local_finetune" not in counts
    assert counts["compare_api_finetune"] == 1 and counts["compare_answers"] == 3
    assert KEY not in result.stdout + result.stderr
