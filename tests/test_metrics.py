import json
import math

import numpy as np
import pandas as pd
import pytest

from ftdag.exp3 import metrics
from ftdag.exp3.metrics import (
    METRIC_COLUMNS,
    NORMALIZED_COLUMNS,
    PT1_LEARNING_COLUMNS,
    against_trivial_baseline,
    degenerate_summary,
    normalize,
    normalize_value,
    pt1_learning_summary,
    pt1_learning_table,
    summarize,
)
from ftdag.exp3.names import eval_names, eval_task_and_cities
from ftdag.exp3.tasks import ABS_ERROR, ACCURACY, EXACT_MATCH, TASK_NAMES, TASKS


def eval_rows(model, values=None):
    """The 15 rows of one model's evaluation CSV; `values` maps eval name -> value."""
    values = values or {}
    rows = []
    for name in eval_names():
        task, cities = eval_task_and_cities(name)
        metric = EXACT_MATCH if task == "multi_task" else TASKS[task].metric
        default = 10.0 if metric == ABS_ERROR else 0.5
        rows.append(
            {
                "model": model,
                "eval": name,
                "task": task,
                "cities": cities,
                "metric": metric,
                "value": values.get(name, default),
                "n": 100,
                "n_unparsed": 0,
            }
        )
    return rows


def metrics_table(models_values):
    """A metrics table from {model: {eval: value}}; pt1 defaults give every task a gap."""
    pt1_defaults = {}
    for task in TASK_NAMES:
        if TASKS[task].metric == ABS_ERROR:
            pt1_defaults |= {f"{task}_standard": 10.0, f"{task}_atlantis": 100.0}
        else:
            pt1_defaults |= {f"{task}_standard": 0.9, f"{task}_atlantis": 0.4}
    models_values = {"pt1": {}, **models_values}
    rows = []
    for model, values in models_values.items():
        base = pt1_defaults if model == "pt1" else {}
        rows += eval_rows(model, base | values)
    return pd.DataFrame(rows)


