"""Score pt1 on standard cities against knowing nothing: did pretraining learn the world?"""

from ftdag import exp3
from ftdag.jobs import job_log

with job_log(snakemake.log[0], "pt1_learning"):
    exp3.pt1_learning(snakemake.input.predictions, snakemake.input.train_data, snakemake.output[0])
