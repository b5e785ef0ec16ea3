"""Collect one arch's evaluations into metrics.csv and normalize them against pt1."""

from ftdag import exp3
from ftdag.jobs import job_log

with job_log(snakemake.log[0], "metrics"):
    exp3.aggregate(snakemake.input, snakemake.output.metrics, snakemake.output.normalized)
