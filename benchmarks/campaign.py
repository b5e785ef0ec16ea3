"""What the campaign benchmarks share: Snakemake run on a scratch folder, a target timed from
clean, and the job table read from the jobs' own `benchmark:` files.

Each family's benchmark adds what it measures to `run_family`'s common result.
"""

from __future__ import annotations

import argparse
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


def snakemake(workdir, *args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", str(workdir), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True)


def planned_jobs(plan: subprocess.CompletedProcess) -> int:
    """The job count of a `-n --quiet rules` plan (its `total N` line)."""
    return int(re.search(r"^total\s+(\d+)", plan.stdout + plan.stderr, re.M).group(1))


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


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version()}


def scratch(keep: Path | None) -> Path:
    """`keep` (results and Snakemake's records removed first) or a new temporary folder."""
    workdir = keep or Path(tempfile.mkdtemp(prefix="ftdag-bench-"))
    shutil.rmtree(workdir / "results", ignore_errors=True)
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def family_parser(doc: str) -> argparse.ArgumentParser:
    """The options every family benchmark takes; `doc` is the benchmark's docstring."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", type=Path, help="run here and keep the results")
    parser.add_argument("--configfile", type=Path, help="merged over the embedded default")
    return parser


def run_family(args: argparse.Namespace, family: str, targets: list[str]) -> tuple[Path, dict]:
    """Plans, then runs `targets` from clean with `args.cores`; the working folder and the
    measurements every family reports (wall, jobs, compute share, seconds by rule)."""
    workdir = scratch(args.keep)
    config = ["--configfile", str(args.configfile.resolve())] if args.configfile else []
    plan = snakemake(workdir, *targets, "-n", "--quiet", "rules", *config)
    started = time.perf_counter()
    snakemake(workdir, "--cores", str(args.cores), *targets, *config)
    wall = time.perf_counter() - started
    jobs, core_seconds = job_table(workdir / f"results/benchmarks/{family}")
    return workdir, {
        "target": targets,
        "config": str(args.configfile) if args.configfile else "the embedded default",
        "cores": args.cores,
        "machine": machine(),
        "wall_seconds": round(wall, 1),
        # Families that plan evaluations after training run more jobs than were planned.
        "jobs_planned": planned_jobs(plan),
        "jobs_run": len(jobs),
        "job_core_seconds": round(core_seconds, 1),
        "compute_share": round(core_seconds / (wall * args.cores), 3),
        "by_rule": by_rule(jobs),
    }


def finish(workdir: Path, keep: Path | None) -> None:
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
