"""Pretrain pt1 of one arch; resumes from its checkpoint when restarted. With `gpu: N` > 1 in
the profile, N processes train it together (DDP)."""

from ftdag.core.distributed import launch, processes_for
from ftdag.core.jobs import job_log, pick_device, use_threads

with job_log(snakemake.log[0], "pretrain"):
    use_threads(snakemake.threads)
    launch(
        "ftdag.exp3.steps:pretrain",
        {
            "train_data": snakemake.input.data,
            "tokenizer_dir": snakemake.input.tokenizer,
            "out_dir": snakemake.output[0],
            "arch": dict(snakemake.params.arch),
            "training": dict(snakemake.params.training),
            "checkpoint": snakemake.params.checkpoint,
            "device": pick_device(snakemake.params.device),
            "stages": [dict(stage) for stage in snakemake.params.stages],
            "tracking": dict(snakemake.params.tracking),
            "run_name": snakemake.params.run_name,
        },
        processes=processes_for(snakemake.resources),
        threads=snakemake.threads,
    )
