"""The compare family's report, as Markdown that `markdown_html` renders with its tables: each
model's metrics with 95% intervals, the study's success criteria each met or not with its
numbers, each model's best and worst predictions, the API cost in USD, and every unparsed answer
(counted and listed: a model's refusals and rambles are part of its result)."""

from __future__ import annotations

import re

import pandas as pd

EXAMPLES = 3  # best and worst predictions shown per model
CELL_CHARS = 160  # an answer longer than this is cut in a table cell (the JSON keeps it whole)
UNKNOWN = "unknown"


def cell(text) -> str:
    """Text that fits a Markdown table cell: one line, pipes escaped, raw HTML disarmed (an
    answer is a model's text, not markup), long text cut with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) > CELL_CHARS:
        text = text[: CELL_CHARS - 1] + "…"
    # Only a "<" that could open a tag is escaped: "MAE < 1.5" stays readable as plain text.
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text.replace("|", "\\|")) or "(empty)"


def missing(value) -> bool:
    return value is None or bool(pd.isna(value))


def estimate(row, metric: str, percent: bool = False) -> str:
    """'1.250 (0.800 to 1.700)', or 'n/a' for a model without a parsed answer."""
    value, low, high = (row.get(f"{metric}{end}") for end in ("", "_ci_low", "_ci_high"))
    if missing(value):
        return "n/a"
    shown = [f"{v:.1%}" if percent else f"{v:.3f}" for v in (value, low, high)]
    return f"{shown[0]} ({shown[1]} to {shown[2]})"


def metrics_section(metrics_table: pd.DataFrame) -> list[str]:
    lines = [
        "## Metrics",
        "",
        "MAE and RMSE are over the parsed answers; Acc@1 and Acc@2 (within 1 or 2 points) are "
        "out of all items, an unparsed answer counting as a miss. In brackets: 95% bootstrap "
        "intervals over items.",
        "",
        "| model | items | unparsed | MAE | RMSE | Acc@1 | Acc@2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in metrics_table.to_dict("records"):
        lines.append(
            f"| {cell(row['model'])} | {row['n']} | {row['n_unparsed']} | "
            f"{estimate(row, 'mae')} | {estimate(row, 'rmse')} | "
            f"{estimate(row, 'acc_at_1', True)} | {estimate(row, 'acc_at_2', True)} |"
        )
    return lines


def criteria_section(criteria: list[dict]) -> list[str]:
    met = sum(bool(c["met"]) for c in criteria)
    lines = [
        "## Success criteria",
        "",
        f"{met} of {len(criteria)} met.",
        "",
        "| criterion | result | numbers |",
        "|---|---|---|",
    ]
    for c in criteria:
        result = "**met**" if c["met"] else "not met"
        lines.append(f"| {cell(c['criterion'])} | {result} | {cell(c['detail'])} |")
    return lines


def extremes(table: pd.DataFrame, k: int = EXAMPLES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(best, worst): the k parsed items with the largest absolute error are the worst, then
    the k others with the smallest the best; ties go to the earlier item. Worst first: with
    fewer than 2k parsed items, the errors are what a reader most needs to see."""
    parsed = table[table["parsed"].astype(bool)]
    distance = pd.to_numeric(parsed["error"]).abs()
    worst = parsed.loc[(-distance).sort_values(kind="stable").index[:k]]
    rest = distance.drop(worst.index)
    best = parsed.loc[rest.sort_values(kind="stable").index[:k]]
    return best, worst


def examples_section(tables: dict[str, pd.DataFrame]) -> list[str]:
    lines = [
        "## Best and worst predictions",
        "",
        f"Up to {EXAMPLES} of each per model, by absolute error over the parsed answers.",
        "",
        "| model | which | image | expected | predicted | error | answer |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, table in tables.items():
        for which, rows in zip(("best", "worst"), extremes(table), strict=True):
            for row in rows.to_dict("records"):
                lines.append(
                    f"| {cell(model)} | {which} | {cell(row['image'])} | {row['expected']} | "
                    f"{row['predicted']} | {int(row['error']):+d} | {cell(row['answer'])} |"
                )
    return lines


def dollars(value) -> str:
    if missing(value):
        return UNKNOWN
    # a test run's few requests cost fractions of a cent: not shown as a free $0.0000
    return "<$0.0001" if 0 < value < 0.0001 else f"${value:,.4f}"


def tokens(value) -> str:
    return UNKNOWN if missing(value) else f"{int(value):,}"


def cost_section(cost_table: pd.DataFrame | None) -> list[str]:
    """Each model's tokens and USD; the total of the known costs, naming the unknown ones."""
    lines = ["## API cost (USD)", ""]
    if cost_table is None or cost_table.empty:
        return [*lines, "No API use recorded."]
    lines += [
        "| model | prompt tokens | completion tokens | trained tokens | inference | "
        "fine-tune training | total | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in cost_table.to_dict("records"):
        lines.append(
            f"| {cell(r['model'])} | {tokens(r['prompt_tokens'])} | "
            f"{tokens(r['completion_tokens'])} | {tokens(r['trained_tokens'])} | "
            f"{dollars(r['inference_usd'])} | {dollars(r['training_usd'])} | "
            f"{dollars(r['total_usd'])} | {cell(r['note']) if r['note'] else ''} |"
        )
    total = pd.to_numeric(cost_table["total_usd"], errors="coerce")
    unknown = cost_table.loc[total.isna(), "model"].astype(str).tolist()
    line = f"Total: {dollars(total.sum())}"
    if total.isna().all():
        line = "Total: unknown (no model's cost is known)"
    elif unknown:
        line = f"Total of the known costs: {dollars(total.sum())}; unknown for {', '.join(unknown)}"
    return [*lines, "", line + "."]


def unparsed_section(tables: dict[str, pd.DataFrame], unparsed: dict[str, list[str]]) -> list[str]:
    """Every model's count of unparsed answers, then each of those answers."""
    lines = ["## Unparsed answers", ""]
    for model, answers in unparsed.items():
        total = len(tables[model]) if model in tables else None
        out_of = f" of {total}" if total is not None else ""
        lines.append(f"- {model}: {len(answers)}{out_of} answers unparsed")
    listed = [(model, answer) for model, answers in unparsed.items() for answer in answers]
    if not listed:
        return [*lines, "", "Every answer held a score."]
    lines += ["", "| model | # | answer |", "|---|---|---|"]
    counts: dict[str, int] = {}
    for model, answer in listed:
        counts[model] = counts.get(model, 0) + 1
        lines.append(f"| {cell(model)} | {counts[model]} | {cell(answer)} |")
    return lines


def markdown_report(
    metrics_table: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    criteria: list[dict],
    cost_table: pd.DataFrame | None,
    unparsed: dict[str, list[str]],
    provenance: str = "",
) -> str:
    """The report: metrics, success criteria, best and worst predictions, API cost and the
    unparsed answers, then `provenance` (a `provenance_line`) as given."""
    sections = [
        ["# Compare: the models' scores against the ground truth"],
        metrics_section(metrics_table),
        criteria_section(criteria),
        examples_section(tables),
        cost_section(cost_table),
        unparsed_section(tables, unparsed),
    ]
    text = "\n\n".join("\n".join(lines) for lines in sections) + "\n"
    return text + provenance if provenance else text
