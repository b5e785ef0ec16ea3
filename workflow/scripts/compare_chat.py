"""The fine-tunes' training and validation files in OpenAI's chat format, checked."""

from ftdag.compare import steps
from ftdag.core.jobs import job_log

with job_log(snakemake.log[0], "compare_chat"):
    params = snakemake.params
    steps.make_chat_files(
        snakemake.input.train,
        params.prompt,
        params.fraction,
        params.seed,
        snakemake.output.train,
        snakemake.output.validation,
    )
