"""exp3 metrics: collect per-model evaluations, normalize Atlantis scores against pt1, summarize.

Normalization (per arch, against its own pt1): ``b_std`` = pt1 on standard cities, ``b_atl`` =
pt1 on Atlantis, ``v`` = the fine-tuned model on Atlantis.

    error metrics:  log(b_atl / v) / log(b_atl / b_std)
    accuracy:       (v - b_atl) / (b_std - b_atl)

clipped to [0, 1.5]: 0 = knows Atlantis no better than pt1 did, 1 = as well as standard cities.
Every row gets a ``status`` saying how its value came about (see ``normalize_value``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ftdag.core.stats import Z95, wilson_interval
from ftdag.exp3.names import PRETRAINED, eval_names, model_kind, model_order, trained_tasks
from ftdag.exp3.tasks import ABS_ERROR, ACCURACY, TASK_NAMES, TASKS

METRIC_COLUMNS = ["model", "eval", "task", "cities", "metric", "value", "n", "n_unparsed"]
NORMALIZED_COLUMNS = [
    "model",
    "kind",
    "trained_tasks",
    "task",
    "metric",
    "value",
    "b_std",
    "b_atl",
    "normalized",
    "status",
]
CLIP_LOW, CLIP_HIGH = 0.0, 1.5

OK = "ok"
CLIPPED_LOW = "clipped_low"
CLIPPED_HIGH = "clipped_high"
PERFECT = "perfect"  # error 0 on Atlantis: infinitely better than b_std on a log scale
DEGENERATE_BASELINE = "degenerate_baseline"  # pt1 no worse on Atlantis: no gap to close
ZERO_BASELINE = "zero_baseline"  # pt1 error 0 on standard cities: the log scale has no top
MISSING_VALUE = "missing_value"  # a NaN among v, b_std, b_atl
ALL_STATUSES = (
    OK,
    CLIPPED_LOW,
    CLIPPED_HIGH,
    PERFECT,
    DEGENERATE_BASELINE,
    ZERO_BASELINE,
    MISSING_VALUE,
)
DEGENERATE_STATUSES = (DEGENERATE_BASELINE, ZERO_BASELINE, MISSING_VALUE, PERFECT)


# --- collecting -----------------------------------------------------------------------------


def collect_metrics(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-model evaluation tables ({source name: table}, the name for errors)
    into one table, checked and in canonical order."""
    if not tables:
        raise ValueError("collect_metrics: no evaluation table given")
    frames = []
    for source, df in tables.items():
        missing = [c for c in METRIC_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{source}: missing column(s) {', '.join(missing)}")
        unknown = sorted(set(df["eval"]) - set(eval_names()))
        if unknown:
            raise ValueError(f"{source}: unknown evaluation name(s) {', '.join(map(str, unknown))}")
        frames.append(df[METRIC_COLUMNS])
    metrics = pd.concat(frames, ignore_index=True)

    dup = metrics.duplicated(["model", "eval"], keep=False)
    if dup.any():
        pairs = sorted(set(zip(metrics.loc[dup, "model"], metrics.loc[dup, "eval"], strict=True)))
        raise ValueError(f"duplicate (model, eval) rows: {pairs}")

    eval_rank = {name: i for i, name in enumerate(eval_names())}
    keys = [
        (model_order(m), eval_rank[e])
        for m, e in zip(metrics["model"], metrics["eval"], strict=True)
    ]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return metrics.iloc[order].reset_index(drop=True)


# --- normalizing ----------------------------------------------------------------------------


def normalize_value(metric: str, v: float, b_std: float, b_atl: float) -> tuple[float, str]:
    """One normalized score and its status.

    Cases, in order:
    - any of v, b_std, b_atl NaN -> (NaN, "missing_value");
    - no gap between the baselines (errors: b_atl <= b_std; accuracy: b_std <= b_atl) ->
      (NaN, "degenerate_baseline"): there is nothing to normalize by;
    - errors with b_std == 0 < b_atl -> "zero_baseline": the denominator log(b_atl / 0) is
      infinite, so the formula would give 0 to every v > 0, hiding any real progress. We report
      NaN instead, except v == 0, which matches the standard-city level exactly -> 1.0;
    - errors with v == 0 -> (1.5, "perfect"): log(b_atl / 0) is infinite, clipped to the top;
    - otherwise the formula, clipped to [0, 1.5] -> "ok", "clipped_low" or "clipped_high".
    """
    if any(math.isnan(x) for x in (v, b_std, b_atl)):
        return math.nan, MISSING_VALUE
    if metric == ABS_ERROR:
        if min(v, b_std, b_atl) < 0:
            raise ValueError(f"negative absolute error: v={v}, b_std={b_std}, b_atl={b_atl}")
        if b_atl <= b_std:
            return math.nan, DEGENERATE_BASELINE
        if b_std == 0:
            return (1.0 if v == 0 else math.nan), ZERO_BASELINE
        if v == 0:
            return CLIP_HIGH, PERFECT
        raw = math.log(b_atl / v) / math.log(b_atl / b_std)
    elif metric == ACCURACY:
        if b_std <= b_atl:
            return math.nan, DEGENERATE_BASELINE
        raw = (v - b_atl) / (b_std - b_atl)
    else:
        raise ValueError(f"cannot normalize metric {metric!r}: expected {ABS_ERROR} or {ACCURACY}")
    if raw < CLIP_LOW:
        return CLIP_LOW, CLIPPED_LOW
    if raw > CLIP_HIGH:
        return CLIP_HIGH, CLIPPED_HIGH
    return raw, OK


def normalize(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (fine-tuned model, task): its Atlantis score normalized against pt1.

    `metrics` is the table of `collect_metrics`; the result has NORMALIZED_COLUMNS, models in
    canonical order, tasks in TASK_NAMES order.
    """
    lookup = {(r.model, r.eval): r for r in metrics.itertuples(index=False)}
    needed = [f"{t}_{g}" for t in TASK_NAMES for g in ("standard", "atlantis")]
    missing = [e for e in needed if (PRETRAINED, e) not in lookup]
    if missing:
        raise ValueError(f"pt1 evaluation(s) missing, cannot normalize: {', '.join(missing)}")

    models = sorted({m for m in metrics["model"] if m != PRETRAINED}, key=model_order)
    rows = []
    for model in models:
        for task in TASK_NAMES:
            evaluated = lookup.get((model, f"{task}_atlantis"))
            if evaluated is None:
                raise ValueError(f"{model}: evaluation {task}_atlantis missing")
            std = lookup[(PRETRAINED, f"{task}_standard")]
            atl = lookup[(PRETRAINED, f"{task}_atlantis")]
            value, b_std, b_atl = float(evaluated.value), float(std.value), float(atl.value)
            normalized, status = normalize_value(evaluated.metric, value, b_std, b_atl)
            rows.append(
                {
                    "model": model,
                    "kind": model_kind(model),
                    "trained_tasks": "+".join(trained_tasks(model)),
                    "task": task,
                    "metric": evaluated.metric,
                    "value": value,
                    "b_std": b_std,
                    "b_atl": b_atl,
                    "normalized": normalized,
                    "status": status,
                }
            )
    return pd.DataFrame(rows, columns=NORMALIZED_COLUMNS)


def degenerate_summary(normalized: pd.DataFrame) -> list[str]:
    """Human-readable lines about rows whose value is not a plain formula result."""
    lines = []
    for status in DEGENERATE_STATUSES:
        rows = normalized[normalized["status"] == status]
        for task, group in rows.groupby("task", sort=False):
            first = group.iloc[0]
            models = ", ".join(group["model"])
            lines.append(
                f"{status}: task {task} ({first['metric']}, pt1 standard={first['b_std']:g}, "
                f"pt1 atlantis={first['b_atl']:g}) in {len(group)} model(s): {models}"
            )
    return lines


# --- summarizing ----------------------------------------------------------------------------


def summarize(matrix_df: pd.DataFrame, trained_mask) -> dict:
    """Trained vs transfer cells: n (non-NaN), mean, sample sd, n_nan.

    `trained_mask` is a boolean array or DataFrame of the matrix's shape. mean and sd are None
    when undefined (no value; sd needs two), so the dict can be written as JSON.
    """
    values = np.asarray(matrix_df, dtype=float)
    mask = np.asarray(trained_mask, dtype=bool)
    if values.shape != mask.shape:
        raise ValueError(f"trained_mask shape {mask.shape} != matrix shape {values.shape}")
    summary = {}
    for name, cells in (("trained", values[mask]), ("transfer", values[~mask])):
        finite = cells[~np.isnan(cells)]
        summary[name] = {
            "n": int(finite.size),
            "mean": float(finite.mean()) if finite.size else None,
            "sd": float(finite.std(ddof=1)) if finite.size > 1 else None,
            "n_nan": int(cells.size - finite.size),
        }
    return summary


def against_trivial_baseline(
    task: str, scores: list[float], train_answers: list[str], eval_answers: list[str]
) -> dict:
    """A standard-city score next to what knowing nothing about the world gets: chance for
    compass (1/8) and yes/no tasks (1/2, they are balanced), and always answering the training
    mean for error tasks. Says whether pretraining learned the world at all.

    `scores` are the model's per-prompt scores (absolute errors, or 1/0 for right/wrong) on the
    prompts whose answers are `eval_answers`, in the same order. `ci95` is a 95% interval over
    prompts of the accuracy (Wilson) or of the error reduction (paired with the training-mean
    answer on each prompt); `clear` says all of it beats knowing nothing, so the margin is more
    than evaluation noise."""
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if n == 0:
        raise ValueError(f"no {task} scores to compare with knowing nothing")
    if TASKS[task].metric == ABS_ERROR:
        if len(eval_answers) != n:
            raise ValueError(f"{n} {task} scores but {len(eval_answers)} answers")
        train_mean = float(np.mean([int(a) for a in train_answers]))
        trivial_errors = np.abs(np.array([int(a) for a in eval_answers], dtype=float) - train_mean)
        baseline = float(trivial_errors.mean())
        # Per prompt: how much closer the model came than the training mean did.
        gains = trivial_errors - scores
        half_width = Z95 * float(gains.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
        if baseline == 0:
            reduction, ci95, clear = None, None, False
        else:
            reduction = round(float(gains.mean()) / baseline, 3)
            low, high = (float(gains.mean()) + s * half_width for s in (-1, 1))
            ci95 = [round(low / baseline, 3), round(high / baseline, 3)]
            clear = low > 0
        return {
            "mean_abs_error": round(float(scores.mean()), 3),
            "predict_training_mean": round(baseline, 3),
            "error_reduction": reduction,
            "ci95": ci95,
            "n": n,
            "clear": clear,
        }
    chance = TASKS[task].chance
    accuracy = float(scores.mean())
    low, high = wilson_interval(accuracy, n)
    return {
        "accuracy": round(accuracy, 3),
        "chance": chance,
        "margin": round(accuracy - chance, 3),
        "ci95": [round(low, 3), round(high, 3)],
        "n": n,
        "clear": low > chance,
    }


PT1_LEARNING_COLUMNS = [
    "task",
    "metric",
    "pt1",
    "knowing_nothing",
    "margin",
    "ci95_low",
    "ci95_high",
    "n",
    "clear",
]


def pt1_learning_table(predictions: list[dict], train_records: list[dict]) -> pd.DataFrame:
    """Did pretraining learn the world? For each task, pt1 on its standard-city evaluation
    against knowing nothing (`against_trivial_baseline`), from pt1's per-prompt predictions
    (records with `eval`, `answer` and `score`) and its training set. `margin` is the accuracy
    above chance, or the fraction of the training-mean error that pt1 removes."""
    rows = []
    for task in TASK_NAMES:
        scored = [p for p in predictions if p["eval"] == f"{task}_standard"]
        if not scored:
            raise ValueError(f"pt1's predictions have no {task}_standard evaluation")
        compared = against_trivial_baseline(
            task,
            [p["score"] for p in scored],
            [r["answer"] for r in train_records if r["task"] == task],
            [p["answer"] for p in scored],
        )
        accuracy = TASKS[task].metric == ACCURACY
        low, high = compared["ci95"] or (math.nan, math.nan)
        rows.append(
            {
                "task": task,
                "metric": TASKS[task].metric,
                "pt1": compared["accuracy" if accuracy else "mean_abs_error"],
                "knowing_nothing": compared["chance" if accuracy else "predict_training_mean"],
                "margin": compared["margin" if accuracy else "error_reduction"],
                # For accuracy the interval is of pt1's accuracy; put it on the margin's scale.
                "ci95_low": low - compared["chance"] if accuracy else low,
                "ci95_high": high - compared["chance"] if accuracy else high,
                "n": compared["n"],
                "clear": compared["clear"],
            }
        )
    return pd.DataFrame(rows, columns=PT1_LEARNING_COLUMNS).round(3)


def tasks_not_learned(table: pd.DataFrame) -> list[str]:
    """The tasks of a `pt1_learning_table` (or its CSV) that pt1 did not clearly learn."""
    return table.loc[~table["clear"].astype(bool), "task"].tolist()


def pt1_learning_summary(table: pd.DataFrame) -> list[str]:
    """Log lines: which tasks pt1 clearly learned, and a warning naming those it did not."""
    missed = tasks_not_learned(table)
    learned = [t for t in table["task"] if t not in missed]
    lines = [
        f"pt1 beats knowing nothing beyond evaluation noise on: {', '.join(learned) or 'none'}"
    ]
    if missed:
        lines.append(
            f"pt1 did not clearly learn {', '.join(missed)}: their normalized scores compare "
            "fine-tunes with a pt1 that knows little more than chance, so read them as noise "
            "(pretrain longer: the samples or epochs of exp3.data.pt1_stages)"
        )
    return lines
