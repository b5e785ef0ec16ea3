"""One arm's kept snapshots' test rewards per task in one table."""

from ftdag.core.jobs import job_log
from ftdag.mtl import steps

with job_log(snakemake.log[0], "mtl_arm_evolution"):
    evaluations = {k: v for k, v in snakemake.input.items() if k != "training"}
    steps.collect_evolution(
        evaluations,
        snakemake.wildcards.mtl_arm,
        int(snakemake.wildcards.mtl_seed),
        snakemake.input.training,
        snakemake.output[0],
    )
