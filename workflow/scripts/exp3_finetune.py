"""Fine-tune one FTWB1/FTWB2 model from pt1; resumes from its checkpoint when restarted."""

from ftdag import exp3
from ftdag.jobs import job_log, pick_device, use_threads

with job_log(snakemake.log[0], "finetune"):
    use_threads(snakemake.threads)
    exp3.finetune(
        snakemake.input.data,
        snakemake.input.parent,
        snakemake.output[0],
        snakemake.params.training,
        snakemake.params.checkpoint,
        pick_device(snakemake.params.device),
    )
