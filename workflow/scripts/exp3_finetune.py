"""Fine-tune one FTWB1/FTWB2 model from pt1; resumes from its checkpoint when restarted. With
`gpu: N` > 1 in the profile, N processes train it together (DDP)."""

from ftdag.core.distributed import launch, processes_for
from ftdag.core.jobs import job_log, pick_device, use_threads

with job_log(snakemake.log[0], "finetune"):
    use_threads(snakemake.threads)
    launch(
        "ftdag.exp3.steps:finetune",
        {
            "train_data": snakemake.input.data,
            "parent_dir": snakemake.input.parent,
            "out_dir": snakemake.output[0],
            "training": dict(snakemake.params.training),
            "checkpoint": snakemake.params.checkpoint,
            "device": pick_device(snakemake.params.device),
            "tracking": dict(snakemake.params.tracking),
            "run_name": snakemake.params.run_name,
        },
        processes=processes_for(snakemake.resources),
        threads=snakemake.threads,
    )
