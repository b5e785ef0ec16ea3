"""One model's answers on the test images: through the API client (cached) or in batches."""

from ftdag.compare import steps
from ftdag.core.jobs import job_log, use_threads

# The local server trains in a child process, which imports this file again (spawn):
# only the job itself runs it.
if __name__ == "__main__":
    with job_log(snakemake.log[0], "compare_answers"):
        use_threads(snakemake.threads)
        params = snakemake.params
        spec = dict(params.spec)
        steps.answer(
            snakemake.input.test,
            spec,
            snakemake.input.get("source", spec["model"]),
            params.prompt,
            dict(params.api),
            dict(params.sampling),
            params.server_dir,
            snakemake.input.get("base"),
            dict(params.training),
            params.cache_dir,
            snakemake.output.answers,
            snakemake.output.run,
        )
