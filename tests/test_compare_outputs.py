"""The compare family's tables, files, plots and report on hand-made answers: errors and unparsed
flags per item, the JSON and .xlsx read back, a sheet per model in metrics_comparison.xlsx, API
cost by hand and unknown (never 0) without prices, PNGs written, and a report that holds the
numbers, each criterion's verdict, the best and worst items and every unparsed answer."""

from __future__ import annotations

import json
import math

import openpyxl
import pandas as pd
import pytest

from ftdag.compare.metrics import compare_models, success_criteria
from ftdag.compare.outputs import (
    api_cost,
    items_table,
    write_comparison_xlsx,
    write_model_results,
)
from ftdag.compare.plots import (
    plot_error_distribution,
    plot_metrics_comparison,
    plot_score_distribution,
)
from ftdag.compare.report import markdown_report
from ftdag.core.html import markdown_html

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXPECTED = [3, 5, 7, 9, 2, 8]
RECORDS = [{"image": f"img{i}.png", "score": s} for i, s in enumerate(EXPECTED)]
# A fine-tune id as the API names it: too long for a sheet name, and with forbidden colons.
FT = "ft:gpt-4o-mini-2024-07-18:personal:compare:AbC123"
ANSWERS = {
    # predicted 4, 5, -, 6, 7, 8: errors +1, 0, -, -3, +5, 0; MAE 1.8, Acc@1 3/6
    "baseline": ["Score: 4", "5/10", "I can't rate this image.", "**6**", "seven", "8"],
    # predicted 3, 5, 9, 7, 4, -: errors 0, 0, +2, -2, +2, -; MAE 1.2, Acc@1 2/6
    FT: ["3", "Score: 5", "9", "7", "4", "Score: 11"],
    # nothing parsed: every metric None
    "local": ["", "I cannot tell.", "N/A", "Score: 0", "<b>70/100</b>", "maybe | unsure"],
}


@pytest.fixture(scope="module")
def study():
    """The tables, metrics, criteria and unparsed answers of the three hand-made models."""
    tables = {model: items_table(RECORDS, answers, model) for model, answers in ANSWERS.items()}
    items = {m: (t["expected"].tolist(), t["predicted"].tolist()) for m, t in tables.items()}
    metrics = compare_models(items, n_resamples=200)
    criteria = success_criteria(metrics, "baseline", [FT, "local"], items, n_resamples=200)
    unparsed = {m: t.loc[~t["parsed"], "answer"].tolist() for m, t in tables.items()}
    return tables, metrics, criteria, unparsed


def test_items_table_errors_and_unparsed_flags():
    table = items_table(RECORDS, ANSWERS["baseline"], "baseline")
    assert list(table.columns) == [
        "model",
        "image",
        "expected",
        "predicted",
        "answer",
        "error",
        "parsed",
    ]
    assert table["predicted"].tolist() == [4, 5, None, 6, 7, 8]
    assert table.loc[2, "predicted"] is None and table.loc[2, "error"] is None
    assert table["error"].tolist() == [1, 0, None, -3, 5, 0]
    assert table["parsed"].tolist() == [True, True, False, True, True, True]
    assert table["expected"].tolist() == EXPECTED
    assert table.loc[2, "answer"] == "I can't rate this image."
    assert set(table["model"]) == {"baseline"}
    with pytest.raises(ValueError, match="6 records but 5 answers"):
        items_table(RECORDS, ANSWERS["baseline"][:5], "baseline")


