"""Build and save the tiny Qwen2-VL that every arm of one seed starts from."""

from ftdag.core.jobs import job_log
from ftdag.curriculum import steps

with job_log(snakemake.log[0], "curriculum_base"):
    steps.build_base(
        dict(snakemake.params.model),
        snakemake.params.resolution,
        int(snakemake.wildcards.curriculum_seed),
        snakemake.output[0],
    )
