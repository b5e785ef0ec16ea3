# The compare family: scenes with a known score -> chat fine-tuning files -> the untuned tiny
# VLM (the offline API baseline) -> an API fine-tune and a local fine-tune -> every model's
# answers on the test images -> metrics, report, spreadsheets and plots.
# API steps start ftdag's own server on 127.0.0.1 (compare.api.base_url: local) or talk to the
# endpoint the config names; the key comes from the environment only.


localrules:
    compare_summary,


rule compare_data:
    input:
        get_compare_user_file(),
    output:
        train="results/compare/data/train.jsonl",
        test="results/compare/data/test.jsonl",
        scenes=directory("results/compare/data/scenes"),
    log:
        "results/logs/compare/data.log",
    benchmark:
        "results/benchmarks/compare/data.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        data=COMPARE["data"],
    script:
        "../scripts/compare_data.py"


rule compare_chat:
    input:
        train=rules.compare_data.output.train,
    output:
        train="results/compare/chat/train.jsonl",
        validation="results/compare/chat/validation.jsonl",
    log:
        "results/logs/compare/chat.log",
    benchmark:
        "results/benchmarks/compare/chat.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        prompt=COMPARE["prompt"],
        fraction=COMPARE["data"]["validation_fraction"],
        seed=COMPARE["data"]["seed"],
    script:
        "../scripts/compare_chat.py"


rule compare_base:
    input:
        chat=rules.compare_chat.output.train,
    output:
        directory("results/compare/models/base"),
    log:
        "results/logs/compare/base.log",
    benchmark:
        "results/benchmarks/compare/base.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        prompt=COMPARE["prompt"],
        resolution=COMPARE["resolution"],
        model=COMPARE["model"],
        training=COMPARE["training"],
        epochs=COMPARE["baseline_epochs"],
    script:
        "../scripts/compare_base.py"


rule compare_api_finetune:
    input:
        unpack(get_compare_api_finetune_inputs),
    output:
        "results/compare/finetunes/{compare_model}.json",
    log:
        "results/logs/compare/finetune_{compare_model}.log",
    benchmark:
        "results/benchmarks/compare/finetune_{compare_model}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        # One local server per state folder: API steps take turns.
        compare_api=1,
    params:
        api=COMPARE["api"],
        job=COMPARE["finetune"],
        training=COMPARE["training"],
        base_model=get_compare_model_id,
        run_hash=get_compare_run_hash,
        server_dir="results/compare/server",
    script:
        "../scripts/compare_api_finetune.py"


rule compare_local_finetune:
    input:
        base=rules.compare_base.output[0],
        chat=rules.compare_chat.output.train,
    output:
        directory("results/compare/models/{compare_model}"),
    log:
        "results/logs/compare/local_finetune_{compare_model}.log",
    benchmark:
        "results/benchmarks/compare/local_finetune_{compare_model}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    params:
        training=COMPARE["training"],
        seed=COMPARE["finetune"]["seed"],
        checkpoint="results/compare/checkpoints/{compare_model}.pt",
    script:
        "../scripts/compare_local_finetune.py"


rule compare_answers:
    input:
        unpack(get_compare_answer_inputs),
    output:
        answers="results/compare/answers/{compare_model}.jsonl",
        run="results/compare/answers/{compare_model}.run.json",
    log:
        "results/logs/compare/answers_{compare_model}.log",
    benchmark:
        "results/benchmarks/compare/answers_{compare_model}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        compare_api=get_compare_api_slot,
    params:
        spec=get_compare_spec,
        prompt=COMPARE["prompt"],
        api=COMPARE["api"],
        sampling=COMPARE["sampling"],
        training=COMPARE["training"],
        server_dir="results/compare/server",
        cache_dir="results/compare/cache",
    script:
        "../scripts/compare_answers.py"


rule compare_summary:
    input:
        answers=expand("results/compare/answers/{model}.jsonl", model=COMPARE_MODELS),
        runs=expand("results/compare/answers/{model}.run.json", model=COMPARE_MODELS),
        finetunes=get_compare_finetune_states(),
    output:
        report="results/compare/report.md",
        metrics="results/compare/metrics.csv",
        xlsx="results/compare/metrics_comparison.xlsx",
        per_model=directory("results/compare/per_model"),
        html=report(
            "results/compare/report.html",
            caption="../report/compare/report.rst",
            category="compare",
        ),
        metrics_plot=report(
            "results/compare/plots/metrics_comparison.png",
            caption="../report/compare/plot.rst",
            category="compare",
        ),
        score_plot=report(
            "results/compare/plots/score_distribution.png",
            caption="../report/compare/plot.rst",
            category="compare",
        ),
        error_plot=report(
            "results/compare/plots/error_distribution.png",
            caption="../report/compare/plot.rst",
            category="compare",
        ),
    log:
        "results/logs/compare/summary.log",
    benchmark:
        "results/benchmarks/compare/summary.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        models=COMPARE["models"],
        config_hash=get_compare_config_hash,
    script:
        "../scripts/compare_summary.py"