def test_model_results_round_trip(tmp_path, study):
    tables, metrics, _, _ = study
    row = metrics.set_index("model").loc["baseline"].to_dict() | {"model": "baseline"}
    out_json, out_xlsx = tmp_path / "baseline.json", tmp_path / "out" / "baseline.xlsx"
    write_model_results(tables["baseline"], row, out_json, out_xlsx)
    document = json.loads(out_json.read_text())
    assert document["model"] == "baseline"
    assert document["metrics"]["mae"] == pytest.approx(1.8)
    assert document["metrics"]["n_unparsed"] == 1
    assert len(document["items"]) == 6
    assert document["items"][2] == {
        "model": "baseline",
        "image": "img2.png",
        "expected": 7,
        "predicted": None,
        "answer": "I can't rate this image.",
        "error": None,
        "parsed": False,
    }
    assert document["items"][4]["error"] == 5
    assert openpyxl.load_workbook(out_xlsx).sheetnames == ["items", "metrics"]
    sheets = pd.read_excel(out_xlsx, sheet_name=None)
    items = sheets["items"]
    assert len(items) == 6 and items["expected"].tolist() == EXPECTED
    assert math.isnan(items.loc[2, "predicted"]) and items.loc[4, "error"] == 5
    assert items["parsed"].tolist() == [True, True, False, True, True, True]
    values = dict(zip(sheets["metrics"]["metric"], sheets["metrics"]["value"], strict=True))
    assert float(values["mae"]) == pytest.approx(1.8)
    assert float(values["acc_at_1"]) == pytest.approx(0.5)
    # atomic writes leave no temporary file behind
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "baseline.json",
        "baseline.xlsx",
    ]


def test_comparison_xlsx_has_every_models_sheet(tmp_path, study):
    tables, metrics, _, _ = study
    # two ids alike in their first 31 characters must still get a sheet each
    twin = FT.replace("AbC123", "XyZ789")
    tables = tables | {twin: tables[FT].assign(model=twin)}
    metrics = pd.concat([metrics, metrics[metrics["model"] == FT].assign(model=twin)])
    path = tmp_path / "metrics_comparison.xlsx"
    write_comparison_xlsx(metrics, tables, path)
    names = openpyxl.load_workbook(path).sheetnames
    assert names[0] == "comparison" and len(names) == 1 + len(tables)
    assert all(len(name) <= 31 and ":" not in name for name in names)
    sheets = pd.read_excel(path, sheet_name=None)
    comparison = sheets["comparison"]
    assert comparison["model"].tolist() == ["baseline", FT, "local", twin]
    assert comparison.loc[0, "mae"] == pytest.approx(1.8)
    for model, sheet in zip(comparison["model"], comparison["sheet"], strict=True):
        assert sheets[sheet]["model"].unique().tolist() == [model]
        assert len(sheets[sheet]) == 6


def test_api_cost_by_hand():
    prices = {
        "gpt-4o-mini": {
            "input_per_million": 0.15,
            "output_per_million": 0.60,
            "training_per_million": 3.0,
        },
        FT: {"input_per_million": 0.30, "output_per_million": 1.20, "training_per_million": 3.0},
    }
    usage = {
        "gpt-4o-mini": {"prompt_tokens": 2000, "completion_tokens": 500},
        FT: {"prompt_tokens": 4000, "completion_tokens": 1000},
    }
    cost = api_cost(usage, prices, {FT: 100_000}).set_index("model")
    # 2000 x 0.15 / 1e6 + 500 x 0.60 / 1e6; nothing trained
    assert cost.loc["gpt-4o-mini", "inference_usd"] == pytest.approx(0.0006)
    assert cost.loc["gpt-4o-mini", "training_usd"] == 0
    assert cost.loc["gpt-4o-mini", "total_usd"] == pytest.approx(0.0006)
    # 4000 x 0.30 / 1e6 + 1000 x 1.20 / 1e6, plus 100,000 x 3.0 / 1e6 of training
    assert cost.loc[FT, "inference_usd"] == pytest.approx(0.0024)
    assert cost.loc[FT, "training_usd"] == pytest.approx(0.3)
    assert cost.loc[FT, "total_usd"] == pytest.approx(0.3024)
    assert cost.loc[FT, "trained_tokens"] == 100_000


