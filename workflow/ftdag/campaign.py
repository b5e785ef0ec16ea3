"""What spans the families: the cost tables and the campaign page of the HTML report.

Steps of the rules in `workflow/rules/report.smk`; they read files and call the pure functions
of `ftdag.core.cost`.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import pandas as pd

from ftdag.core import cost, io
from ftdag.core.html import html_page, table_html
from ftdag.core.provenance import code_version, config_hash, cpu_model, versions

log = logging.getLogger("ftdag.campaign")


def cost_tables(benchmark_root, results: list[str], out_jobs, out_results, out_html) -> None:
    """results/cost.csv (a row per benchmarked job), cost_per_result.csv (device-hours upstream
    of each of `results`) and an HTML rendering of both for the report."""
    jobs = [cost.read_benchmark(p) for p in sorted(Path(benchmark_root).rglob("*.tsv"))]
    per_job = pd.DataFrame(cost.cost_rows(jobs), columns=cost.COST_COLUMNS)
    metadata = cost.read_metadata()
    per_result = pd.DataFrame(
        [cost.result_row(r, cost.upstream_jobs(r, metadata, jobs)) for r in results],
        columns=cost.RESULT_COLUMNS,
    )
    for frame, path in ((per_job, out_jobs), (per_result, out_results)):
        with io.atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    by_rule = (
        per_job.groupby("rule", sort=True)
        .agg(
            jobs=("rule", "size"),
            wall_seconds=("wall_seconds", "sum"),
            device_hours=("device_hours", "sum"),
        )
        .reset_index()
    )
    total = per_job["device_hours"].sum()
    body = (
        f"<p>{len(per_job)} jobs, {total:.4f} device-hours in all (GPU-hours where a job was "
        "given GPUs, core-hours otherwise; wall time from each job's benchmark file).</p>"
        f"<h3>By rule</h3>{table_html(by_rule)}<h3>Upstream of each result</h3>"
        f"{table_html(per_result)}<h3>Every job</h3>{table_html(per_job.drop(columns='benchmark'))}"
    )
    io.atomic_write_text(out_html, html_page("What the campaign cost", body))
    log.info("%d jobs, %.4f device-hours; %d results rolled up", len(per_job), total, len(results))


def exp3_findings(pt1_learning_csvs: dict[str, str], summaries: dict[str, str]) -> str:
    """exp3's findings per arch: what pt1 learned, and trained vs transfer of FTWB1."""
    items = []
    for arch, path in pt1_learning_csvs.items():
        table = pd.read_csv(path)
        learned = table.loc[table["clear"].astype(bool), "task"].tolist()
        line = (
            f"<b>{html.escape(arch)}</b>: pt1 clearly learned {len(learned)} of {len(table)} "
            f"tasks ({', '.join(learned) or 'none'})"
        )
        summary_path = summaries.get(arch)
        if summary_path:
            s = json.loads(Path(summary_path).read_text())
            parts = []
            for name in ("trained", "transfer"):
                cells = s[name]
                if cells["mean"] is not None:
                    sd = "n/a" if cells["sd"] is None else f"{cells['sd']:.2f}"
                    parts.append(f"{name} {cells['mean']:.2f} ± {sd} (n={cells['n']})")
            line += "; FTWB1 normalized Atlantis score: " + ", ".join(parts)
        items.append(f"<li>{line}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def verdict_findings(verdict_md, first_section_only: bool = False, sections=()) -> str:
    """A family's Markdown verdict, its title dropped (the page gives the family's name); with
    `first_section_only`, up to its first `##` heading (a long report's summary); with
    `sections`, only the `##` sections of those names."""
    from ftdag.core.html import markdown_html

    lines = Path(verdict_md).read_text().splitlines()
    if first_section_only:
        starts = [k for k, line in enumerate(lines) if line.startswith("## ")]
        lines = lines[: starts[0]] if starts else lines
    if sections:
        kept, keep = [], False
        for line in lines:
            if line.startswith("## "):
                keep = line[3:].strip() in sections
            if keep:
                kept.append(line)
        lines = kept
    return markdown_html("\n".join(line for line in lines if not line.startswith("# ")))


def campaign_page(config: dict, findings: dict[str, str], cost_csv, out_html) -> None:
    """The landing table of the report: what was run, with what config, what each family
    found, and what it cost."""
    per_job = pd.read_csv(cost_csv)
    code = code_version()
    run = pd.DataFrame(
        [
            {"what": "config hash", "value": config_hash(config)},
            {"what": "families", "value": ", ".join(findings)},
            {"what": "code", "value": json.dumps(code)},
            {"what": "versions", "value": ", ".join(f"{k} {v}" for k, v in versions().items())},
            {"what": "CPU", "value": cpu_model()},
            {"what": "jobs", "value": str(len(per_job))},
            {"what": "device-hours", "value": f"{per_job['device_hours'].sum():.4f}"},
        ]
    )
    body = table_html(run) + "".join(
        f"<h3>{html.escape(family)}</h3>{text}" for family, text in findings.items()
    )
    io.atomic_write_text(out_html, html_page("The campaign", body))
