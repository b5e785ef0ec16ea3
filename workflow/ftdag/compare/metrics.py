"""The compare family's metrics: how close each model's 1–10 scores come to the ground truth
(MAE, RMSE, Acc@1, Acc@2, each with a seeded 95% bootstrap percentile interval over items), one
row per model, and the study's success criteria. Pure functions on lists and tables.

Unparsed answers (None) have no error: MAE and RMSE are over the parsed items only, while
Acc@1 and Acc@2 are out of all items and count an unparsed answer as a miss, so that a model
cannot look more accurate by refusing or rambling; `n_unparsed` says how many there were. A
model with no parsed answer at all has every metric None: there is nothing to measure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ftdag.core.stats import paired_bootstrap_difference

METRICS = ("mae", "rmse", "acc_at_1", "acc_at_2")
MAE_TARGET, ACC_AT_1_TARGET = 1.5, 0.6


def signed_errors(expected, predicted) -> np.ndarray:
    """predicted − expected per item, NaN where the answer was not parsed (None)."""
    if len(expected) != len(predicted):
        raise ValueError(f"{len(expected)} expected scores but {len(predicted)} predicted")
    if len(expected) == 0:
        raise ValueError("no items")
    return np.array(
        [
            np.nan if p is None else float(p) - float(e)
            for e, p in zip(expected, predicted, strict=True)
        ]
    )


def score_metrics(expected, predicted, n_resamples: int = 2000, seed: int = 0) -> dict:
    """n, n_unparsed and each metric with `<metric>_ci_low` / `<metric>_ci_high`: the 2.5th and
    97.5th percentiles of the metric over `n_resamples` resamplings of the items (the parsed
    items for MAE and RMSE, all items for the accuracies)."""
    errors = signed_errors(expected, predicted)
    parsed = ~np.isnan(errors)
    result = {"n": len(errors), "n_unparsed": int((~parsed).sum())}
    if not parsed.any():
        return result | {f"{m}{end}": None for m in METRICS for end in ("", "_ci_low", "_ci_high")}
    absolute = np.abs(errors[parsed])
    distance = np.abs(np.where(parsed, errors, np.inf))  # an unparsed answer is never close
    hits = np.stack([distance <= 1, distance <= 2], axis=1).astype(float)  # items x (1, 2)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, absolute.size, size=(n_resamples, absolute.size))
    item_picks = rng.integers(0, len(errors), size=(n_resamples, len(errors)))
    accuracies = hits[item_picks].mean(axis=1)  # resamples x (1, 2)
    estimates = {
        "mae": (absolute.mean(), absolute[picks].mean(axis=1)),
        "rmse": (np.sqrt((absolute**2).mean()), np.sqrt((absolute**2)[picks].mean(axis=1))),
        "acc_at_1": (hits[:, 0].mean(), accuracies[:, 0]),
        "acc_at_2": (hits[:, 1].mean(), accuracies[:, 1]),
    }
    for name, (point, resampled) in estimates.items():
        low, high = np.percentile(resampled, [2.5, 97.5])
        result |= {name: float(point), f"{name}_ci_low": float(low), f"{name}_ci_high": float(high)}
    return result


def compare_models(items: dict, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """`items`: {model: (expected, predicted)}. One row per model, in the dict's order: `model`
    and `score_metrics`'s columns."""
    rows = [
        {"model": model} | score_metrics(expected, predicted, n_resamples, seed)
        for model, (expected, predicted) in items.items()
    ]
    return pd.DataFrame(rows)


