"""Where each arm helps and hurts against the first (the baseline), with intervals."""

from ftdag.core.jobs import job_log
from ftdag.mtl import steps

with job_log(snakemake.log[0], "mtl_report"):
    params = snakemake.params
    steps.write_report(
        {key: path for key, path in snakemake.input.items() if "/" in key},
        snakemake.input.evolution,
        dict(
            zip(
                [f"{a}/{s}" for a in params.arms for s in params.seeds],
                snakemake.input.trainings,
                strict=True,
            )
        ),
        list(params.arms),
        params.threshold,
        dict(snakemake.output.items()),
    )
