"""The records of every domain: train and validation (trained tasks), test (all tasks, the
out-of-distribution ones too); generated, or from the user's files."""

from ftdag.core.jobs import job_log
from ftdag.mtl import steps

with job_log(snakemake.log[0], "mtl_data"):
    data = snakemake.params.data
    steps.make_data(
        {s: data[f"{s}_per_task"] for s in ("train", "validation", "test")},
        data["seed"],
        dict(snakemake.output.items()),
        files=data["files"],
        tiny=snakemake.params.tiny,
    )
