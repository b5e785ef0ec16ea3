# curriculum: random order vs a staged curriculum of visual questions.
#
# scenes (or a user's JSONL) -> image-level splits -> base model per seed -> each arm's stages,
# each from the previous stage's weights -> every stage model evaluated on the test split ->
# summary.csv -> plots.


localrules:
    curriculum_accuracy,
    curriculum_summary,
    curriculum_plot,


rule curriculum_data:
    output:
        records="results/curriculum/data/records.jsonl",
        images=directory("results/curriculum/data/images"),
    log:
        "results/logs/curriculum/data.log",
    benchmark:
        "results/benchmarks/curriculum/data.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        data=CURRICULUM["data"],
    script:
        "../scripts/curriculum_data.py"


rule curriculum_splits:
    input:
        records=rules.curriculum_data.output.records,
        images=rules.curriculum_data.output.images,
    output:
        **{s: f"results/curriculum/data/{s}.jsonl" for s in CURRICULUM_SPLITS},
    log:
        "results/logs/curriculum/splits.log",
    benchmark:
        "results/benchmarks/curriculum/splits.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        fractions=CURRICULUM["data"]["splits"],
        seed=CURRICULUM["data"]["seed"],
    script:
        "../scripts/curriculum_splits.py"


rule curriculum_base:
    input:
        "results/curriculum/data/train.jsonl",
    output:
        directory(
            "results/curriculum/base/{curriculum_resolution}px/seed{curriculum_seed}"
        ),
    log:
        "results/logs/curriculum/base_{curriculum_resolution}px_seed{curriculum_seed}.log",
    benchmark:
        "results/benchmarks/curriculum/base_{curriculum_resolution}px_seed{curriculum_seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        model=CURRICULUM["model"],
        templates=get_curriculum_template_texts,
    script:
        "../scripts/curriculum_base.py"


rule curriculum_stage:
    input:
        get_curriculum_parent_input,
        train="results/curriculum/data/train.jsonl",
    output:
        directory(
            "results/curriculum/{curriculum_arm}/seed{curriculum_seed}/stage{curriculum_stage}"
        ),
    log:
        "results/logs/curriculum/{curriculum_arm}/seed{curriculum_seed}/stage{curriculum_stage}.log",
    benchmark:
        "results/benchmarks/curriculum/{curriculum_arm}/seed{curriculum_seed}/stage{curriculum_stage}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        parent=get_curriculum_parent,
        stage=get_curriculum_stage,
        template=get_curriculum_template,
        resolution=get_curriculum_resolution,
        colour=CURRICULUM["padding_colour"],
        training=CURRICULUM["training"],
        lora=get_curriculum_lora,
        checkpoint="results/curriculum/{curriculum_arm}/seed{curriculum_seed}/checkpoints/stage{curriculum_stage}.pt",
        device=RUNTIME["device"],
    script:
        "../scripts/curriculum_stage.py"


rule curriculum_evaluate:
    input:
        model=rules.curriculum_stage.output[0],
        test="results/curriculum/data/test.jsonl",
    output:
        metrics="results/curriculum/{curriculum_arm}/seed{curriculum_seed}/eval/stage{curriculum_stage}.csv",
        predictions="results/curriculum/{curriculum_arm}/seed{curriculum_seed}/eval/stage{curriculum_stage}.predictions.jsonl",
    log:
        "results/logs/curriculum/{curriculum_arm}/seed{curriculum_seed}/evaluate_stage{curriculum_stage}.log",
    benchmark:
        "results/benchmarks/curriculum/{curriculum_arm}/seed{curriculum_seed}/evaluate_stage{curriculum_stage}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        template=get_curriculum_template,
        resolution=get_curriculum_resolution,
        colour=CURRICULUM["padding_colour"],
        eval=CURRICULUM["eval"],
        device=RUNTIME["device"],
        config_hash=get_curriculum_config_hash,
    script:
        "../scripts/curriculum_evaluate.py"


rule curriculum_accuracy:
    input:
        unpack(get_curriculum_evaluations),
        train="results/curriculum/data/train.jsonl",
        test="results/curriculum/data/test.jsonl",
    output:
        "results/curriculum/accuracy_by_seed.csv",
    log:
        "results/logs/curriculum/accuracy.log",
    benchmark:
        "results/benchmarks/curriculum/accuracy.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        evaluations=list(get_curriculum_evaluations()),
    script:
        "../scripts/curriculum_accuracy.py"


rule curriculum_summary:
    input:
        by_seed=rules.curriculum_accuracy.output[0],
        benchmarks=get_curriculum_stage_benchmarks().values(),
        predictions=sum(get_curriculum_final_predictions().values(), []),
    output:
        csv="results/curriculum/summary.csv",
        verdict="results/curriculum/verdict.md",
        html=report(
            "results/curriculum/summary.html",
            caption="../report/curriculum/summary.rst",
            category="curriculum",
        ),
    log:
        "results/logs/curriculum/summary.log",
    benchmark:
        "results/benchmarks/curriculum/summary.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        benchmarks=get_curriculum_stage_benchmarks(),
        predictions=get_curriculum_final_predictions(),
        arms=CURRICULUM_ARMS,
        config_hash=get_curriculum_config_hash,
    script:
        "../scripts/curriculum_summary.py"


rule curriculum_plot:
    input:
        rules.curriculum_summary.output.csv,
    output:
        report(
            "results/curriculum/plots/{curriculum_plot}.png",
            caption="../report/curriculum/plot.rst",
            category="curriculum",
        ),
    log:
        "results/logs/curriculum/plot_{curriculum_plot}.log",
    benchmark:
        "results/benchmarks/curriculum/plot_{curriculum_plot}.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/curriculum_plot.py"
