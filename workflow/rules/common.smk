# Config access, input functions and wildcard constraints shared by every rule file.

import sys
from pathlib import Path

# The ftdag package (pyproject.toml installs it for the jobs' scripts) lives next to the
# rules; the workflow itself imports it from here, installed or not.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from ftdag.config import ConfigError, validate_config
from ftdag.datasets import eval_names, finetune_names
from ftdag.exp3 import PLOTS as EXP3_PLOTS

try:
    validate_config(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None


EXP3 = config["exp3"]
EXP3_EVALS = eval_names()
EXP3_FINETUNED = finetune_names(EXP3["ftwb2_pairs"], EXP3["ftwb1_tasks"])
EXP3_MODELS = ["pt1"] + EXP3_FINETUNED


wildcard_constraints:
    arch="|".join(EXP3["archs"]),
    model="pt1|ftwb1-[1-7]|ftwb2-[0-9]+",
    finetuned="ftwb1-[1-7]|ftwb2-[0-9]+",
    eval="|".join(EXP3_EVALS),
    plot="|".join(EXP3_PLOTS),


def get_final_outputs():
    return [
        *(
            f"results/exp3/plots/{arch}_{plot}.png"
            for arch in EXP3["run_archs"]
            for plot in [*EXP3_PLOTS, "training_curves"]
        ),
        # Whether pt1 learned the world says how far its normalized plots can be trusted.
        *(f"results/exp3/{arch}/pt1_learning.csv" for arch in EXP3["run_archs"]),
    ]


def get_eval_sets(wildcards=None):
    return {name: f"results/exp3/data/eval/{name}.jsonl" for name in EXP3_EVALS}


def get_arch(wildcards):
    return EXP3["archs"][wildcards.arch]


def get_models(wildcards):
    return {
        model: f"results/exp3/{wildcards.arch}/models/{model}" for model in EXP3_MODELS
    }


def get_model_evaluations(wildcards):
    return expand(
        "results/exp3/{arch}/evals/{model}.csv", arch=wildcards.arch, model=EXP3_MODELS
    )
