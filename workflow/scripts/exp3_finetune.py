"""Fine-tune one FTWB1/FTWB2 model from pt1; resumes from its checkpoint when restarted. With
`gpu: N` > 1 in the profile, N processes train it together (DDP)."""

from ftdag.distributed import launch, processes_for
from ftdag.jobs import job_log, pick_device, use_threads

with job_log(snakemake.log[0], "finetune"):
    use_threads(snakemake.threads)
    launch(
        "finetune",
        {
            "train_data": snakemake.input.data,
            "parent_dir": snakemake.input.parent,
            "out_dir": snakemake.output[0],
            "training": dict(snakemake.params.training),
            "checkpoint": snakemake.params.checkpoint,
            "device": pick_device(snakemake.params.device),
        },
        processes=processes_for(snakemake.resources),
        threads=snakemake.threads,
    )
