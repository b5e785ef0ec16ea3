import math

import numpy as np
import pandas as pd
import pytest

from ftdag.exp3.metrics import NORMALIZED_COLUMNS
from ftdag.exp3.names import finetune_names, model_kind, trained_tasks
from ftdag.exp3.plots import (
    ftwb2_vs_ftwb1_matrix,
    plot_ftwb1_heatmap,
    plot_ftwb2_heatmap,
    plot_ftwb2_vs_ftwb1,
)
from ftdag.exp3.tasks import TASK_NAMES, TASKS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def normalized_table(values: dict) -> pd.DataFrame:
    """A normalized table from {model: [7 normalized values in TASK_NAMES order]}."""
    rows = []
    for model, scores in values.items():
        for task, score in zip(TASK_NAMES, scores, strict=True):
            rows.append(
                {
                    "model": model,
                    "kind": model_kind(model),
                    "trained_tasks": "+".join(trained_tasks(model)),
                    "task": task,
                    "metric": TASKS[task].metric,
                    "value": 1.0,
                    "b_std": 0.5,
                    "b_atl": 2.0,
                    "normalized": score,
                    "status": "ok" if not math.isnan(score) else "missing_value",
                }
            )
    return pd.DataFrame(rows, columns=NORMALIZED_COLUMNS)


def full_table(seed=0) -> pd.DataFrame:
    """All seven FTWB1 models and FTWB2 pairs 2 and 15, random scores, one NaN cell."""
    rng = np.random.default_rng(seed)
    models = finetune_names([15, 2])
    values = {m: list(rng.uniform(0, 1.5, size=7)) for m in models}
    values["ftwb1-4"][0] = math.nan
    return normalized_table(values)


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 1000
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


# --- ftwb2_vs_ftwb1_matrix ------------------------------------------------------------------


def test_ftwb2_vs_ftwb1_expected_is_best_specialist():
    # pair 2 = angle (ftwb1-3) + compass (ftwb1-4)
    nan = math.nan
    table = normalized_table(
        {
            "ftwb1-3": [0.1, 0.2, 1.0, 0.3, 0.0, 0.5, nan],
            "ftwb1-4": [0.4, 0.1, 0.2, 0.9, 0.0, 0.6, 0.2],
            "ftwb1-1": [1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5],  # not a specialist of pair 2: ignored
            "ftwb2-2": [0.5, 0.5, 0.8, 1.2, 0.3, 0.5, 0.4],
        }
    )
    diff = ftwb2_vs_ftwb1_matrix(table)
    assert list(diff.index) == ["ftwb2-2"]
    assert list(diff.columns) == list(TASK_NAMES)
    expected = [0.5 - 0.4, 0.5 - 0.2, 0.8 - 1.0, 1.2 - 0.9, 0.3 - 0.0, 0.5 - 0.6, nan]
    np.testing.assert_allclose(diff.loc["ftwb2-2"].to_numpy(), expected, equal_nan=True)


def test_ftwb2_vs_ftwb1_missing_specialist():
    table = normalized_table({"ftwb1-3": [0.5] * 7, "ftwb2-2": [0.5] * 7, "ftwb2-13": [0.5] * 7})
    with pytest.raises(ValueError, match=r"ftwb1-4.*ftwb1-6") as error:
        ftwb2_vs_ftwb1_matrix(table)
    assert "ftwb1-1" in str(error.value)  # pair 13 = perimeter + distance
    assert "ftwb1-3" not in str(error.value)


def test_no_ftwb2_rows():
    table = normalized_table({f"ftwb1-{k}": [0.5] * 7 for k in range(1, 8)})
    with pytest.raises(ValueError, match="FTWB2"):
        ftwb2_vs_ftwb1_matrix(table)


# --- plots ----------------------------------------------------------------------------------


def test_plot_ftwb1_heatmap(tmp_path):
    path = tmp_path / "wide_ftwb1_evaluation_heatmap.png"
    table = full_table()
    summary = plot_ftwb1_heatmap(table, "wide", path)
    assert_png(path)
    ftwb1 = table[table["kind"] == "ftwb1"]
    diagonal = ftwb1[ftwb1["trained_tasks"] == ftwb1["task"]]["normalized"]
    assert summary["trained"]["n"] == 7
    assert summary["trained"]["mean"] == pytest.approx(diagonal.mean())
    assert summary["transfer"]["n"] == 41 and summary["transfer"]["n_nan"] == 1


