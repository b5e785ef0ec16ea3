"""Collect one arch's evaluations into metrics.csv and normalize them against pt1."""

from ftdag.core.jobs import job_log
from ftdag.exp3 import steps

with job_log(snakemake.log[0], "metrics"):
    steps.aggregate(
        snakemake.input,
        snakemake.output.metrics,
        snakemake.output.normalized,
        snakemake.params.config_hash,
    )
