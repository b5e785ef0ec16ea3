"""Answer every test question with one stage model; accuracy per question stage."""

from ftdag.core.jobs import job_log, pick_device, use_threads
from ftdag.curriculum import steps

with job_log(snakemake.log[0], "curriculum_evaluate"):
    use_threads(snakemake.threads)
    steps.evaluate(
        snakemake.input.model,
        snakemake.input.test,
        snakemake.params.template,
        snakemake.params.resolution,
        snakemake.params.colour,
        snakemake.params.eval["batch_size"],
        snakemake.params.eval["max_new_tokens"],
        snakemake.output.metrics,
        snakemake.output.predictions,
        pick_device(snakemake.params.device),
        snakemake.params.config_hash,
    )
