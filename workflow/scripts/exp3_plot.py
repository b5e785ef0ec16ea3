"""Draw one of the three exp3 plots of an arch, with its summary table."""

from ftdag.core.jobs import job_log
from ftdag.exp3 import steps

with job_log(snakemake.log[0], "plot"):
    steps.plot(
        snakemake.input.normalized,
        snakemake.input.pt1_learning,
        snakemake.wildcards.arch,
        snakemake.wildcards.plot,
        snakemake.output.png,
        snakemake.output.summary,
        snakemake.params.config_hash,
    )
