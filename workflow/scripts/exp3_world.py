"""Generate the synthetic world of exp3."""

from ftdag import exp3
from ftdag.jobs import job_log

with job_log(snakemake.log[0], "world"):
    exp3.make_world(snakemake.params.world, snakemake.output[0])
