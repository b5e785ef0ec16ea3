"""One of the MTL family's plots, from evolution.csv and comparison.csv."""

import pandas as pd

from ftdag.core.jobs import job_log
from ftdag.mtl import plots

with job_log(snakemake.log[0], "mtl_plot"):
    plot = getattr(plots, f"plot_{snakemake.wildcards.mtl_plot}")
    plot(
        pd.read_csv(snakemake.input.evolution),
        pd.read_csv(snakemake.input.comparison),
        snakemake.output[0],
    )
