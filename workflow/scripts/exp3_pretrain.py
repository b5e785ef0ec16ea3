"""Pretrain pt1 of one arch; resumes from its checkpoint when restarted."""

from ftdag import exp3
from ftdag.jobs import job_log, pick_device, use_threads

with job_log(snakemake.log[0], "pretrain"):
    use_threads(snakemake.threads)
    exp3.pretrain(
        snakemake.input.data,
        snakemake.input.tokenizer,
        snakemake.output[0],
        snakemake.params.arch,
        snakemake.params.training,
        snakemake.params.checkpoint,
        pick_device(snakemake.params.device),
    )
