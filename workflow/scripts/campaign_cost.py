"""One row per job and the device-hours upstream of each result."""

from ftdag import campaign
from ftdag.core.jobs import job_log

with job_log(snakemake.log[0], "cost"):
    campaign.cost_tables(
        snakemake.params.benchmarks,
        list(snakemake.params.results),
        snakemake.output.jobs,
        snakemake.output.per_result,
        snakemake.output.html,
    )
