# Config validation, the default target, and each family's names, wildcard constraints and
# input functions (the rule files hold rules only).

import sys
from pathlib import Path

# The ftdag package lives next to the rules; the workflow itself imports it from here,
# installed or not (`make install` installs it for the jobs).
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from ftdag.compare import config_checks as compare_config_checks
from ftdag.core import group_components
from ftdag.core.config import ConfigError, validate_config
from ftdag.core.provenance import config_hash
from ftdag.curriculum import config_checks as curriculum_config_checks
from ftdag.exp3 import config_checks as exp3_config_checks
from ftdag.exp3 import names as exp3_names
from ftdag.mtl import config_checks as mtl_config_checks
from ftdag.mtl import report as mtl_report
from ftdag.mtl import steps as mtl_steps

# Evaluation chunks stay as packed when a checkpoint (MTL training) changes the DAG mid-run;
# Snakemake 9 re-packs them into growing chunks and submits jobs twice (see the module).
group_components.install()

# Each family plugs in the checks across its keys that the schema cannot express.
try:
    validate_config(
        config,
        {
            "exp3": exp3_config_checks.problems,
            "curriculum": curriculum_config_checks.problems,
            "mtl": mtl_config_checks.problems,
            "compare": compare_config_checks.problems,
        },
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None


RUNTIME = config["runtime"]
TRACKING = config["tracking"]


def get_final_outputs():
    """The default target: every family's results, then the cost of the campaign."""
    return [
        *get_family_outputs(),
        "results/cost_per_result.csv",
        "results/campaign.html",
    ]


def get_family_outputs():
    """Every family's results; the cost table is made after all of them."""
    return [
        *get_exp3_outputs(),
        *get_curriculum_outputs(),
        *get_mtl_outputs(),
        *get_compare_outputs(),
    ]


# --- exp3: names from ftdag.exp3.names, inputs of workflow/rules/exp3.smk ---------------

EXP3 = config["exp3"]
EXP3_EVALS = exp3_names.eval_names()
EXP3_MODELS = exp3_names.model_names(EXP3["ftwb2_pairs"], EXP3["ftwb1_tasks"])


wildcard_constraints:
    arch="|".join(EXP3["archs"]),
    model="|".join(EXP3_MODELS),
    finetuned="|".join(EXP3_MODELS[1:]),
    eval="|".join(EXP3_EVALS),
    plot="|".join(exp3_names.PLOTS),


def get_exp3_outputs():
    return [
        *(
            f"results/exp3/plots/{arch}_{plot}.png"
            for arch in EXP3["run_archs"]
            for plot in [*exp3_names.PLOTS, "training_curves"]
        ),
        # Whether pt1 learned the world says how far its normalized plots can be trusted.
        *(f"results/exp3/{arch}/pt1_learning.csv" for arch in EXP3["run_archs"]),
        # The research question, once there are archs to compare.
        *(
            ["results/exp3/plots/arch_comparison.png"]
            if len(EXP3["run_archs"]) > 1
            else []
        ),
    ]


def get_exp3_eval_sets(wildcards=None):
    return {name: f"results/exp3/data/eval/{name}.jsonl" for name in EXP3_EVALS}


def get_exp3_arch(wildcards):
    return EXP3["archs"][wildcards.arch]


def get_exp3_models(wildcards):
    return {
        model: f"results/exp3/{wildcards.arch}/models/{model}" for model in EXP3_MODELS
    }


def get_exp3_model_evaluations(wildcards):
    return expand(
        "results/exp3/{arch}/evals/{model}.csv", arch=wildcards.arch, model=EXP3_MODELS
    )


def get_exp3_arch_comparison_inputs(wildcards):
    """Per arch of run_archs: its normalized table and every model folder."""
    inputs = {}
    for arch in EXP3["run_archs"]:
        inputs[f"{arch}_normalized"] = f"results/exp3/{arch}/normalized.csv"
        for model in EXP3_MODELS:
            inputs[f"{arch}_{model}"] = f"results/exp3/{arch}/models/{model}"
    return inputs


def get_exp3_training_benchmarks(wildcards):
    """Per arch, each model's training job benchmark (its device-hours)."""
    return {
        arch: {m: f"results/benchmarks/exp3/{arch}/train_{m}.tsv" for m in EXP3_MODELS}
        for arch in EXP3["run_archs"]
    }


def get_exp3_config_hash(wildcards):
    """The config values an arch's results depend on: exp3 less the other archs."""
    section = {k: v for k, v in EXP3.items() if k not in ("archs", "run_archs")}
    return config_hash({**section, "arch": EXP3["archs"][wildcards.arch]})


def get_exp3_run_name(wildcards):
    return f"exp3-{wildcards.arch}-{getattr(wildcards, 'finetuned', 'pt1')}"


# --- curriculum: inputs of workflow/rules/curriculum.smk ----------------------------------

CURRICULUM = config["curriculum"]
CURRICULUM_ARMS = CURRICULUM["arms"]
CURRICULUM_SPLITS = ("train", "validation", "test")
CURRICULUM_TINY = curriculum_config_checks.TINY
CURRICULUM_PLOTS = (
    "accuracy_by_stage",
    "accuracy_after_each_stage",
    "cost_vs_accuracy",
)


wildcard_constraints:
    curriculum_arm="|".join(CURRICULUM_ARMS),
    curriculum_seed="|".join(str(s) for s in CURRICULUM["seeds"]),
    curriculum_stage="[0-9]+",
    curriculum_resolution="[0-9]+",
    curriculum_plot="|".join(CURRICULUM_PLOTS),


def get_curriculum_outputs():
    return [
        "results/curriculum/summary.csv",
        "results/curriculum/verdict.md",
        *expand("results/curriculum/plots/{plot}.png", plot=CURRICULUM_PLOTS),
    ]


def get_curriculum_stage_models():
    """Every stage model of every arm and seed, as 'arm/seed/stage'."""
    return [
        f"{arm}/{seed}/{k}"
        for arm, spec in CURRICULUM_ARMS.items()
        for seed in CURRICULUM["seeds"]
        for k in range(1, len(spec["stages"]) + 1)
    ]


def _curriculum_path(key, pattern):
    arm, seed, stage = key.split("/")
    return pattern.format(arm=arm, seed=seed, stage=stage)


def get_curriculum_evaluations(wildcards=None):
    return {
        key: _curriculum_path(
            key, "results/curriculum/{arm}/seed{seed}/eval/stage{stage}.csv"
        )
        for key in get_curriculum_stage_models()
    }


def get_curriculum_stage_benchmarks(wildcards=None):
    """The training jobs' benchmark files: what each stage model cost."""
    return {
        key: _curriculum_path(
            key, "results/benchmarks/curriculum/{arm}/seed{seed}/stage{stage}.tsv"
        )
        for key in get_curriculum_stage_models()
    }


def get_curriculum_final_predictions(wildcards=None):
    """Each arm's final models' predictions, one file per seed."""
    return {
        arm: [
            f"results/curriculum/{arm}/seed{seed}/eval/stage{len(spec['stages'])}"
            ".predictions.jsonl"
            for seed in CURRICULUM["seeds"]
        ]
        for arm, spec in CURRICULUM_ARMS.items()
    }


def get_curriculum_resolution(wildcards):
    arm = CURRICULUM_ARMS[wildcards.curriculum_arm]
    return arm.get("resolution") or CURRICULUM["resolution"]


def get_curriculum_parent(wildcards):
    """What a stage starts from: stage k > 1 from stage k - 1 of the same arm and seed;
    stage 1 from the arm's base: the tiny model the workflow builds, or a hub id or path.
    """
    arm = CURRICULUM_ARMS[wildcards.curriculum_arm]
    k = int(wildcards.curriculum_stage)
    if not 1 <= k <= len(arm["stages"]):
        raise WorkflowError(
            f"arm {wildcards.curriculum_arm} has no stage {k} (curriculum.arms)"
        )
    if k > 1:
        return "results/curriculum/{a}/seed{s}/stage{k}".format(
            a=wildcards.curriculum_arm, s=wildcards.curriculum_seed, k=k - 1
        )
    if arm["base"] == CURRICULUM_TINY:
        return "results/curriculum/base/{r}px/seed{s}".format(
            r=get_curriculum_resolution(wildcards), s=wildcards.curriculum_seed
        )
    return arm["base"]


def get_curriculum_parent_input(wildcards):
    """The parent as an input file where the workflow makes it (not a hub id)."""
    parent = get_curriculum_parent(wildcards)
    return [parent] if parent.startswith("results/") else []


def get_curriculum_stage(wildcards):
    arm = CURRICULUM_ARMS[wildcards.curriculum_arm]
    return arm["stages"][int(wildcards.curriculum_stage) - 1]


def get_curriculum_lora(wildcards):
    return CURRICULUM_ARMS[wildcards.curriculum_arm]["lora"]


def get_curriculum_config_hash(wildcards=None):
    """The config values the family's results depend on: its whole section."""
    return config_hash(CURRICULUM)


def get_curriculum_template_texts(wildcards):
    """Every template's text (a function, so that Snakemake leaves '{question}' alone)."""
    return list(CURRICULUM["templates"].values())


def get_curriculum_template(wildcards):
    return CURRICULUM["templates"][
        CURRICULUM_ARMS[wildcards.curriculum_arm]["template"]
    ]


# --- mtl: inputs of workflow/rules/mtl.smk ---------------------------------------------------

MTL = config["mtl"]
MTL_SPLITS = ("train", "validation", "test")
MTL_PLOTS = ("learning_curves", "final_heatmap")


wildcard_constraints:
    mtl_arm="|".join(MTL["arms"]),
    mtl_seed="|".join(str(s) for s in MTL["seeds"]),
    mtl_snapshot="epoch_[0-9]+|best",
    mtl_plot="|".join(MTL_PLOTS),


def get_mtl_outputs():
    return [
        "results/mtl/report.md",
        "results/mtl/comparison.csv",
        *expand("results/mtl/plots/{plot}.png", plot=MTL_PLOTS),
    ]


def get_mtl_user_files(wildcards=None):
    """The user's data files (inputs of mtl_data, so that an edited file reruns it), or none."""
    files = MTL["data"]["files"] or {}
    return [
        path
        for split in ("train", "validation", "test")
        for path in files.get(split, [])
    ]


def get_mtl_objective(wildcards=None):
    """The objective and, for grpo, its settings."""
    return {
        "name": MTL["objective"],
        **(MTL["grpo"] if MTL["objective"] == "grpo" else {}),
    }


def get_mtl_config_hash(wildcards=None):
    """The config values the family's results depend on: its whole section."""
    return config_hash(MTL)


def get_mtl_aggregator(wildcards):
    return MTL["arms"][wildcards.mtl_arm]["aggregator"]


def get_mtl_arm_evaluations(wildcards):
    """One evaluation per snapshot that an arm's training kept: known only once it has run
    (mtl_train is a checkpoint rule), so the DAG grows after training. Per arm and seed, so
    that every arm's training is planned (and runs) at once."""
    arm, seed = wildcards.mtl_arm, wildcards.mtl_seed
    training = checkpoints.mtl_train.get(mtl_arm=arm, mtl_seed=seed).output[0]
    return {
        "training": training,
        **{
            snapshot: f"results/mtl/{arm}/seed{seed}/eval/{snapshot}.csv"
            for snapshot in mtl_steps.kept_snapshots(training)
        },
    }


def get_mtl_final_predictions(wildcards):
    """Each arm's and seed's final snapshot's test predictions (best by validation, else the
    last kept), as 'arm/seed' -> path; known once training has run."""
    finals = {}
    for arm in MTL["arms"]:
        for seed in MTL["seeds"]:
            training = checkpoints.mtl_train.get(mtl_arm=arm, mtl_seed=seed).output[0]
            snapshot = mtl_report.final_snapshot(mtl_steps.kept_snapshots(training))
            finals[f"{arm}/{seed}"] = (
                f"results/mtl/{arm}/seed{seed}/eval/{snapshot}.predictions.jsonl"
            )
    return finals


# --- compare: inputs of workflow/rules/compare.smk --------------------------------------------

COMPARE = config["compare"]
COMPARE_MODELS = [m["name"] for m in COMPARE["models"]]
COMPARE_SPECS = {m["name"]: m for m in COMPARE["models"]}
COMPARE_LOCAL_SERVER = COMPARE["api"]["base_url"] == "local"


wildcard_constraints:
    compare_model="|".join(COMPARE_MODELS),


def get_compare_outputs():
    return [
        "results/compare/report.md",
        "results/compare/metrics_comparison.xlsx",
        "results/compare/plots/metrics_comparison.png",
    ]


def get_compare_user_file(wildcards=None):
    """The user's {image, score} file (an input, so that an edited file reruns), or none."""
    source = COMPARE["data"]["source"]
    return [] if source == "generated" else [source]


def get_compare_spec(wildcards):
    return COMPARE_SPECS[wildcards.compare_model]


def get_compare_model_id(wildcards):
    return COMPARE_SPECS[wildcards.compare_model]["model"]


def get_compare_run_hash(wildcards):
    """What a fine-tune job depends on: a rerun with the same values finds its job again."""
    keys = ("data", "prompt", "resolution", "model", "finetune", "training")
    return config_hash(
        {"name": wildcards.compare_model, **{k: COMPARE[k] for k in keys}}
    )


def get_compare_config_hash(wildcards=None):
    return config_hash(COMPARE)


def get_compare_server_inputs():
    """The local server serves (and fine-tunes from) the untuned tiny model."""
    return {"base": "results/compare/models/base"} if COMPARE_LOCAL_SERVER else {}


def get_compare_api_finetune_inputs(wildcards):
    return {
        "train": "results/compare/chat/train.jsonl",
        "validation": "results/compare/chat/validation.jsonl",
        **get_compare_server_inputs(),
    }


def get_compare_answer_inputs(wildcards):
    """The test split, and what the model is: a fine-tune's state (its model id), a local
    model's folder, or nothing more for an API model (the server's base where it is local).
    """
    spec = COMPARE_SPECS[wildcards.compare_model]
    name = spec["name"]
    inputs = {"test": "results/compare/data/test.jsonl"}
    if spec["kind"] == "local":
        local = spec["model"]
        inputs["source"] = (
            f"results/compare/models/{name}" if local == "tiny" else local
        )
        return inputs
    inputs.update(get_compare_server_inputs())
    if spec["kind"] == "api_finetune":
        inputs["source"] = f"results/compare/finetunes/{name}.json"
    return inputs


def get_compare_api_slot(wildcards):
    """API steps take turns on the local server's state folder; local models need no slot."""
    return int(COMPARE_SPECS[wildcards.compare_model]["kind"] != "local")


def get_compare_finetune_states():
    return [
        f"results/compare/finetunes/{m['name']}.json"
        for m in COMPARE["models"]
        if m["kind"] == "api_finetune"
    ]
