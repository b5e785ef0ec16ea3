"""Draw one of the three exp3 plots of an arch, with its summary table."""

from ftdag import exp3
from ftdag.jobs import job_log

with job_log(snakemake.log[0], "plot"):
    exp3.plot(
        snakemake.input.normalized,
        snakemake.input.pt1_learning,
        snakemake.wildcards.arch,
        snakemake.wildcards.plot,
        snakemake.output.png,
        snakemake.output.summary,
    )
