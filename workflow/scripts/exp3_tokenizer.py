"""Build and save the character-level tokenizer."""

from ftdag.core.jobs import job_log
from ftdag.core.tokenizer import save_tokenizer

with job_log(snakemake.log[0], "tokenizer"):
    save_tokenizer(snakemake.output[0])
