"""Draw the loss curves of one arch's pt1 and fine-tunes."""

from ftdag import exp3
from ftdag.jobs import job_log

with job_log(snakemake.log[0], "training_curves"):
    exp3.training_curves(
        dict(snakemake.input.items()), snakemake.wildcards.arch, snakemake.output[0]
    )
