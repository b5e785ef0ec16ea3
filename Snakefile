# ftdag: a fine-tuning research campaign as one DAG.
#
#   snakemake --cores 2                    the default campaign (config/config.yaml)
#   snakemake -n                           what would run, and why
#   snakemake --profile profiles/slurm results/exp3/plots/wide_ftwb2_vs_ftwb1.png


from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# The embedded default; --configfile FILE merges FILE over it. Anchored to this file, so that
# --directory elsewhere still finds it.
configfile: Path(workflow.basedir) / "config" / "config.yaml"


# The HTML report (`snakemake --report report.html`) opens on the campaign.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/exp3.smk"
include: "workflow/rules/curriculum.smk"
include: "workflow/rules/mtl.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/report.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        get_final_outputs(),
