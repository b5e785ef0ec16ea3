"""Draw the 15 evaluation sets, shared by every model of every arch."""

from ftdag.core.jobs import job_log
from ftdag.exp3 import steps

with job_log(snakemake.log[0], "eval_sets"):
    steps.make_eval_sets(
        snakemake.input.world,
        snakemake.params.n_per_set,
        snakemake.params.seed,
        dict(snakemake.output.items()),
    )
