# exp3: width ablation on world-map tasks.
#
# world -> evaluation sets + training sets -> pt1 per arch -> FTWB1-k and FTWB2-p fine-tunes
# -> one evaluation job per model (15 evaluations) -> metrics.csv, normalized.csv -> plots.


# Light rules run where Snakemake runs (on a cluster, the login node), not as cluster jobs.
localrules:
    exp3_metrics,
    exp3_pt1_learning,
    exp3_plot,
    exp3_training_curves,


rule exp3_world:
    output:
        "results/exp3/data/world.json",
    log:
        "results/logs/exp3/world.log",
    benchmark:
        "results/benchmarks/exp3/world.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        world=EXP3["world"],
    script:
        "../scripts/exp3_world.py"


rule exp3_tokenizer:
    output:
        directory("results/exp3/tokenizer"),
    log:
        "results/logs/exp3/tokenizer.log",
    benchmark:
        "results/benchmarks/exp3/tokenizer.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/exp3_tokenizer.py"


rule exp3_eval_sets:
    input:
        world=rules.exp3_world.output[0],
    output:
        **get_exp3_eval_sets(),
    log:
        "results/logs/exp3/eval_sets.log",
    benchmark:
        "results/benchmarks/exp3/eval_sets.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        n_per_set=EXP3["data"]["eval_samples"],
        seed=EXP3["data"]["seed"],
    script:
        "../scripts/exp3_eval_sets.py"


rule exp3_training_set:
    input:
        world=rules.exp3_world.output[0],
        eval_sets=get_exp3_eval_sets().values(),
    output:
        "results/exp3/data/train/{model}.jsonl",
    log:
        "results/logs/exp3/training_set_{model}.log",
    benchmark:
        "results/benchmarks/exp3/training_set_{model}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        data=EXP3["data"],
    script:
        "../scripts/exp3_training_set.py"


rule exp3_pretrain:
    input:
        data="results/exp3/data/train/pt1.jsonl",
        tokenizer=rules.exp3_tokenizer.output[0],
    output:
        directory("results/exp3/{arch}/models/pt1"),
    log:
        "results/logs/exp3/{arch}/train_pt1.log",
    benchmark:
        "results/benchmarks/exp3/{arch}/train_pt1.tsv"
    conda:
        "../../envs/torch.yaml"
    # Sizes for the embedded default on a laptop; profiles/slurm sets cluster sizes, and a
    # `gpu` resource > 1 there runs that many DDP processes, `threads` each.
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        arch=get_exp3_arch,
        stages=EXP3["data"]["pt1_stages"],
        training=EXP3["pretrain"],
        # Not an output: Snakemake would delete it when the job fails, and it is what a
        # restarted job resumes from.
        checkpoint="results/exp3/{arch}/checkpoints/pt1.pt",
        device=RUNTIME["device"],
        tracking=TRACKING,
        run_name=get_exp3_run_name,
    script:
        "../scripts/exp3_pretrain.py"


rule exp3_finetune:
    input:
        data="results/exp3/data/train/{finetuned}.jsonl",
        parent=rules.exp3_pretrain.output[0],
    output:
        directory("results/exp3/{arch}/models/{finetuned}"),
    log:
        "results/logs/exp3/{arch}/train_{finetuned}.log",
    benchmark:
        "results/benchmarks/exp3/{arch}/train_{finetuned}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        training=EXP3["finetune"],
        checkpoint="results/exp3/{arch}/checkpoints/{finetuned}.pt",
        device=RUNTIME["device"],
        tracking=TRACKING,
        run_name=get_exp3_run_name,
    script:
        "../scripts/exp3_finetune.py"


rule exp3_evaluate:
    input:
        unpack(get_exp3_eval_sets),
        model="results/exp3/{arch}/models/{model}",
        world=rules.exp3_world.output[0],
    output:
        metrics="results/exp3/{arch}/evals/{model}.csv",
        predictions="results/exp3/{arch}/evals/{model}.predictions.jsonl",
    log:
        "results/logs/exp3/{arch}/evaluate_{model}.log",
    benchmark:
        "results/benchmarks/exp3/{arch}/evaluate_{model}.tsv"
    # On a cluster, several models' evaluations share one submission (see profiles/slurm).
    group:
        "exp3_evaluation"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        batch_size=EXP3["eval"]["batch_size"],
        device=RUNTIME["device"],
        eval_names=EXP3_EVALS,
        config_hash=get_exp3_config_hash,
    script:
        "../scripts/exp3_evaluate.py"


rule exp3_metrics:
    input:
        get_exp3_model_evaluations,
    output:
        metrics="results/exp3/{arch}/metrics.csv",
        normalized="results/exp3/{arch}/normalized.csv",
    log:
        "results/logs/exp3/{arch}/metrics.log",
    benchmark:
        "results/benchmarks/exp3/{arch}/metrics.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        config_hash=get_exp3_config_hash,
    script:
        "../scripts/exp3_metrics.py"


rule exp3_pt1_learning:
    input:
        predictions="results/exp3/{arch}/evals/pt1.predictions.jsonl",
        train_data="results/exp3/data/train/pt1.jsonl",
    output:
        csv="results/exp3/{arch}/pt1_learning.csv",
        html=report(
            "results/exp3/{arch}/pt1_learning.html",
            caption="../report/exp3/pt1_learning.rst",
            category="exp3",
            subcategory="{arch}",
        ),
    log:
        "results/logs/exp3/{arch}/pt1_learning.log",
    benchmark:
        "results/benchmarks/exp3/{arch}/pt1_learning.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        config_hash=get_exp3_config_hash,
    script:
        "../scripts/exp3_pt1_learning.py"


rule exp3_plot:
    input:
        normalized=rules.exp3_metrics.output.normalized,
        pt1_learning=rules.exp3_pt1_learning.output.csv,
    output:
        png=report(
            "results/exp3/plots/{arch}_{plot}.png",
            caption="../report/exp3/plot.rst",
            category="exp3",
            subcategory="{arch}",
        ),
        summary="results/exp3/plots/{arch}_{plot}.summary.json",
    log:
        "results/logs/exp3/{arch}/plot_{plot}.log",
    benchmark:
        "results/benchmarks/exp3/{arch}/plot_{plot}.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        config_hash=get_exp3_config_hash,
    script:
        "../scripts/exp3_plot.py"


rule exp3_training_curves:
    input:
        unpack(get_exp3_models),
    output:
        report(
            "results/exp3/plots/{arch}_training_curves.png",
            caption="../report/exp3/training_curves.rst",
            category="exp3",
            subcategory="{arch}",
        ),
    log:
        "results/logs/exp3/{arch}/training_curves.log",
    benchmark:
        "results/benchmarks/exp3/{arch}/training_curves.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/exp3_training_curves.py"


# The research question: the archs of run_archs side by side (built with two or more).
rule exp3_arch_comparison:
    input:
        unpack(get_exp3_arch_comparison_inputs),
    output:
        png=report(
            "results/exp3/plots/arch_comparison.png",
            caption="../report/exp3/arch_comparison.rst",
            category="exp3",
        ),
        csv="results/exp3/arch_comparison.csv",
        summary="results/exp3/arch_comparison.json",
    log:
        "results/logs/exp3/arch_comparison.log",
    benchmark:
        "results/benchmarks/exp3/arch_comparison.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        archs=EXP3["run_archs"],
        benchmarks=get_exp3_training_benchmarks,
        config_hash=config_hash(EXP3),
    script:
        "../scripts/exp3_arch_comparison.py"
