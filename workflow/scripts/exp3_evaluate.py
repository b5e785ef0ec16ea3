"""Run all 15 evaluations of one model, loading it once."""

from ftdag import exp3
from ftdag.jobs import job_log, pick_device, use_threads

with job_log(snakemake.log[0], "evaluate"):
    use_threads(snakemake.threads)
    exp3.evaluate(
        snakemake.input.model,
        snakemake.wildcards.model,
        snakemake.input.world,
        {name: snakemake.input[name] for name in snakemake.params.eval_names},
        snakemake.output.metrics,
        snakemake.output.predictions,
        snakemake.params.batch_size,
        pick_device(snakemake.params.device),
    )
