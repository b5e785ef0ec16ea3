"""Train one stage of an arm from the previous stage's weights; resumes from its checkpoint."""

from ftdag.core.jobs import job_log, pick_device, use_threads
from ftdag.curriculum import steps

with job_log(snakemake.log[0], "curriculum_stage"):
    use_threads(snakemake.threads)
    steps.train_stage(
        snakemake.input.parent,
        snakemake.input.train,
        list(snakemake.params.stage["questions"]),
        snakemake.params.template,
        snakemake.params.resolution,
        snakemake.params.colour,
        {**snakemake.params.training, "epochs": snakemake.params.stage["epochs"]},
        int(snakemake.wildcards.curriculum_seed),
        snakemake.params.checkpoint,
        snakemake.output[0],
        pick_device(snakemake.params.device),
    )
