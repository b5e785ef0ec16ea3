"""Train one arm and seed with validation, early stopping and kept snapshots; resumes from its
checkpoint when restarted."""

from ftdag.core.jobs import job_log, pick_device, use_threads
from ftdag.mtl import steps

with job_log(snakemake.log[0], "mtl_train"):
    use_threads(snakemake.threads)
    params = snakemake.params
    steps.train_arm(
        snakemake.input.train,
        snakemake.input.validation,
        dict(params.model),
        dict(params.training),
        params.aggregator,
        dict(params.schedule),
        dict(params.eval),
        int(snakemake.wildcards.mtl_seed),
        snakemake.output[0],
        params.checkpoint,
        pick_device(params.device),
    )
