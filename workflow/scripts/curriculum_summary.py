"""Means over seeds, device-hours and cost per accuracy point, and the verdict."""

from ftdag.core.jobs import job_log
from ftdag.curriculum import steps

with job_log(snakemake.log[0], "curriculum_summary"):
    steps.summarize(
        snakemake.input.by_seed,
        dict(snakemake.params.benchmarks),
        {arm: list(paths) for arm, paths in snakemake.params.predictions.items()},
        dict(snakemake.params.arms),
        snakemake.output.csv,
        snakemake.output.verdict,
        snakemake.output.html,
        snakemake.params.config_hash,
    )
