"""The archs of run_archs side by side: scores with intervals and training compute."""

from ftdag.core.jobs import job_log
from ftdag.exp3 import steps

with job_log(snakemake.log[0], "arch_comparison"):
    archs = snakemake.params.archs
    steps.arch_comparison(
        {arch: snakemake.input[f"{arch}_normalized"] for arch in archs},
        {
            arch: {m: snakemake.input[f"{arch}_{m}"] for m in snakemake.params.benchmarks[arch]}
            for arch in archs
        },
        snakemake.params.benchmarks,
        snakemake.output.png,
        snakemake.output.csv,
        snakemake.output.summary,
        snakemake.params.config_hash,
    )
