"""Accuracy by question stage, the arms side by side."""

import pandas as pd

from ftdag.core.jobs import job_log
from ftdag.curriculum.plots import plot_accuracy_by_stage

with job_log(snakemake.log[0], "curriculum_plot"):
    plot_accuracy_by_stage(
        pd.read_csv(snakemake.input[0], dtype={"eval_stage": str}), snakemake.output[0]
    )
