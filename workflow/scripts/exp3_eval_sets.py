"""Draw the 15 evaluation sets, shared by every model of every arch."""

from ftdag import exp3
from ftdag.jobs import job_log

with job_log(snakemake.log[0], "eval_sets"):
    exp3.make_eval_sets(
        snakemake.input.world,
        snakemake.params.n_per_set,
        snakemake.params.seed,
        dict(snakemake.output.items()),
    )
