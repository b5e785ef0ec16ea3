"""The offline API baseline and both fine-tunes' base: the tiny VLM, trained briefly."""

from ftdag.compare import steps
from ftdag.core.jobs import job_log, use_threads

with job_log(snakemake.log[0], "compare_base"):
    use_threads(snakemake.threads)
    params = snakemake.params
    steps.build_base(
        snakemake.input.chat,
        params.prompt,
        params.resolution,
        dict(params.model),
        dict(params.training),
        params.epochs,
        snakemake.output[0],
    )
