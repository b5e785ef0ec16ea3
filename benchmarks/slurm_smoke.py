"""Benchmark: the smoke exp3 campaign through SLURM, from a clean results folder.

Starts the single-node cluster of tools/local_slurm.sh (installing slurm-wlm if missing; needs
root), runs `snakemake --profile profiles/slurm --profile tests/profiles/slurm-local` on the
smoke config in a scratch directory, and writes JSON: wall time, sbatch submissions by kind,
and, from a dry-run of the study's 28 models x 15 evaluations through profiles/slurm alone,
how many evaluation submissions the cluster would see.

    python benchmarks/slurm_smoke.py [--out FILE] [--keep DIR]
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
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def snakemake(workdir, *args, check=True) -> str:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", str(workdir), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise SystemExit(output[-5000:])
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=REPO / "benchmarks/results/slurm_smoke.json", type=Path)
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args()

    subprocess.run([REPO / "tools/local_slurm.sh", "start"], check=True)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="ftdag-slurm-bench-"))
    shutil.rmtree(workdir / "results", ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    profiles = ["--profile", str(REPO / "profiles/slurm")]
    test_layer = ["--profile", str(REPO / "tests/profiles/slurm-local")]

    started = time.time()
    output = snakemake(
        workdir, *profiles, *test_layer, "--configfile", str(REPO / "tests/smoke_config.yaml")
    )
    wall = time.time() - started
    logs = re.findall(r"has been submitted with SLURM jobid \d+ \(log: \S*/slurm/(\w+)", output)
    submitted = Counter(re.sub(r"^group_(exp3_(data|evaluation)).*", r"group_\1", n) for n in logs)
    jobs = int(re.search(r"(\d+) of \d+ steps \(100%\) done", output).group(1))

    (workdir / "plan").mkdir(exist_ok=True)
    config = workdir / "two_archs.yaml"
    config.write_text("exp3:\n  run_archs: [wide, narrow]\n")
    plan = snakemake(workdir / "plan", *profiles, "-n", "--configfile", str(config))
    evaluation_chunks = len(re.findall(r"Group job exp3_evaluation", plan))
    evaluations = len(re.findall(r"^\s+rule exp3_evaluate:", plan, re.MULTILINE))

    result = {
        "smoke_campaign": {
            "config": "tests/smoke_config.yaml (1 arch, 10 models)",
            "profiles": "profiles/slurm + tests/profiles/slurm-local",
            "wall_seconds": round(wall, 1),
            "snakemake_jobs": jobs,
            "sbatch_submissions": sum(submitted.values()),
            "submissions_by_kind": dict(sorted(submitted.items())),
        },
        "exp3_two_archs_dry_run": {
            "models": evaluations,
            "evaluations": evaluations * 15,
            "evaluation_submissions": evaluation_chunks,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
