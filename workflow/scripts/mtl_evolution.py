"""One arm's kept snapshots' test rewards per task in one table."""

from ftdag.core.jobs import job_log
from ftdag.mtl import steps

with job_log(snakemake.log[0], "mtl_arm_evolution"):
    arm, seed = snakemake.wildcards.mtl_arm, int(snakemake.wildcards.mtl_seed)
    steps.collect_evolution(
        dict(snakemake.input.items()),
        arm,
        seed,
        f"results/mtl/{arm}/seed{seed}/training",
        snakemake.output[0],
    )
