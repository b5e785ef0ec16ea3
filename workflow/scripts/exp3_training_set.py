"""Draw one model's training set (pt1, FTWB1-k or FTWB2-p), avoiding evaluation prompts."""

from ftdag import exp3
from ftdag.jobs import job_log

with job_log(snakemake.log[0], "training_set"):
    exp3.make_training_set(
        snakemake.wildcards.model,
        snakemake.input.world,
        snakemake.input.eval_sets,
        snakemake.params.data,
        snakemake.output[0],
    )
