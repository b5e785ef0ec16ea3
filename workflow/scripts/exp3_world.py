"""Generate the synthetic world of exp3."""

from ftdag.core.jobs import job_log
from ftdag.exp3 import steps

with job_log(snakemake.log[0], "world"):
    steps.make_world(snakemake.params.world, snakemake.output[0])
