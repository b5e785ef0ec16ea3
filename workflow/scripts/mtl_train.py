"""Train one arm and seed with validation, early stopping and kept snapshots; resumes from its
checkpoint when restarted. With `gpu: N` > 1 in the profile, N processes train it (DDP)."""

from ftdag.core.distributed import launch, processes_for
from ftdag.core.jobs import job_log, pick_device, use_threads

with job_log(snakemake.log[0], "mtl_train"):
    use_threads(snakemake.threads)
    params = snakemake.params
    launch(
        "ftdag.mtl.training:train_arm",
        {
            "train_split": snakemake.input.train,
            "validation_split": snakemake.input.validation,
            "model_settings": dict(params.model),
            "training": dict(params.training),
            "aggregator": params.aggregator,
            "schedule": dict(params.schedule),
            "eval_settings": dict(params.eval),
            "seed": int(snakemake.wildcards.mtl_seed),
            "out_dir": snakemake.output[0],
            "checkpoint": params.checkpoint,
            "device": pick_device(params.device),
            "objective": dict(params.objective),
        },
        processes=processes_for(snakemake.resources),
        threads=snakemake.threads,
    )
