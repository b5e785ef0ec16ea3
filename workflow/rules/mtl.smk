# mtl: a baseline that sums the domains' losses against PCGrad, on six synthetic domains.
#
# domains' records -> each arm and seed trained with validation, early stopping and kept
# snapshots (a checkpoint rule: which snapshots exist is known after training) -> one
# evaluation job per kept snapshot -> each arm's evolution.csv -> results/mtl/evolution.csv.


localrules:
    mtl_arm_evolution,
    mtl_evolution,
    mtl_report,
    mtl_plot,


rule mtl_data:
    input:
        get_mtl_user_files(),
    output:
        **{s: f"results/mtl/data/{s}.jsonl" for s in MTL_SPLITS},
    log:
        "results/logs/mtl/data.log",
    benchmark:
        "results/benchmarks/mtl/data.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        data=MTL["data"],
        tiny=MTL["model"]["base"] == "tiny",
    script:
        "../scripts/mtl_data.py"


checkpoint mtl_train:
    input:
        train="results/mtl/data/train.jsonl",
        validation="results/mtl/data/validation.jsonl",
    output:
        directory("results/mtl/{mtl_arm}/seed{mtl_seed}/training"),
    log:
        "results/logs/mtl/{mtl_arm}/seed{mtl_seed}/train.log",
    benchmark:
        "results/benchmarks/mtl/{mtl_arm}/seed{mtl_seed}/train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        model=MTL["model"],
        training=MTL["training"],
        aggregator=get_mtl_aggregator,
        objective=get_mtl_objective(),
        schedule=MTL["schedule"],
        eval=MTL["eval"],
        checkpoint="results/mtl/{mtl_arm}/seed{mtl_seed}/checkpoint.pt",
        device=RUNTIME["device"],
    script:
        "../scripts/mtl_train.py"


rule mtl_evaluate:
    input:
        training="results/mtl/{mtl_arm}/seed{mtl_seed}/training",
        test="results/mtl/data/test.jsonl",
    output:
        metrics="results/mtl/{mtl_arm}/seed{mtl_seed}/eval/{mtl_snapshot}.csv",
        predictions="results/mtl/{mtl_arm}/seed{mtl_seed}/eval/{mtl_snapshot}.predictions.jsonl",
    log:
        "results/logs/mtl/{mtl_arm}/seed{mtl_seed}/evaluate_{mtl_snapshot}.log",
    benchmark:
        "results/benchmarks/mtl/{mtl_arm}/seed{mtl_seed}/evaluate_{mtl_snapshot}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        eval=MTL["eval"],
        device=RUNTIME["device"],
    script:
        "../scripts/mtl_evaluate.py"


rule mtl_arm_evolution:
    input:
        unpack(get_mtl_arm_evaluations),
    output:
        "results/mtl/{mtl_arm}/seed{mtl_seed}/evolution.csv",
    log:
        "results/logs/mtl/{mtl_arm}/seed{mtl_seed}/evolution.log",
    benchmark:
        "results/benchmarks/mtl/{mtl_arm}/seed{mtl_seed}/evolution.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/mtl_evolution.py"


rule mtl_evolution:
    input:
        expand(
            "results/mtl/{arm}/seed{seed}/evolution.csv",
            arm=MTL["arms"],
            seed=MTL["seeds"],
        ),
    output:
        "results/mtl/evolution.csv",
    log:
        "results/logs/mtl/evolution.log",
    benchmark:
        "results/benchmarks/mtl/evolution.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/mtl_evolution_all.py"


rule mtl_report:
    input:
        unpack(get_mtl_final_predictions),
        evolution=rules.mtl_evolution.output[0],
        trainings=expand(
            "results/mtl/{arm}/seed{seed}/training", arm=MTL["arms"], seed=MTL["seeds"]
        ),
        # Device-hours of each training job.
        benchmarks=expand(
            "results/benchmarks/mtl/{arm}/seed{seed}/train.tsv",
            arm=MTL["arms"],
            seed=MTL["seeds"],
        ),
    output:
        report="results/mtl/report.md",
        comparison="results/mtl/comparison.csv",
        training="results/mtl/training.csv",
        best_epochs="results/mtl/best_epochs.csv",
        overfitting="results/mtl/overfitting.csv",
        html=report(
            "results/mtl/report.html",
            caption="../report/mtl/report.rst",
            category="mtl",
        ),
    log:
        "results/logs/mtl/report.log",
    benchmark:
        "results/benchmarks/mtl/report.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        arms=list(MTL["arms"]),
        seeds=MTL["seeds"],
        threshold=MTL["report"]["overfit_threshold"],
        config_hash=get_mtl_config_hash,
    script:
        "../scripts/mtl_report.py"


rule mtl_plot:
    input:
        evolution=rules.mtl_evolution.output[0],
        comparison=rules.mtl_report.output.comparison,
    output:
        report(
            "results/mtl/plots/{mtl_plot}.png",
            caption="../report/mtl/plot.rst",
            category="mtl",
        ),
    log:
        "results/logs/mtl/plot_{mtl_plot}.log",
    benchmark:
        "results/benchmarks/mtl/plot_{mtl_plot}.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/mtl_plot.py"
