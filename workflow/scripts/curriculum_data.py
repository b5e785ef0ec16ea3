"""Generate the scenes and their questions, or take a user's JSONL (validated)."""

from pathlib import Path

from ftdag.core.jobs import job_log
from ftdag.curriculum import steps
from ftdag.curriculum.config_checks import GENERATED

with job_log(snakemake.log[0], "curriculum_data"):
    data = snakemake.params.data
    if data["source"] == GENERATED:
        steps.make_scenes(
            data["n_scenes"],
            data["seed"],
            data["max_shapes"],
            data["shape_size"],
            snakemake.output.records,
            snakemake.output.images,
        )
    else:  # the user's images stay where they are
        Path(snakemake.output.images).mkdir(parents=True, exist_ok=True)
        steps.copy_user_records(data["source"], snakemake.output.records)
