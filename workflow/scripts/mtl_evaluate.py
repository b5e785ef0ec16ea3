"""Every test task on one kept snapshot of an arm's training."""

from pathlib import Path

from ftdag.core.jobs import job_log, pick_device, use_threads
from ftdag.mtl import steps

with job_log(snakemake.log[0], "mtl_evaluate"):
    use_threads(snakemake.threads)
    steps.evaluate_snapshot(
        Path(snakemake.input.training) / steps.SNAPSHOTS / snakemake.wildcards.mtl_snapshot,
        snakemake.input.test,
        dict(snakemake.params.eval),
        snakemake.output.metrics,
        snakemake.output.predictions,
        pick_device(snakemake.params.device),
    )