def test_plot_ftwb2_heatmap(tmp_path):
    path = tmp_path / "wide_ftwb2_evaluation_heatmap.png"
    summary = plot_ftwb2_heatmap(full_table(), "wide", path)
    assert_png(path)
    assert summary["trained"]["n"] == 4
    assert summary["transfer"]["n"] == 10


def test_plot_ftwb2_vs_ftwb1(tmp_path):
    path = tmp_path / "wide_ftwb2_vs_ftwb1.png"
    table = full_table()
    summary = plot_ftwb2_vs_ftwb1(table, "wide", path)
    assert_png(path)
    diff = ftwb2_vs_ftwb1_matrix(table)
    trained = [t in trained_tasks(m) for m in diff.index for t in diff.columns]
    cells = diff.to_numpy().ravel()
    assert summary["trained"]["mean"] == pytest.approx(np.nanmean(cells[trained]))


def test_tasks_pt1_did_not_learn_are_marked(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "marked").mkdir()
    plain = tmp_path / "plain/wide_ftwb1_evaluation_heatmap.png"
    marked = tmp_path / "marked/wide_ftwb1_evaluation_heatmap.png"
    table = full_table()
    assert plot_ftwb1_heatmap(table, "wide", plain)["pt1_did_not_learn"] == []
    # Listed in the columns' order, whatever order they come in.
    summary = plot_ftwb1_heatmap(table, "wide", marked, unlearned={"crossing", "angle"})
    assert summary["pt1_did_not_learn"] == ["angle", "crossing"]
    assert_png(marked)
    assert marked.read_bytes() != plain.read_bytes()  # hatched columns, starred names, a note
    # The summary statistics themselves do not change.
    assert summary["trained"] == plot_ftwb1_heatmap(table, "wide", plain)["trained"]


def test_an_unknown_unlearned_task_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"\['angel'\] are not tasks"):
        plot_ftwb2_vs_ftwb1(full_table(), "wide", tmp_path / "out.png", unlearned=["angel"])
    assert list(tmp_path.iterdir()) == []


def test_plots_without_ftwb2_raise_and_leave_nothing(tmp_path):
    table = normalized_table({f"ftwb1-{k}": [0.5] * 7 for k in range(1, 8)})
    for plot in (plot_ftwb2_heatmap, plot_ftwb2_vs_ftwb1):
        with pytest.raises(ValueError, match="FTWB2"):
            plot(table, "wide", tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_smooth_is_a_trailing_moving_average():
    from ftdag.exp3.plots import smooth

    assert np.allclose(smooth([1, 3, 5, 7], 2), [1, 2, 4, 6])
    assert np.allclose(smooth([2, 4], 10), [2, 3])  # a window longer than the curve
    assert np.allclose(smooth([5, 6, 7], 1), [5, 6, 7])


THREE_STAGES = [
    {"tasks": ["distance", "compass"], "samples": 640, "epochs": 1, "first_step": 0, "steps": 10},
    {"tasks": ["angle"], "samples": 320, "epochs": 2, "first_step": 10, "steps": 10},
    {"tasks": list(TASK_NAMES), "samples": 2000, "epochs": 3, "first_step": 20, "steps": 100},
]
ONE_STAGE = [{"samples": 2500, "epochs": 3, "first_step": 0, "steps": 120}]


@pytest.mark.parametrize(
    ("stages", "title", "labels"),
    [
        (ONE_STAGE, "pt1 (3 epochs)", []),
        (
            THREE_STAGES,
            "pt1 (3 stages)",
            ["stage 1: distance+compass x1", "stage 2: angle x2", "stage 3: 7-task mix x3"],
        ),
    ],
)
def test_training_curves_png(tmp_path, monkeypatch, stages, title, labels):
    from matplotlib.figure import Figure

    from ftdag.exp3.plots import plot_training_curves

    figures, savefig = [], Figure.savefig

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    pt1 = {"loss_curve": list(np.linspace(4, 1, 120)), "epochs": 3, "stages": stages}
    stats = {
        "pt1": pt1,
        "ftwb1-4": {"loss_curve": [1.0, 0.8, 0.7], "epochs": 2},
        "ftwb2-2": {"loss_curve": [1.2, 1.1], "epochs": 2},
    }
    out = tmp_path / "curves.png"
    plot_training_curves(stats, "wide", out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]
    pt1_ax = figures[0].axes[0]
    assert pt1_ax.get_title() == title
    assert [t.get_text() for t in pt1_ax.texts] == labels  # every stage named at its start
    boundaries = [line.get_xdata()[0] for line in pt1_ax.lines if line.get_linestyle() == ":"]
    assert boundaries == [s["first_step"] for s in stages[1:]]  # a line where each one starts
