"""Every stage model's accuracy by question stage in one table, with the majority baseline."""

from ftdag.core.jobs import job_log
from ftdag.curriculum import steps

with job_log(snakemake.log[0], "curriculum_accuracy"):
    steps.collect_accuracy(
        {key: snakemake.input[key] for key in snakemake.params.evaluations},
        snakemake.input.train,
        snakemake.input.test,
        snakemake.output[0],
    )
