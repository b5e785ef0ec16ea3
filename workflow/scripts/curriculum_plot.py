"""One of the curriculum family's plots, from summary.csv."""

import pandas as pd

from ftdag.core.jobs import job_log
from ftdag.curriculum import plots

with job_log(snakemake.log[0], "curriculum_plot"):
    plot = getattr(plots, f"plot_{snakemake.wildcards.curriculum_plot}")
    plot(pd.read_csv(snakemake.input[0], dtype={"eval_stage": str}), snakemake.output[0])
