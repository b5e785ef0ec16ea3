"""A fine-tune through the (OpenAI-compatible) fine-tuning API, never paid twice: a rerun
resumes the job its state file, or the job's metadata, names."""

from ftdag.compare import steps
from ftdag.core.jobs import job_log, use_threads

# The local server trains in a child process, which imports this file again (spawn):
# only the job itself runs it.
if __name__ == "__main__":
    with job_log(snakemake.log[0], "compare_api_finetune"):
        use_threads(snakemake.threads)
        params = snakemake.params
        steps.api_fine_tune(
            snakemake.input.train,
            snakemake.input.validation,
            snakemake.input.get("base"),
            dict(params.api),
            dict(params.job),
            dict(params.training),
            params.base_model,
            params.run_hash,
            params.server_dir,
            snakemake.output[0],
        )
