"""Train one stage of an arm from the previous stage's weights (or the arm's base); resumes
from its checkpoint. With `gpu: N` > 1 in the profile, N processes train it together (DDP)."""

from ftdag.core.distributed import launch, processes_for
from ftdag.core.jobs import job_log, pick_device, use_threads

with job_log(snakemake.log[0], "curriculum_stage"):
    use_threads(snakemake.threads)
    params = snakemake.params
    launch(
        "ftdag.curriculum.steps:train_stage",
        {
            "parent": params.parent,
            "train_split": snakemake.input.train,
            "question_stages": list(params.stage["questions"]),
            "template": params.template,
            "resolution": params.resolution,
            "colour": list(params.colour),
            "training": {**params.training, "epochs": params.stage["epochs"]},
            "lora": dict(params.lora) if params.lora else None,
            "seed": int(snakemake.wildcards.curriculum_seed),
            "checkpoint": params.checkpoint,
            "out_dir": snakemake.output[0],
            "device": pick_device(params.device),
        },
        processes=processes_for(snakemake.resources),
        threads=snakemake.threads,
    )
