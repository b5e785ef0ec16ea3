"""Running the real Snakemake on this repository's Snakefile, in a scratch working directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SMOKE_CONFIG = REPO / "tests" / "smoke_config.yaml"


def snakemake_command(workdir, *args, configfile=SMOKE_CONFIG) -> list[str]:
    """`configfile`: a path, a list of paths (merged in order), or None for the default."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
    ]
    if configfile is not None:
        files = configfile if isinstance(configfile, list) else [configfile]
        command += ["--configfile", *map(str, files)]
    return command + list(args)


def snakemake_env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_snakemake(workdir, *args, configfile=SMOKE_CONFIG, check=True, timeout=900):
    result = subprocess.run(
        snakemake_command(workdir, *args, configfile=configfile),
        cwd=REPO,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry-run, as {rule: count} (with 'total')."""
    counts = {}
    section = dry_run_output.split("Job stats:", 1)[1]
    for line in section.splitlines()[3:]:
        match = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


def planned_jobs(dry_run_output: str, rule: str) -> dict[str, str]:
    """{first output: reason} of every job of `rule` in a (non-quiet) dry-run."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run_output):
        if block.startswith((f"rule {rule}:", f"localrule {rule}:")):
            output = re.search(r"output: ([^,\s]+)", block).group(1)
            jobs[output] = re.search(r"reason: (.*)", block).group(1)
    return jobs


def write_config(path, data: dict) -> Path:
    path = Path(path)
    path.write_text(yaml.safe_dump(data))
    return path
