"""Score pt1 on standard cities against knowing nothing: did pretraining learn the world?"""

from ftdag.core.jobs import job_log
from ftdag.exp3 import steps

with job_log(snakemake.log[0], "pt1_learning"):
    steps.pt1_learning(
        snakemake.input.predictions,
        snakemake.input.train_data,
        snakemake.output.csv,
        snakemake.output.html,
        config_hash=snakemake.params.config_hash,
    )