def test_api_cost_without_prices_is_unknown_never_zero():
    usage = {
        "local": {"prompt_tokens": 5000, "completion_tokens": 100},
        "cheap": {"prompt_tokens": 0, "completion_tokens": 0},
    }
    # "cheap" is priced but its training price is missing while it trained: unknown too
    prices = {"cheap": {"input_per_million": 1.0, "output_per_million": 1.0}}
    cost = api_cost(usage, prices, {"cheap": 10, "trained-only": 50}).set_index("model")
    assert list(cost.index) == ["local", "cheap", "trained-only"]
    for model in ("local", "trained-only"):
        assert cost.loc[model, ["inference_usd", "training_usd", "total_usd"]].isna().all()
        assert "no prices" in cost.loc[model, "note"]
    assert cost.loc["cheap", "inference_usd"] == 0
    assert pd.isna(cost.loc["cheap", "total_usd"]) and "missing" in cost.loc["cheap", "note"]
    report = markdown_report(
        compare_models({"local": ([5], [5])}, n_resamples=20), {}, [], cost.reset_index(), {}
    )
    assert "| local | 5,000 | 100 | 0 | unknown | unknown | unknown |" in report
    assert "Total: unknown" in report


@pytest.mark.parametrize(
    "plot", [plot_metrics_comparison, plot_score_distribution, plot_error_distribution]
)
def test_each_plot_writes_a_png(tmp_path, study, plot):
    tables, metrics, _, _ = study
    path = tmp_path / "plots" / f"{plot.__name__}.png"
    plot(metrics if plot is plot_metrics_comparison else tables, path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert 10_000 < len(data) < 2_000_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 500 and height >= 300
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_report_holds_numbers_verdicts_examples_and_unparsed(study):
    tables, metrics, criteria, unparsed = study
    cost = api_cost({"baseline": {"prompt_tokens": 1000, "completion_tokens": 10}}, {}, {})
    report = markdown_report(metrics, tables, criteria, cost, unparsed, "\nProvenance: here.\n")
    rows = metrics.set_index("model")
    for model in ("baseline", FT):
        row = rows.loc[model]
        assert f"{row['mae']:.3f} ({row['mae_ci_low']:.3f} to {row['mae_ci_high']:.3f})" in report
        assert f"{row['rmse']:.3f} (" in report and f"{row['acc_at_2']:.1%} (" in report
    assert "| 1.800 (" in report and "| 1.200 (" in report and "| 33.3% (" in report
    assert "| local | 6 | 6 | n/a | n/a | n/a | n/a |" in report
    verdicts = {c["criterion"]: c["met"] for c in criteria}
    assert True in verdicts.values() and False in verdicts.values()  # both kinds are shown
    for name, met in verdicts.items():
        line = next(line for line in report.splitlines() if line.startswith(f"| {name} |"))
        assert line.split(" | ")[1] == ("**met**" if met else "not met")
    assert f"{sum(verdicts.values())} of 3 met." in report
    assert "| baseline | worst | img4.png | 2 | 7 | +5 | seven |" in report
    assert "| baseline | best | img1.png | 5 | 5 | +0 | 5/10 |" in report
    assert f"| {FT} | worst | img2.png | 7 | 9 | +2 | 9 |" in report
    assert f"| {FT} | best | img0.png | 3 | 3 | +0 | 3 |" in report
    assert f"| {FT} | best | img2.png" not in report  # an item is shown once
    assert "- baseline: 1 of 6 answers unparsed" in report
    assert "- local: 6 of 6 answers unparsed" in report
    assert f"- {FT}: 1 of 6 answers unparsed" in report
    for answer in (
        "I can't rate this image.",
        "Score: 11",
        "(empty)",
        "&lt;b>70/100&lt;/b>",
        "maybe \\| unsure",
    ):
        assert f"| {answer} |" in report
    assert "| baseline | 1,000 | 10 | 0 | unknown |" in report
    assert report.endswith("Provenance: here.\n")
    page = markdown_html(report)
    assert page.count("<table>") == 5  # metrics, criteria, examples, cost, unparsed
    assert "maybe | unsure" in page  # the escaped pipe stays in its cell
    assert "<b>" not in page  # an answer is text, not markup
