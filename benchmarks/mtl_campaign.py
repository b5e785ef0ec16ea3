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

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import REPO, family_parser, finish, run_family  # noqa: E402
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


def seconds_per_step(per_training: dict) -> dict:
    """The fastest seconds per step of each aggregator, over its trainings."""
    aggregators = {t["aggregator"] for t in per_training.values()}
    return {
        aggregator: min(
            t["seconds_per_step"] for t in per_training.values() if t["aggregator"] == aggregator
        )
        for aggregator in aggregators
    }


def main() -> None:
    args = family_parser(__doc__).parse_args()
    workdir, result = run_family(args, "mtl", TARGETS)
    results = workdir / "results"
    comparison = pd.read_csv(results / "mtl/comparison.csv")
    per_training = trainings(results)
    step = seconds_per_step(per_training)
    result["seconds_per_step_best"] = step
    result["pcgrad_step_over_baseline"] = (
        round(step["pcgrad"] / step["sum"], 2) if {"pcgrad", "sum"} <= set(step) else None
    )
    result["trainings"] = per_training
    result["domains"] = comparison[comparison["level"] == "domain"].round(4).to_dict("records")
    result["report"] = (results / "mtl/report.md").read_text()
    write_json(args.out or REPO / "benchmarks/results/mtl_campaign.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "report"}, indent=2))
    finish(workdir, args.keep)


if __name__ == "__main__":
    main()
