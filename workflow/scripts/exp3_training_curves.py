"""Draw the loss curves of one arch's pt1 and fine-tunes."""

from ftdag.core.jobs import job_log
from ftdag.exp3 import steps

with job_log(snakemake.log[0], "training_curves"):
    steps.training_curves(
        dict(snakemake.input.items()), snakemake.wildcards.arch, snakemake.output[0]
    )
