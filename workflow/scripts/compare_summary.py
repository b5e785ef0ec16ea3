"""Metrics with intervals, the success criteria, the API cost, spreadsheets, report, plots."""

from pathlib import Path

from ftdag.compare import summary
from ftdag.core.jobs import job_log

with job_log(snakemake.log[0], "compare_summary"):
    params = snakemake.params
    names = [m["name"] for m in params.models]
    summary.summarize(
        dict(zip(names, snakemake.input.answers, strict=True)),
        dict(zip(names, snakemake.input.runs, strict=True)),
        {Path(p).stem: p for p in snakemake.input.finetunes},
        [dict(m) for m in params.models],
        params.config_hash,
        dict(snakemake.output.items()),
    )
