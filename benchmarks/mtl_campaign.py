"""Benchmark: the mtl family of the embedded default, from a clean results folder.

Runs `snakemake --cores N` on the family's outputs (report, comparison, two plots) in a
scratch working directory and writes JSON: wall time, jobs (before and after training: the
evaluations are planned once training has run), compute share (core-seconds of jobs /
(wall x cores)), per arm and seed the validation reward before training and at its best, per
domain, with seconds per step (PCGrad against the baseline, side by side in the same run),
and the report's per-domain comparison with its intervals.

    python benchmarks/mtl_campaign.py [--cores 2] [--out FILE] [--keep DIR] [--configfile F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "benchmarks"))

from exp3_campaign import by_rule, snakemake  # noqa: E402
from ftdag.core.cost import cost_rows, read_benchmark  # noqa: E402
from ftdag.core.io import write_json  # noqa: E402

TARGETS = [
    "results/mtl/report.md",
    "results/mtl/comparison.csv",
    "results/mtl/plots/learning_curves.png",
    "results/mtl/plots/final_heatmap.png",
]


def trainings(results: Path) -> dict:
    """Per arm and seed: validation before and at best (mean and per domain), steps and
    seconds per step."""
    found = {}
    for stats_path in sorted(results.glob("mtl/*/seed*/training/train_stats.json")):
        folder = stats_path.parent
        stats = json.loads(stats_path.read_text())
        validations = pd.read_csv(folder / "validations.csv")
        best = validations.loc[validations["validation_reward_mean"].idxmax()]
        key = f"{folder.parent.parent.name}/{folder.parent.name}"
        found[key] = {
            "aggregator": stats["aggregator"],
            "steps": stats["steps"],
            "train_seconds": stats["train_seconds"],
            "seconds_per_step": round(stats["train_seconds"] / stats["steps"], 4),
            "stopped": stats.get("stopped_early") or f"ran all {stats['epochs']} epochs",
            "before": validations.iloc[0].drop(["epoch", "step"]).round(4).to_dict(),
            "best_epoch": int(best["epoch"]),
            "best": best.drop(["epoch", "step"]).round(4).to_dict(),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", type=Path, help="run here and keep the results")
    parser.add_argument("--configfile", type=Path, help="merged over the embedded default")
    args = parser.parse_args()
    out = args.out or REPO / "benchmarks/results/mtl_campaign.json"
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="ftdag-bench-"))
    shutil.rmtree(workdir / "results", ignore_errors=True)
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    config = ["--configfile", str(args.configfile.resolve())] if args.configfile else []

    before = snakemake(workdir, *TARGETS, "-n", "--quiet", "rules", *config)
    started = time.perf_counter()
    snakemake(workdir, "--cores", str(args.cores), *TARGETS, *config)
    wall = time.perf_counter() - started

    results = workdir / "results"
    jobs = pd.DataFrame(
        cost_rows([read_benchmark(p) for p in sorted((results / "benchmarks/mtl").rglob("*.tsv"))])
    )
    core_seconds = float((jobs["wall_seconds"] * jobs["threads"]).sum())
    comparison = pd.read_csv(results / "mtl/comparison.csv")
    per_training = trainings(results)
    step = {
        aggregator: min(
            t["seconds_per_step"] for t in per_training.values() if t["aggregator"] == aggregator
        )
        for aggregator in {t["aggregator"] for t in per_training.values()}
    }
    result = {
        "target": TARGETS,
        "config": str(args.configfile) if args.configfile else "the embedded default",
        "cores": args.cores,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "wall_seconds": round(wall, 1),
        "jobs_planned_before_training": int(before.stdout.split("total")[1].split()[0]),
        "jobs_run": len(jobs),
        "job_core_seconds": round(core_seconds, 1),
        "compute_share": round(core_seconds / (wall * args.cores), 3),
        "by_rule": by_rule(jobs),
        "seconds_per_step_best": step,
        "pcgrad_step_over_baseline": round(step["pcgrad"] / step["sum"], 2)
        if {"pcgrad", "sum"} <= set(step)
        else None,
        "trainings": per_training,
        "domains": comparison[comparison["level"] == "domain"].round(4).to_dict("records"),
        "report": (results / "mtl/report.md").read_text(),
    }
    write_json(out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "report"}, indent=2))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
