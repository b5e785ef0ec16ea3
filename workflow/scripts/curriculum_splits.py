"""Split the questions by image into train, validation and test; no image in two splits."""

from ftdag.core.jobs import job_log
from ftdag.curriculum import steps

with job_log(snakemake.log[0], "curriculum_splits"):
    steps.make_splits(
        snakemake.input.records,
        dict(snakemake.params.fractions),
        snakemake.params.seed,
        {name: snakemake.output[name] for name in ("train", "validation", "test")},
    )
