"""Benchmark: the default exp3 campaign of one arch, from a clean results folder.

Runs `snakemake --cores N` on the four plots of an arch (for wide, the default target, among
them results/exp3/plots/wide_ftwb2_vs_ftwb1.png) in a scratch working directory and writes
JSON: wall time, number of jobs, the sum of the jobs' run times (from Snakemake `benchmark:`
files), the compute share = core-seconds of jobs / (wall x cores), the dry-run time of the
default DAG, and how much better than chance / the training mean pt1 is (with a 95% interval
over prompts, and whether all of it beats knowing nothing: `clear`).

    python benchmarks/exp3_campaign.py [--arch wide] [--cores 2] [--out FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from ftdag.io import write_json  # noqa: E402


def snakemake(workdir, *args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", str(workdir), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True)


def jobs_in_log(log_text: str) -> dict[str, dict]:
    """benchmark file -> {rule, threads}, from the job blocks of Snakemake's log."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", log_text):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        bench = re.search(r"benchmark: (\S+)", block)
        if rule and bench:
            found = re.search(r"threads: (\d+)", block)
            jobs[bench.group(1)] = {
                "rule": rule.group(1),
                "threads": int(found.group(1)) if found else 1,
            }
    return jobs


def read_benchmarks(workdir, logged: dict[str, dict]) -> list[dict]:
    jobs = []
    for path in sorted((workdir / "results/benchmarks").rglob("*.tsv")):
        with open(path) as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        relative = str(path.relative_to(workdir))
        jobs.append(
            {
                "job": relative.removeprefix("results/benchmarks/").removesuffix(".tsv"),
                "rule": logged[relative]["rule"],
                "seconds": float(row["s"]),
                "threads": logged[relative]["threads"],
                "cpu_seconds": float(row.get("cpu_time") or 0.0),
                "max_rss_mb": float(row["max_rss"])
                if row.get("max_rss") not in ("-", None)
                else None,
            }
        )
    return jobs


def pt1_learning(workdir, arch: str) -> dict:
    """The workflow's own check of pt1 against knowing nothing (results/exp3/{arch}/
    pt1_learning.csv), by task."""
    table = pd.read_csv(workdir / f"results/exp3/{arch}/pt1_learning.csv")
    return table.set_index("task").to_dict("index")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="wide")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", type=Path, help="run here and keep the results")
    args = parser.parse_args()
    out = args.out or REPO / f"benchmarks/results/exp3_{args.arch}_campaign.json"

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="ftdag-bench-"))
    shutil.rmtree(workdir / "results", ignore_errors=True)
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    snakemake(workdir, "-n", "--quiet")
    dry_run_seconds = time.perf_counter() - started

    # The default target: the plots of the arch and its pt1 check (rule all, for the default
    # config).
    plots = (
        "ftwb1_evaluation_heatmap",
        "ftwb2_evaluation_heatmap",
        "ftwb2_vs_ftwb1",
        "training_curves",
    )
    targets = [f"results/exp3/plots/{args.arch}_{plot}.png" for plot in plots]
    targets.append(f"results/exp3/{args.arch}/pt1_learning.csv")
    started = time.perf_counter()
    run = snakemake(workdir, "--cores", str(args.cores), *targets)
    wall = time.perf_counter() - started

    started = time.perf_counter()
    after = snakemake(workdir, "-n")
    dry_run_done_seconds = time.perf_counter() - started

    jobs = read_benchmarks(workdir, jobs_in_log(run.stderr + run.stdout))
    job_seconds = sum(j["seconds"] for j in jobs)
    core_seconds = sum(j["seconds"] * j["threads"] for j in jobs)
    by_rule: dict[str, dict] = {}
    for job in jobs:
        entry = by_rule.setdefault(job["rule"], {"jobs": 0, "seconds": 0.0})
        entry["jobs"] += 1
        entry["seconds"] = round(entry["seconds"] + job["seconds"], 2)
    result = {
        "targets": targets,
        "cores": args.cores,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "wall_seconds": round(wall, 1),
        "jobs": len(jobs),
        "job_seconds": round(job_seconds, 1),
        "job_core_seconds": round(core_seconds, 1),
        "compute_share": round(core_seconds / (wall * args.cores), 3),
        "compute_share_unweighted": round(job_seconds / (wall * args.cores), 3),
        "compute_share_note": "core-seconds weight each job's run time by the threads "
        "Snakemake reserved for it (pretraining takes 2); unweighted sums run times alone",
        "dry_run_seconds_clean": round(dry_run_seconds, 2),
        "dry_run_seconds_done": round(dry_run_done_seconds, 2),
        "nothing_to_be_done_after": "Nothing to be done" in after.stdout + after.stderr,
        "by_rule": by_rule,
        "pt1_learning": pt1_learning(workdir, args.arch),
        "jobs_detail": jobs,
    }
    write_json(out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "jobs_detail"}, indent=2))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
