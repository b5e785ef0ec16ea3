"""Every arm's and seed's evolution in one table."""

from ftdag.core.jobs import job_log
from ftdag.mtl import steps

with job_log(snakemake.log[0], "mtl_evolution"):
    steps.concatenate(list(snakemake.input), snakemake.output[0])
