"""Scenes with a known score (or the user's {image, score} file), split by image."""

from ftdag.compare import steps
from ftdag.core.jobs import job_log

with job_log(snakemake.log[0], "compare_data"):
    steps.make_data(
        snakemake.params.data,
        snakemake.output.scenes,
        snakemake.output.train,
        snakemake.output.test,
    )
