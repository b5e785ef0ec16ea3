"""Build and save the tiny Qwen2-VL that every arm of one seed and resolution starts from."""

from ftdag.core.jobs import job_log
from ftdag.curriculum import steps

with job_log(snakemake.log[0], "curriculum_base"):
    steps.build_base(
        dict(snakemake.params.model),
        int(snakemake.wildcards.curriculum_resolution),
        int(snakemake.wildcards.curriculum_seed),
        snakemake.input[0],
        list(snakemake.params.templates),
        snakemake.output[0],
    )
