"""The compare family's last step: every model's answers scored against the ground truth, the
metrics with intervals, the study's success criteria, the API cost, and the files a researcher
opens (per-model JSON and .xlsx, metrics_comparison.xlsx, report.md and its HTML, three plots).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ftdag.core import io

log = logging.getLogger("ftdag.compare")


def summarize(
    answers: dict[str, str],
    runs: dict[str, str],
    finetune_states: dict[str, str],
    models: list[dict],
    config_hash: str,
    out: dict[str, str],
) -> None:
    """`answers`, `runs`: per model name, its answers JSONL and run summary; `finetune_states`:
    per api_finetune model, its fine-tune state (trained tokens). `out` names the outputs."""
    from ftdag.compare import metrics, outputs, plots, report
    from ftdag.core.html import html_page, markdown_html
    from ftdag.core.provenance import provenance, provenance_line

    tables, usage, unparsed, metric_rows = {}, {}, {}, {}
    for name, path in answers.items():
        rows = io.read_jsonl(path)
        table = outputs.items_table(rows, [r["answer"] for r in rows], name)
        tables[name] = table
        metric_rows[name] = metrics.score_metrics(table["expected"], table["predicted"])
        unparsed[name] = table.loc[~table["parsed"], "answer"].tolist()
        usage[name] = {
            key: sum(r[key] or 0 for r in rows if not r["cached"])
            for key in ("prompt_tokens", "completion_tokens")
        }
        outputs.write_model_results(
            table,
            metric_rows[name],
            Path(out["per_model"]) / f"{name}.json",
            Path(out["per_model"]) / f"{name}.xlsx",
        )
    items = {name: (t["expected"].tolist(), t["predicted"].tolist()) for name, t in tables.items()}
    table = metrics.compare_models(items)
    baseline = models[0]["name"]
    finetuned = [m["name"] for m in models if m["kind"] != "api"]
    criteria = metrics.success_criteria(table, baseline, finetuned, items)
    trained = {
        name: json.loads(Path(path).read_text()).get("trained_tokens") or 0
        for name, path in finetune_states.items()
    }
    prices = {m["name"]: m["prices"] for m in models if m.get("prices")}
    cost = outputs.api_cost(usage, prices, trained)
    record = provenance(config_hash, inputs=list(answers.values()))
    text = report.markdown_report(table, tables, criteria, cost, unparsed, provenance_line(record))
    requests = {name: json.loads(Path(p).read_text())["requests"] for name, p in runs.items()}
    text += f"\nAPI requests this run: {json.dumps(requests)} (answers cached on disk).\n"
    io.atomic_write_text(out["report"], text)
    io.atomic_write_text(out["html"], html_page("compare: the models", markdown_html(text)))
    outputs.write_comparison_xlsx(table, tables, out["xlsx"])
    with io.atomic_path(out["metrics"]) as tmp:
        table.to_csv(tmp, index=False)
    plots.plot_metrics_comparison(table, out["metrics_plot"])
    plots.plot_score_distribution(tables, out["score_plot"])
    plots.plot_error_distribution(tables, out["error_plot"])
    log.info("%s", text)
