"""The local fine-tune of the tiny model on the same chat data, with ftdag's own loop."""

from ftdag.compare import steps
from ftdag.core.jobs import job_log, use_threads

with job_log(snakemake.log[0], "compare_local_finetune"):
    use_threads(snakemake.threads)
    params = snakemake.params
    steps.local_fine_tune(
        snakemake.input.base,
        snakemake.input.chat,
        dict(params.training),
        params.seed,
        snakemake.output[0],
        params.checkpoint,
    )