def write_csv(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# --- normalize_value ------------------------------------------------------------------------


def test_error_formula_hand_computed():
    # log(100/10) / log(100/1) = 1/2
    value, status = normalize_value(ABS_ERROR, 10.0, 1.0, 100.0)
    assert value == pytest.approx(0.5)
    assert status == "ok"
    # log(80/20) / log(80/5) = log 4 / log 16 = 1/2
    assert normalize_value(ABS_ERROR, 20.0, 5.0, 80.0)[0] == pytest.approx(0.5)
    # v at the standard level -> 1, v at the old Atlantis level -> 0
    assert normalize_value(ABS_ERROR, 5.0, 5.0, 80.0)[0] == pytest.approx(1.0)
    assert normalize_value(ABS_ERROR, 80.0, 5.0, 80.0)[0] == pytest.approx(0.0)


def test_accuracy_formula_hand_computed():
    # (0.6 - 0.4) / (0.8 - 0.4) = 0.5
    value, status = normalize_value(ACCURACY, 0.6, 0.8, 0.4)
    assert value == pytest.approx(0.5)
    assert status == "ok"
    assert normalize_value(ACCURACY, 0.8, 0.8, 0.4)[0] == pytest.approx(1.0)


def test_clipping():
    assert normalize_value(ACCURACY, 0.2, 0.8, 0.4) == (0.0, "clipped_low")  # raw -0.5
    assert normalize_value(ACCURACY, 1.0, 0.6, 0.4) == (1.5, "clipped_high")  # raw 3
    assert normalize_value(ABS_ERROR, 200.0, 1.0, 100.0) == (0.0, "clipped_low")
    # log(100/0.01) / log(100/10) = 4
    assert normalize_value(ABS_ERROR, 0.01, 10.0, 100.0) == (1.5, "clipped_high")
    # just inside the top: raw 1.5 exactly is not clipped
    value, status = normalize_value(ABS_ERROR, 0.1, 1.0, 100.0)
    assert (value, status) == (pytest.approx(1.5), "ok")


@pytest.mark.parametrize(
    "metric, b_std, b_atl",
    [
        (ABS_ERROR, 10.0, 10.0),  # equal baselines
        (ABS_ERROR, 20.0, 10.0),  # pt1 better on Atlantis
        (ABS_ERROR, 0.0, 0.0),  # perfect everywhere
        (ACCURACY, 0.5, 0.5),
        (ACCURACY, 0.4, 0.9),
    ],
)
def test_degenerate_baseline_is_nan(metric, b_std, b_atl):
    value, status = normalize_value(metric, 1.0, b_std, b_atl)
    assert math.isnan(value)
    assert status == "degenerate_baseline"


def test_perfect_error_is_max_clip():
    assert normalize_value(ABS_ERROR, 0.0, 10.0, 100.0) == (1.5, "perfect")


def test_zero_error_baseline():
    value, status = normalize_value(ABS_ERROR, 3.0, 0.0, 100.0)
    assert math.isnan(value)
    assert status == "zero_baseline"
    assert normalize_value(ABS_ERROR, 0.0, 0.0, 100.0) == (1.0, "zero_baseline")


def test_missing_value_and_bad_inputs():
    value, status = normalize_value(ACCURACY, math.nan, 0.8, 0.4)
    assert math.isnan(value) and status == "missing_value"
    with pytest.raises(ValueError, match="negative"):
        normalize_value(ABS_ERROR, -1.0, 1.0, 10.0)
    with pytest.raises(ValueError, match="exact_match"):
        normalize_value(EXACT_MATCH, 0.5, 0.8, 0.4)


# --- normalize ------------------------------------------------------------------------------


def test_normalize_table():
    metrics = metrics_table(
        {
            "ftwb2-2": {"angle_atlantis": 10.0, "compass_atlantis": 0.65},
            "ftwb1-1": {"distance_atlantis": 100.0},
        }
    )
    out = normalize(metrics)
    assert list(out.columns) == NORMALIZED_COLUMNS
    assert len(out) == 2 * len(TASK_NAMES)
    assert list(out["model"].unique()) == ["ftwb1-1", "ftwb2-2"]  # canonical order
    assert list(out["task"][:7]) == list(TASK_NAMES)
    row = out.set_index(["model", "task"])
    assert row.loc[("ftwb2-2", "angle"), "normalized"] == pytest.approx(1.0)
    assert row.loc[("ftwb2-2", "compass"), "normalized"] == pytest.approx(0.5)
    assert row.loc[("ftwb2-2", "compass"), "b_std"] == 0.9
    assert row.loc[("ftwb2-2", "compass"), "b_atl"] == 0.4
    assert row.loc[("ftwb2-2", "compass"), "trained_tasks"] == "angle+compass"
    assert row.loc[("ftwb2-2", "compass"), "kind"] == "ftwb2"
    assert row.loc[("ftwb1-1", "distance"), "normalized"] == pytest.approx(0.0)
    assert row.loc[("ftwb1-1", "distance"), "trained_tasks"] == "distance"
    assert set(out["status"]) <= {"ok", "clipped_low", "clipped_high"}


def test_normalize_missing_pt1_rows():
    metrics = metrics_table({"ftwb1-1": {}})
    metrics = metrics[~((metrics["model"] == "pt1") & (metrics["eval"] == "angle_standard"))]
    with pytest.raises(ValueError, match="angle_standard"):
        normalize(metrics)
    with pytest.raises(ValueError, match="pt1"):
        normalize(metrics_table({"ftwb1-1": {}}).query("model != 'pt1'"))


def test_normalize_missing_model_row():
    metrics = metrics_table({"ftwb1-3": {}})
    metrics = metrics[~((metrics["model"] == "ftwb1-3") & (metrics["eval"] == "inside_atlantis"))]
    with pytest.raises(ValueError, match="ftwb1-3.*inside_atlantis"):
        normalize(metrics)


def test_degenerate_summary_names_task_and_models():
    metrics = metrics_table(
        {
            "pt1": {"compass_standard": 0.4, "distance_standard": 0.0},
            "ftwb1-1": {},
            "ftwb1-2": {"trianglearea_atlantis": 0.0},
        }
    )
    out = normalize(metrics)
    compass = out[out["task"] == "compass"]
    assert (compass["status"] == "degenerate_baseline").all()
    assert compass["normalized"].isna().all()
    lines = degenerate_summary(out)
    assert any("degenerate_baseline" in s and "compass" in s and "ftwb1-2" in s for s in lines)
    assert any("zero_baseline" in s and "distance" in s for s in lines)
    assert any("perfect" in s and "trianglearea" in s and "ftwb1-2" in s for s in lines)
    assert degenerate_summary(normalize(metrics_table({"ftwb1-1": {}}))) == []


# --- collect_metrics ------------------------------------------------------------------------


def collect_metrics(paths):
    return metrics.collect_metrics({str(p): pd.read_csv(p) for p in paths})


def test_collect_metrics_orders_models_and_evals(tmp_path):
    paths = [
        write_csv(tmp_path / f"{m}.csv", eval_rows(m)[::-1])
        for m in ("ftwb2-12", "ftwb1-7", "ftwb2-2", "pt1", "ftwb1-2")
    ]
    out = collect_metrics(paths)
    assert list(out.columns) == METRIC_COLUMNS
    assert list(out["model"].unique()) == ["pt1", "ftwb1-2", "ftwb1-7", "ftwb2-2", "ftwb2-12"]
    assert list(out["eval"][:15]) == eval_names()
    assert len(out) == 5 * 15


def test_collect_metrics_missing_column(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "n_unparsed"} for r in eval_rows("pt1")]
    path = write_csv(tmp_path / "pt1.csv", rows)
    with pytest.raises(ValueError, match=r"pt1\.csv.*n_unparsed"):
        collect_metrics([path])


