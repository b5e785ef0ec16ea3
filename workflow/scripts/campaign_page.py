"""The landing page of the report: what was run, what each family found, what it cost."""

from ftdag import campaign
from ftdag.core.jobs import job_log

with job_log(snakemake.log[0], "campaign_page"):
    archs = snakemake.params.archs
    findings = {
        "exp3": campaign.exp3_findings(
            dict(zip(archs, snakemake.input.pt1_learning, strict=True)),
            dict(zip(archs, snakemake.input.summaries, strict=True)),
        ),
        "curriculum": campaign.verdict_findings(snakemake.input.curriculum_verdict),
        "mtl": campaign.verdict_findings(snakemake.input.mtl_report, first_section_only=True),
        "compare": campaign.verdict_findings(
            snakemake.input.compare_report, sections=("Metrics", "Success criteria")
        ),
    }
    campaign.campaign_page(snakemake.config, findings, snakemake.input.cost, snakemake.output[0])
