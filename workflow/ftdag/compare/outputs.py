"""The compare family's tables and files: one row per item of what a model answered, the score
read from it and its error; each model's results as JSON and .xlsx; the models side by side in
one metrics_comparison.xlsx; and what the API calls and fine-tunes cost in USD.

Unparsed answers stay in every table (predicted and error None, parsed False), so that they are
counted and listed, never dropped. Every file is written atomically.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd

from ftdag.compare.scores import parse_answers
from ftdag.core.io import atomic_path, atomic_write_text

ITEM_COLUMNS = ("model", "image", "expected", "predicted", "answer", "error", "parsed")
COST_COLUMNS = (
    "model",
    "prompt_tokens",
    "completion_tokens",
    "trained_tokens",
    "inference_usd",
    "training_usd",
    "total_usd",
    "note",
)
COMPARISON_SHEET = "comparison"
SHEET_CHARS = 31  # Excel's limit on a sheet's name
NO_PRICES = "no prices for this model: cost unknown"
MISSING_PART = "a price or token count is missing: cost unknown"


def items_table(
    records: list[dict], answers: list[str], model: str, low: int = 1, high: int = 10
) -> pd.DataFrame:
    """One row per item, in the records' order: model, image, expected (the record's `score`),
    predicted (None where the answer held no score), the raw answer, error (predicted −
    expected, None where unparsed) and parsed."""
    if len(records) != len(answers):
        raise ValueError(f"{len(records)} records but {len(answers)} answers for {model}")
    scores, _ = parse_answers(answers, low, high)
    expected = [int(record["score"]) for record in records]
    columns = {
        "model": [model] * len(records),
        "image": [str(record["image"]) for record in records],
        "expected": expected,
        "predicted": scores,
        "answer": list(answers),
        "error": [None if s is None else s - e for s, e in zip(scores, expected, strict=True)],
        "parsed": [s is not None for s in scores],
    }
    # object dtype: pandas would otherwise turn None into NaN and the scores into floats
    objects = ("predicted", "error")
    return pd.DataFrame(
        {k: pd.Series(v, dtype=object if k in objects else None) for k, v in columns.items()},
        columns=ITEM_COLUMNS,
    )


def plain(value):
    """A JSON-able value: numpy scalars as Python ones, NaN and pandas' NA as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def write_sheets(sheets: dict[str, pd.DataFrame], out_xlsx) -> None:
    """Each frame as a sheet of one workbook, in order, written atomically."""
    # The writer is closed (the workbook saved) before atomic_path renames the file.
    with (
        atomic_path(out_xlsx, suffix=".xlsx") as tmp,
        pd.ExcelWriter(tmp, engine="openpyxl") as writer,
    ):
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)


def write_model_results(table: pd.DataFrame, metrics: dict, out_json, out_xlsx) -> None:
    """One model's results: a JSON of {model, metrics, items (every row of `table`)} and an
    .xlsx with an `items` sheet (the table) and a `metrics` sheet (metric, value)."""
    models = list(dict.fromkeys(table["model"])) if "model" in table else []
    model = plain(metrics.get("model")) or (models[0] if len(models) == 1 else None)
    document = {
        "model": model,
        "metrics": {str(k): plain(v) for k, v in metrics.items()},
        "items": [{k: plain(v) for k, v in row.items()} for row in table.to_dict("records")],
    }
    # allow_nan=False: a NaN that slipped past `plain` would make the JSON unreadable elsewhere
    atomic_write_text(out_json, json.dumps(document, indent=2, allow_nan=False) + "\n")
    metric_rows = pd.DataFrame(
        {"metric": list(document["metrics"]), "value": list(document["metrics"].values())}
    )
    write_sheets({"items": table, "metrics": metric_rows}, out_xlsx)


def sheet_names(models: list[str], taken: tuple[str, ...] = (COMPARISON_SHEET,)) -> dict:
    """{model: its sheet's name}: at most 31 characters, none of Excel's forbidden []:*?/\\,
    unique ignoring case (as Excel compares them) and apart from `taken`. Fine-tune ids such
    as "ft:gpt-4o-mini:org::abc" break all three rules as they are."""
    used = {name.lower() for name in taken}
    names = {}
    for model in models:
        base = re.sub(r"[\[\]:*?/\\]", "_", str(model)).strip("'")[:SHEET_CHARS] or "model"
        name, k = base, 1
        while name.lower() in used:
            k += 1
            name = base[: SHEET_CHARS - len(f"~{k}")] + f"~{k}"
        used.add(name.lower())
        names[model] = name
    return names


def write_comparison_xlsx(
    metrics_table: pd.DataFrame, per_model_tables: dict[str, pd.DataFrame], out_xlsx
) -> None:
    """metrics_comparison.xlsx: a `comparison` sheet (one row per model, with the name of its
    sheet, as a model id may not fit one) and each model's items on a sheet of its own."""
    names = sheet_names(list(per_model_tables))
    comparison = metrics_table.assign(sheet=[names.get(m) for m in metrics_table["model"]])
    sheets = {COMPARISON_SHEET: comparison}
    sheets |= {names[model]: table for model, table in per_model_tables.items()}
    write_sheets(sheets, out_xlsx)


def usd(tokens, per_million) -> float | None:
    """What `tokens` cost at a price in USD per million tokens: 0 for no tokens whatever the
    price (a base model trains nothing); None where the count or the price is unknown."""
    if tokens == 0:
        return 0.0
    if tokens is None or per_million is None:
        return None
    return tokens * float(per_million) / 1e6


def cost_row(model: str, usage: dict, price: dict | None, trained: int | None) -> dict:
    """One model's tokens and USD cost: inference (prompt and completion tokens) plus training."""
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    row = {
        "model": model,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "trained_tokens": trained,
    }
    if price is None:
        # unknown, never 0: a local model's cost is its device time, not a price list's
        costs = {"inference_usd": None, "training_usd": None, "total_usd": None}
        return row | costs | {"note": NO_PRICES}
    parts = [
        usd(prompt, price.get("input_per_million")),
        usd(completion, price.get("output_per_million")),
    ]
    inference = None if None in parts else sum(parts)
    training = usd(trained, price.get("training_per_million"))
    total = None if inference is None or training is None else inference + training
    costs = {"inference_usd": inference, "training_usd": training, "total_usd": total}
    return row | costs | {"note": "" if total is not None else MISSING_PART}


def api_cost(
    usage_by_model: dict[str, dict],
    prices: dict[str, dict],
    trained_tokens: dict[str, int] | None = None,
) -> pd.DataFrame:
    """USD per model, one row for each model that was asked or trained (in that order):
    tokens, inference_usd, training_usd, total_usd and a note. `usage_by_model`: {model:
    {prompt_tokens, completion_tokens}}; `prices`: {model: {input_per_million,
    output_per_million, training_per_million}}; `trained_tokens`: {fine-tuned model: tokens
    its training was billed for}. A model without prices has its costs unknown (NaN) and
    says so in its note."""
    trained_tokens = trained_tokens or {}
    models = list(dict.fromkeys([*usage_by_model, *trained_tokens]))
    rows = [
        cost_row(
            model, usage_by_model.get(model, {}), prices.get(model), trained_tokens.get(model, 0)
        )
        for model in models
    ]
    return pd.DataFrame(rows, columns=COST_COLUMNS)
