"""Where each arm helps and hurts against the first (the baseline), with intervals; how each
arm trained and what it cost."""

from ftdag.core.jobs import job_log
from ftdag.mtl import steps

with job_log(snakemake.log[0], "mtl_report"):
    params = snakemake.params
    keys = [f"{a}/{s}" for a in params.arms for s in params.seeds]
    steps.write_report(
        {key: path for key, path in snakemake.input.items() if "/" in key},
        snakemake.input.evolution,
        dict(zip(keys, snakemake.input.trainings, strict=True)),
        dict(zip(keys, snakemake.input.benchmarks, strict=True)),
        list(params.arms),
        params.threshold,
        params.config_hash,
        dict(snakemake.output.items()),
    )