def mae_improvement(
    items: dict, baseline: str, model: str, n_resamples: int = 2000, seed: int = 0
) -> dict | None:
    """Baseline MAE − the model's MAE (above 0: the model is closer) over the items both parsed,
    with a paired bootstrap 95% interval; None when the two were not scored on the same items
    (the same expected scores in the same order) or share no parsed item."""
    expected, baseline_predicted = items[baseline]
    model_expected, model_predicted = items[model]
    if list(expected) != list(model_expected):
        return None
    theirs = np.abs(signed_errors(expected, baseline_predicted))
    ours = np.abs(signed_errors(expected, model_predicted))
    both = ~np.isnan(theirs) & ~np.isnan(ours)
    if not both.any():
        return None
    mean, low, high = paired_bootstrap_difference(ours[both], theirs[both], n_resamples, seed)
    return {"value": mean, "ci_low": low, "ci_high": high, "n_paired": int(both.sum())}


def criterion(name: str, met: bool, model, value, ci_low, ci_high, detail: str) -> dict:
    return {
        "criterion": name,
        "met": bool(met),
        "model": model,
        "value": value,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "detail": detail,
    }


def best_on(table: pd.DataFrame, metric: str, target: float, lower: bool, name: str) -> dict:
    """Whether the best model on `metric` passes `target` (strictly below, or above)."""
    rows = table.set_index("model")
    values = pd.to_numeric(rows[metric], errors="coerce").dropna()
    if values.empty:
        return criterion(name, False, None, None, None, None, "no model has a parsed answer")
    model = values.idxmin() if lower else values.idxmax()
    value = float(values[model])
    low, high = (float(rows.loc[model, f"{metric}_ci_{end}"]) for end in ("low", "high"))
    met = value < target if lower else value > target
    detail = f"best {model}: {metric} {value:.3f} (95% {low:.3f} to {high:.3f}), target {target}"
    return criterion(name, met, model, value, low, high, detail)


def beats_baseline(
    table: pd.DataFrame, baseline: str, finetuned: list[str], items, n_resamples: int, seed: int
) -> dict:
    """Met where a fine-tuned model's MAE improvement over the baseline has its paired interval
    above 0; without paired items, where its MAE is lower (point estimates only)."""
    name = "a fine-tuned model beats the baseline on MAE"
    mae = pd.to_numeric(table.set_index("model")["mae"], errors="coerce")
    results = []
    for model in finetuned:
        paired = mae_improvement(items, baseline, model, n_resamples, seed) if items else None
        if paired is not None:
            met = paired["ci_low"] > 0
            how = (
                f"{paired['value']:+.3f} (95% {paired['ci_low']:+.3f} to "
                f"{paired['ci_high']:+.3f}, {paired['n_paired']} paired items)"
            )
        elif pd.notna(mae[baseline]) and pd.notna(mae[model]):
            paired = {"value": float(mae[baseline] - mae[model]), "ci_low": None, "ci_high": None}
            met, how = paired["value"] > 0, f"{paired['value']:+.3f} (unpaired: no interval)"
        else:
            continue
        results.append((met, paired["value"], model, paired, f"{model}: {how}"))
    if not results:
        return criterion(name, False, None, None, None, None, "no comparable model")
    met, value, model, paired, _ = max(results, key=lambda r: (r[0], r[1]))
    detail = f"baseline {baseline} MAE − fine-tuned MAE: " + "; ".join(r[4] for r in results)
    return criterion(name, met, model, value, paired["ci_low"], paired["ci_high"], detail)


def success_criteria(
    table: pd.DataFrame,
    baseline: str,
    finetuned: list[str],
    items: dict | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[dict]:
    """The study's criteria, each with `met`, the deciding model, its number and interval and a
    sentence: MAE < 1.5 for at least one model; Acc@1 > 60% for at least one model; a
    fine-tuned model beats the baseline on MAE, by how much, with a paired bootstrap over
    items where `items` ({model: (expected, predicted)}) has both on the same items."""
    return [
        best_on(table, "mae", MAE_TARGET, True, f"MAE < {MAE_TARGET} for at least one model"),
        best_on(
            table,
            "acc_at_1",
            ACC_AT_1_TARGET,
            False,
            f"Acc@1 > {ACC_AT_1_TARGET:.0%} for at least one model",
        ),
        beats_baseline(table, baseline, finetuned, items, n_resamples, seed),
    ]
