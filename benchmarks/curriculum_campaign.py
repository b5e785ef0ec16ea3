"""Benchmark: the curriculum family of the embedded default, from a clean results folder.

Runs `snakemake --cores N` on the family's outputs (summary, verdict, three plots) in a scratch
working directory and writes JSON: wall time, jobs, compute share (core-seconds of jobs /
(wall x cores), from the jobs' benchmark files), and per arm the final model's overall test
accuracy with its 95% interval, its margin over the majority answer, device-hours and
device-hours per accuracy point; the verdict's text.

    python benchmarks/curriculum_campaign.py [--cores 2] [--out FILE] [--keep DIR] [--configfile F]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import REPO, family_parser, finish, run_family  # noqa: E402
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
    args = family_parser(__doc__).parse_args()
    workdir, result = run_family(args, "curriculum", TARGETS)
    summary = pd.read_csv(workdir / "results/curriculum/summary.csv", dtype={"eval_stage": str})
    result["final_models"] = final_models(summary)
    result["verdict"] = (workdir / "results/curriculum/verdict.md").read_text()
    result["summary"] = summary.round(5).to_dict("records")
    write_json(args.out or REPO / "benchmarks/results/curriculum_campaign.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "summary"}, indent=2))
    finish(workdir, args.keep)


if __name__ == "__main__":
    main()
