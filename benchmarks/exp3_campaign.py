"""Benchmark: the default exp3 campaign of one arch, from a clean results folder.

Runs `snakemake --cores N` on the default target with `exp3.run_archs: [ARCH]` (for wide, the
embedded default: the plots, the pt1 check, the cost tables) in a scratch working directory and
writes JSON: wall time, number of jobs, the sum of the jobs' run times (from results/cost.csv,
which reads Snakemake's `benchmark:` files), the compute share = core-seconds of jobs /
(wall x cores), the dry-run time of the default DAG, and how much better than chance / the
training mean pt1 is (with a 95% interval over prompts, and whether all of it beats knowing
nothing: `clear`).

    python benchmarks/exp3_campaign.py [--arch wide] [--cores 2] [--out FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
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

from ftdag.core.io import write_json  # noqa: E402


def snakemake(workdir, *args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", str(workdir), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True)


def job_table(benchmark_dir) -> tuple[pd.DataFrame, float]:
    """The cost rows of every benchmark file under `benchmark_dir`, and their core-seconds."""
    from ftdag.core.cost import cost_rows, read_benchmark

    paths = sorted(Path(benchmark_dir).rglob("*.tsv"))
    jobs = pd.DataFrame(cost_rows([read_benchmark(p) for p in paths]))
    return jobs, float((jobs["wall_seconds"] * jobs["threads"]).sum())


def by_rule(jobs: pd.DataFrame) -> dict:
    """Jobs and summed run seconds per rule, from a cost table."""
    return {
        rule: {"jobs": len(group), "seconds": round(float(group["wall_seconds"].sum()), 2)}
        for rule, group in jobs.groupby("rule")
    }


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
    plan = snakemake(workdir, "-n", "--quiet", "rules")
    dry_run_seconds = time.perf_counter() - started

    # The default target (rule all): the arch's plots, its pt1 check, the cost tables and the
    # campaign page.
    started = time.perf_counter()
    arch_config = workdir / "arch.yaml"
    arch_config.write_text(f"exp3: {{run_archs: [{args.arch}]}}\n")
    snakemake(workdir, "--cores", str(args.cores), "--configfile", str(arch_config))
    wall = time.perf_counter() - started

    started = time.perf_counter()
    after = snakemake(workdir, "-n", "--configfile", str(arch_config))
    dry_run_done_seconds = time.perf_counter() - started

    # Every job but the light cost and page rules, which have no benchmark file.
    cost = pd.read_csv(workdir / "results/cost.csv")
    jobs = cost.to_dict("records")
    job_seconds = float(cost["wall_seconds"].sum())
    core_seconds = float((cost["wall_seconds"] * cost["threads"]).sum())
    result = {
        "target": "the default (rule all)",
        "cores": args.cores,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "wall_seconds": round(wall, 1),
        "jobs": int(re.search(r"^total\s+(\d+)", plan.stdout + plan.stderr, re.M).group(1)),
        "benchmarked_jobs": len(jobs),
        "job_seconds": round(job_seconds, 1),
        "job_core_seconds": round(core_seconds, 1),
        "compute_share": round(core_seconds / (wall * args.cores), 3),
        "compute_share_unweighted": round(job_seconds / (wall * args.cores), 3),
        "compute_share_note": "core-seconds weight each job's run time by the threads "
        "Snakemake reserved for it (pretraining takes 2); unweighted sums run times alone",
        "dry_run_seconds_clean": round(dry_run_seconds, 2),
        "dry_run_seconds_done": round(dry_run_done_seconds, 2),
        "nothing_to_be_done_after": "Nothing to be done" in after.stdout + after.stderr,
        "by_rule": by_rule(cost),
        "pt1_learning": pt1_learning(workdir, args.arch),
        "jobs_detail": jobs,
    }
    write_json(out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "jobs_detail"}, indent=2))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
