# What spans the families: the cost of the campaign and the landing page of the HTML report.


localrules:
    campaign_cost,
    campaign_page,


rule campaign_cost:
    input:
        # Last: every result of every family, so that every job's benchmark is written.
        get_family_outputs(),
    output:
        jobs="results/cost.csv",
        per_result="results/cost_per_result.csv",
        html=report(
            "results/cost.html",
            caption="../report/campaign/cost.rst",
            category="campaign",
        ),
    log:
        "results/logs/campaign/cost.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        benchmarks="results/benchmarks",
        results=get_family_outputs(),
    script:
        "../scripts/campaign_cost.py"


rule campaign_page:
    input:
        cost=rules.campaign_cost.output.jobs,
        pt1_learning=expand(
            "results/exp3/{arch}/pt1_learning.csv", arch=EXP3["run_archs"]
        ),
        summaries=expand(
            "results/exp3/plots/{arch}_ftwb1_evaluation_heatmap.summary.json",
            arch=EXP3["run_archs"],
        ),
        curriculum_verdict=rules.curriculum_summary.output.verdict,
        mtl_report=rules.mtl_report.output.report,
        compare_report=rules.compare_summary.output.report,
    output:
        report(
            "results/campaign.html",
            caption="../report/campaign/page.rst",
            category="campaign",
        ),
    log:
        "results/logs/campaign/page.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        archs=EXP3["run_archs"],
    script:
        "../scripts/campaign_page.py"
