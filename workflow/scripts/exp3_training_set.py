"""Draw one model's training set (pt1, FTWB1-k or FTWB2-p), avoiding evaluation prompts."""

from ftdag.core.jobs import job_log
from ftdag.exp3 import steps

with job_log(snakemake.log[0], "training_set"):
    steps.make_training_set(
        snakemake.wildcards.model,
        snakemake.input.world,
        snakemake.input.eval_sets,
        snakemake.params.data,
        snakemake.output[0],
    )
