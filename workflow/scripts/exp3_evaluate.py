"""Run all 15 evaluations of one model, loading it once."""

from ftdag.core.jobs import job_log, pick_device, use_threads
from ftdag.exp3 import steps

with job_log(snakemake.log[0], "evaluate"):
    use_threads(snakemake.threads)
    steps.evaluate(
        snakemake.input.model,
        snakemake.wildcards.model,
        snakemake.input.world,
        {name: snakemake.input[name] for name in snakemake.params.eval_names},
        snakemake.output.metrics,
        snakemake.output.predictions,
        snakemake.params.batch_size,
        pick_device(snakemake.params.device),
        snakemake.params.config_hash,
    )
