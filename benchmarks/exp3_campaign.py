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
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import REPO, by_rule, finish, machine, planned_jobs, scratch, snakemake  # noqa: E402
from ftdag.core.io import write_json  # noqa: E402


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

    workdir = scratch(args.keep)

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
        "machine": machine(),
        "wall_seconds": round(wall, 1),
        "jobs": planned_jobs(plan),
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
    finish(workdir, args.keep)


if __name__ == "__main__":
    main()