def test_collect_metrics_rejects_duplicates_unknown_and_empty(tmp_path):
    a = write_csv(tmp_path / "a.csv", eval_rows("pt1"))
    b = write_csv(tmp_path / "b.csv", eval_rows("pt1"))
    with pytest.raises(ValueError, match="duplicate"):
        collect_metrics([a, b])
    bad = eval_rows("pt1")
    bad[0]["eval"] = "distance_mars"
    with pytest.raises(ValueError, match="distance_mars"):
        collect_metrics([write_csv(tmp_path / "bad.csv", bad)])
    with pytest.raises(ValueError, match="no evaluation"):
        collect_metrics([])


# --- summarize ------------------------------------------------------------------------------


def test_summarize_mean_sd_and_nan():
    matrix = pd.DataFrame([[1.0, 0.2, np.nan], [0.4, 0.5, 0.6]])
    mask = np.array([[True, False, False], [False, True, False]])
    s = summarize(matrix, mask)
    assert s["trained"]["n"] == 2
    assert s["trained"]["mean"] == pytest.approx(0.75)
    assert s["trained"]["sd"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    assert s["transfer"] == {
        "n": 3,
        "mean": pytest.approx(0.4),
        "sd": pytest.approx(0.2),
        "n_nan": 1,
    }
    assert s["trained"]["n_nan"] == 0


def test_summarize_undefined_is_none_and_shape_checked():
    s = summarize(pd.DataFrame([[np.nan, 0.3]]), np.array([[True, False]]))
    assert s["trained"] == {"n": 0, "mean": None, "sd": None, "n_nan": 1}
    assert s["transfer"]["sd"] is None and s["transfer"]["mean"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="shape"):
        summarize(pd.DataFrame([[0.1, 0.2]]), np.array([[True]]))


def test_against_trivial_baseline_error_task():
    # Training answers average 20; always answering 20 misses 10 and 30 by 10 each. The model
    # misses by 2 and 6: gains of 8 and 4 per prompt, mean 6 of 10, sd 2.83, se 2.
    row = against_trivial_baseline("distance", [2.0, 6.0], ["10", "30", "20"], ["10", "30"])
    assert row["mean_abs_error"] == 4.0 and row["predict_training_mean"] == 10.0
    assert row["error_reduction"] == 0.6 and row["n"] == 2
    assert row["ci95"] == pytest.approx([(6 - 1.96 * 2) / 10, (6 + 1.96 * 2) / 10], abs=1e-3)
    assert row["clear"]  # 6 - 3.92 > 0
    assert json.loads(json.dumps(row)) == row  # benchmarks write it as JSON
    worse = against_trivial_baseline("angle", [15.0, 15.0], ["10", "30"], ["10", "30"])
    assert worse["error_reduction"] == -0.5  # worse than knowing nothing shows as negative
    assert not worse["clear"]


def test_against_trivial_baseline_error_margin_within_noise_is_not_clear():
    # Gains of +9 and -7: better on average (mean 1 of 10) but the interval spans zero.
    row = against_trivial_baseline("perimeter", [1.0, 17.0], ["20"], ["10", "30"])
    assert row["error_reduction"] == 0.1
    assert row["ci95"][0] < 0 < row["ci95"][1]
    assert not row["clear"]


def test_against_trivial_baseline_degenerate_and_bad_input():
    # Every answer equals the training mean: nothing to reduce, so never a clear margin.
    flat = against_trivial_baseline("distance", [0.0, 1.0], ["5"], ["5", "5"])
    assert flat["error_reduction"] is None and flat["ci95"] is None and not flat["clear"]
    with pytest.raises(ValueError, match="no compass scores"):
        against_trivial_baseline("compass", [], [], [])
    with pytest.raises(ValueError, match="2 distance scores but 3 answers"):
        against_trivial_baseline("distance", [1.0, 2.0], ["5"], ["1", "2", "3"])


@pytest.mark.parametrize(("task", "chance"), [("compass", 0.125), ("inside", 0.5)])
def test_against_trivial_baseline_accuracy_task(task, chance):
    row = against_trivial_baseline(task, [1.0, 1.0, 1.0, 0.0], [], [])
    assert row["accuracy"] == 0.75 and row["chance"] == chance and row["n"] == 4
    assert row["margin"] == pytest.approx(0.75 - chance)
    # Wilson interval of 3 right out of 4, by hand: centre (0.75 + z²/8) / (1 + z²/4), half
    # z·sqrt(0.75·0.25/4 + z²/64) / (1 + z²/4), z = 1.96.
    z2 = 1.96**2
    centre = (0.75 + z2 / 8) / (1 + z2 / 4)
    half = 1.96 * (0.75 * 0.25 / 4 + z2 / 64) ** 0.5 / (1 + z2 / 4)
    assert row["ci95"] == pytest.approx([centre - half, centre + half], abs=1e-3)
    assert row["ci95"][0] == pytest.approx(0.301, abs=1e-3)
    # 3 of 4 is clearly above 1/8 but not clearly above a coin toss.
    assert row["clear"] == (task == "compass")


def test_against_trivial_baseline_accuracy_interval_narrows_with_more_prompts():
    # 55% right: within noise on 100 balanced yes/no prompts, clear on 2,000.
    few = against_trivial_baseline("crossing", [1.0] * 55 + [0.0] * 45, [], [])
    many = against_trivial_baseline("crossing", [1.0] * 1100 + [0.0] * 900, [], [])
    assert not few["clear"] and many["clear"]
    assert few["ci95"][0] < 0.5 < many["ci95"][0]
    perfect = against_trivial_baseline("inside", [1.0] * 10, [], [])
    assert perfect["ci95"][1] == 1.0 and perfect["ci95"][0] < 1.0 and perfect["clear"]


def _pt1_predictions(scores_by_task: dict[str, list[float]], answers: list[str]) -> list[dict]:
    return [
        {"eval": f"{task}_standard", "answer": answer, "score": score}
        for task, scores in scores_by_task.items()
        for score, answer in zip(scores, answers, strict=True)
    ]


def test_pt1_learning_table_one_row_per_task_with_verdicts():
    answers = ["10", "30"] * 10  # the training mean below is 20: knowing nothing misses by 10
    scores = {
        t: [2.0, 2.0] * 10 if TASKS[t].metric == ABS_ERROR else [1.0] * 20 for t in TASK_NAMES
    }
    scores["angle"] = [10.0, 10.0] * 10  # no better than answering the training mean
    scores["crossing"] = [1.0, 0.0] * 10  # a coin toss
    train = [{"task": t, "answer": a} for t in TASK_NAMES for a in ("10", "30")]
    table = pt1_learning_table(_pt1_predictions(scores, answers), train)
    assert list(table.columns) == PT1_LEARNING_COLUMNS
    assert table["task"].tolist() == list(TASK_NAMES)
    row = table.set_index("task")
    assert row.loc["distance", "margin"] == 0.8 and row.loc["distance", "pt1"] == 2.0
    assert row.loc["distance", "knowing_nothing"] == 10.0 and row.loc["distance", "clear"]
    assert row.loc["compass", "margin"] == 0.875 and row.loc["compass", "clear"]
    assert row.loc["angle", "margin"] == 0.0 and not row.loc["angle", "clear"]
    assert row.loc["crossing", "margin"] == 0.0 and not row.loc["crossing", "clear"]
    # The accuracy interval is on the margin's scale: around 0 for a coin toss.
    assert row.loc["crossing", "ci95_low"] < 0 < row.loc["crossing", "ci95_high"]
    lines = pt1_learning_summary(table)
    assert lines[0].endswith("distance, trianglearea, compass, inside, perimeter")
    assert "did not clearly learn angle, crossing" in lines[1]


def test_pt1_learning_table_names_a_missing_evaluation():
    predictions = _pt1_predictions({"distance": [1.0]}, ["10"])
    with pytest.raises(ValueError, match="no trianglearea_standard evaluation"):
        pt1_learning_table(predictions, [{"task": "distance", "answer": "10"}])
