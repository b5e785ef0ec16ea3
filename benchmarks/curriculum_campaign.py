"""Benchmark: the curriculum family of the embedded default, from a clean results folder.

Runs `snakemake --cores N` on the family's outputs (summary, verdict, three plots) in a scratch
working directory and writes JSON: wall time, jobs, compute share (core-seconds of jobs /
(wall x cores), from the jobs' benchmark files), and per arm the final model's overall test
accuracy with its 95% interval, its margin over the majority answer, device-hours and
device-hours per accuracy point; the verdict's text.

    python benchmarks/curriculum_campaign.py [--cores 2] [--out FILE] [--keep DIR] [--configfile F]
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
from ftdag.curriculum.summary import final_rows  # noqa: E402

TARGETS = [
    "results/curriculum/summary.csv",
    "results/curriculum/verdict.md",
    *(
        f"results/curriculum/plots/{p}.png"
        for p in ("accuracy_by_stage", "accuracy_after_each_stage", "cost_vs_accuracy")
    ),
]


def final_models(summary: pd.DataFrame) -> dict:
    return {
        row.Index: {
            "stages": int(row.stage_model),
            "accuracy": round(row.accuracy, 4),
            "ci95": [round(row.ci_low, 4), round(row.ci_high, 4)],
            "majority_baseline": round(row.majority_baseline, 4),
            "margin_over_majority": round(row.accuracy - row.majority_baseline, 4),
            "interval_excludes_majority": bool(row.ci_low > row.majority_baseline),
            "device_hours": round(row.device_hours, 6),
            "device_hours_per_point": row.cost_per_point,
            "n": int(row.n),
        }
        for row in final_rows(summary).itertuples()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", type=Path, help="run here and keep the results")
    parser.add_argument("--configfile", type=Path, help="merged over the embedded default")
    args = parser.parse_args()
    out = args.out or REPO / "benchmarks/results/curriculum_campaign.json"
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="ftdag-bench-"))
    shutil.rmtree(workdir / "results", ignore_errors=True)
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    config = ["--configfile", str(args.configfile.resolve())] if args.configfile else []

    plan = snakemake(workdir, *TARGETS, "-n", "--quiet", "rules", *config)
    started = time.perf_counter()
    snakemake(workdir, "--cores", str(args.cores), *TARGETS, *config)
    wall = time.perf_counter() - started

    benchmarks = sorted((workdir / "results/benchmarks/curriculum").rglob("*.tsv"))
    jobs = pd.DataFrame(cost_rows([read_benchmark(p) for p in benchmarks]))
    core_seconds = float((jobs["wall_seconds"] * jobs["threads"]).sum())
    summary = pd.read_csv(workdir / "results/curriculum/summary.csv", dtype={"eval_stage": str})
    result = {
        "target": TARGETS,
        "config": str(args.configfile) if args.configfile else "the embedded default",
        "cores": args.cores,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "wall_seconds": round(wall, 1),
        "jobs": int(plan.stdout.split("total")[1].split()[0]),
        "job_core_seconds": round(core_seconds, 1),
        "compute_share": round(core_seconds / (wall * args.cores), 3),
        "by_rule": by_rule(jobs),
        "final_models": final_models(summary),
        "verdict": (workdir / "results/curriculum/verdict.md").read_text(),
        "summary": summary.round(5).to_dict("records"),
    }
    write_json(out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "summary"}, indent=2))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
