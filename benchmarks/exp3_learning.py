"""Benchmark: exp3 on the learning config (config/exp3_learning.yaml), from a clean results
folder: does pt1 learn all seven tasks, and does the study's pattern (fine-tuned tasks above
transfer; FTWB2 against FTWB1) hold at this scale?

Runs `snakemake --cores N` on exp3's outputs of each arch (three plots, the training curves,
pt1's check; with two or more archs the arch comparison) and writes JSON: wall, jobs, compute
share, pt1's per-task verdicts, per arch the FTWB1 trained (diagonal) and transfer cells (mean
± sd, and the mean with a 95% bootstrap interval over cells) beside the paper's 0.80 ± 0.15 and
0.49 ± 0.27, FTWB2 − FTWB1 on trained and transfer cells beside the paper's +0.04 and −0.06.
With --keep DIR, a later run with more archs trains only what is missing.

    python benchmarks/exp3_learning.py [--archs wide] [--cores 2] [--out FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import REPO, by_rule, finish, job_table, machine, planned_jobs, snakemake  # noqa: E402
from ftdag.core.io import write_json  # noqa: E402
from ftdag.exp3 import arch_comparison  # noqa: E402
from ftdag.exp3.names import PLOTS  # noqa: E402

PAPER = {
    "ftwb1_trained": "0.80 ± 0.15",
    "ftwb1_transfer": "0.49 ± 0.27",
    "ftwb2_minus_ftwb1_trained": +0.04,
    "ftwb2_minus_ftwb1_transfer": -0.06,
}


def targets(archs: list[str]) -> list[str]:
    found = [f"results/exp3/plots/{a}_{p}.png" for a in archs for p in [*PLOTS, "training_curves"]]
    found += [f"results/exp3/{a}/pt1_learning.csv" for a in archs]
    if len(archs) > 1:
        found.append("results/exp3/plots/arch_comparison.png")
    return found


def per_arch(results: Path, arch: str) -> dict:
    """pt1's verdicts and stages, and the heatmaps' statistics."""
    learning = pd.read_csv(results / f"exp3/{arch}/pt1_learning.csv").set_index("task")
    summaries = {
        plot: json.loads((results / f"exp3/plots/{arch}_{plot}.summary.json").read_text())
        for plot in PLOTS
    }
    normalized = pd.read_csv(results / f"exp3/{arch}/normalized.csv")
    scores = arch_comparison.score_table({arch: normalized}).drop(columns="arch")
    gaps = arch_comparison.trained_minus_transfer({arch: normalized}).drop(columns="arch")
    stats = json.loads((results / f"exp3/{arch}/models/pt1/train_stats.json").read_text())
    return {
        "pt1_clear": int(learning["clear"].astype(bool).sum()),
        "pt1_learning": learning.round(4).to_dict("index"),
        "pt1_stages": stats["stages"],
        "pt1_train_seconds": stats["train_seconds"],
        "ftwb1_heatmap": summaries["ftwb1_evaluation_heatmap"],
        "ftwb2_heatmap": summaries["ftwb2_evaluation_heatmap"],
        "ftwb2_vs_ftwb1": summaries["ftwb2_vs_ftwb1"],
        "cell_means_with_intervals": scores.round(4).to_dict("records"),
        "trained_minus_transfer": gaps.round(4).to_dict("records"),
        "paper": PAPER,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", type=Path, default=REPO / "config/exp3_learning.yaml")
    parser.add_argument("--archs", nargs="+", help="run_archs (default: the config's)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", type=Path, help="run here and keep the results")
    args = parser.parse_args()
    config = yaml.safe_load(args.configfile.read_text())
    archs = args.archs or config["exp3"]["run_archs"]
    out = args.out or REPO / f"benchmarks/results/exp3_learning_{'_'.join(archs)}.json"
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="ftdag-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    archs_file = workdir / "archs.yaml"
    archs_file.write_text(yaml.safe_dump({"exp3": {"run_archs": archs}}))
    configs = ["--configfile", str(args.configfile.resolve()), str(archs_file)]

    wanted = targets(archs)
    plan = snakemake(workdir, *wanted, "-n", "--quiet", "rules", *configs)
    started = time.perf_counter()
    snakemake(workdir, "--cores", str(args.cores), *wanted, *configs)
    wall = time.perf_counter() - started

    results = workdir / "results"
    jobs, core_seconds = job_table(results / "benchmarks/exp3")
    comparison = results / "exp3/arch_comparison.json"
    result = {
        "config": str(args.configfile.relative_to(REPO)),
        "archs": archs,
        "cores": args.cores,
        "machine": machine(),
        "wall_seconds": round(wall, 1),
        "jobs_planned": planned_jobs(plan),
        "job_core_seconds_all_runs_in_dir": round(core_seconds, 1),
        "by_rule_all_runs_in_dir": by_rule(jobs),
        "per_arch": {arch: per_arch(results, arch) for arch in archs},
        "arch_comparison": json.loads(comparison.read_text()) if comparison.exists() else None,
    }
    write_json(out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "per_arch"}, indent=2))
    for arch, found in result["per_arch"].items():
        print(arch, "pt1 clear:", found["pt1_clear"], "of 7")
        print(json.dumps(found["cell_means_with_intervals"], indent=1))
    finish(workdir, args.keep)


if __name__ == "__main__":
    main()
