"""Tables as HTML pages: `snakemake --report` shows HTML inline, a CSV only as a download."""

from __future__ import annotations

import html

import pandas as pd

STYLE = """<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
</style>"""


def html_page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"{STYLE}</head><body><h2>{html.escape(title)}</h2>{body}</body></html>\n"
    )


def table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}")


def markdown_html(text: str) -> str:
    """Markdown (with tables) as HTML, for verdicts written as .md and shown in the report."""
    import markdown

    return markdown.markdown(text, extensions=["tables"])
