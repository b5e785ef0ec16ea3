"""The MTL family's comparison of arms: per task and per domain, each arm's final model (its
best-by-validation snapshot, else its last) side by side, the difference with a paired 95%
interval over prompts, improvements and regressions named only where the interval excludes 0;
best epoch per domain; overfitting flags. Pure functions on tables; `steps` reads the files.
"""

from __future__ import annotations

import pandas as pd

from ftdag.core.stats import paired_bootstrap_difference

IMPROVEMENT, REGRESSION, NO_DIFFERENCE = "improvement", "regression", "no difference"


def final_snapshot(snapshots: list[str]) -> str:
    """The snapshot that stands for an arm's result: best by validation, else the last."""
    if "best" in snapshots:
        return "best"
    return max(snapshots, key=lambda s: int(s.split("_")[1]))


def verdict_of(low: float, high: float) -> str:
    if low > 0:
        return IMPROVEMENT
    if high < 0:
        return REGRESSION
    return NO_DIFFERENCE


def compare(predictions: pd.DataFrame, reference: str, other: str, seed: int = 0) -> pd.DataFrame:
    """`predictions`: one row per (arm, seed, test item) of the final models, with `arm`,
    `seed` (optional: one seed), `task`, `domain`, `trained` (optional), `item` (the record's
    place in the test split: prompts may repeat) and `reward`. One row per task, then per
    domain: both arms' means, other − reference with a paired bootstrap 95% interval over
    prompts, and over seeds too where there are several, and the verdict."""
    predictions = predictions.assign(
        seed=predictions.get("seed", 0), trained=predictions.get("trained", True)
    )
    wide = predictions.pivot_table(
        index=["domain", "task", "trained", "item"],
        columns=["arm", "seed"],
        values="reward",
        aggfunc="mean",
    ).reset_index()
    rows = []
    groups = [("task", t, g) for t, g in wide.groupby("task", sort=False)]
    groups += [("domain", d, g) for d, g in wide.groupby("domain", sort=False)]
    for level, name, group in groups:
        ours, theirs = group[reference].to_numpy().T, group[other].to_numpy().T  # seeds x items
        mean, low, high = paired_bootstrap_difference(ours, theirs, seed=seed)
        rows.append(
            {
                "level": level,
                "name": name,
                "domain": group["domain"].iloc[0],
                "trained": bool(group["trained"].all()),
                reference: ours.mean(),
                other: theirs.mean(),
                "difference": mean,
                "ci_low": low,
                "ci_high": high,
                "n": len(group),
                "seeds": ours.shape[0],
                "verdict": verdict_of(low, high),
            }
        )
    return pd.DataFrame(rows)


def domain_curves(evolution: pd.DataFrame) -> pd.DataFrame:
    """Mean reward per arm, epoch and domain over the epoch snapshots (the domain's mean of
    its tasks, averaged over seeds)."""
    epochs = evolution[evolution["snapshot"] != "best"]
    per_task = epochs.groupby(["arm", "epoch", "domain", "task"], as_index=False)[
        "reward_mean"
    ].mean()
    return per_task.groupby(["arm", "epoch", "domain"], as_index=False)["reward_mean"].mean()


def best_epochs(curves: pd.DataFrame) -> pd.DataFrame:
    """Per arm and domain: the epoch of its highest mean reward (the earliest on a tie)."""
    rows = []
    for (arm, domain), group in curves.groupby(["arm", "domain"], sort=False):
        group = group.sort_values("epoch")
        peak = group.loc[group["reward_mean"].idxmax()]
        rows.append(
            {
                "arm": arm,
                "domain": domain,
                "best_epoch": int(peak["epoch"]),
                "peak": peak["reward_mean"],
            }
        )
    return pd.DataFrame(rows)


def overfitting(curves: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per arm and domain: the peak, the last kept epoch's value, and a flag where the domain
    fell by more than `threshold` after its peak."""
    rows = []
    for (arm, domain), group in curves.groupby(["arm", "domain"], sort=False):
        group = group.sort_values("epoch")
        peak_index = group["reward_mean"].idxmax()
        peak, last = group.loc[peak_index, "reward_mean"], group["reward_mean"].iloc[-1]
        rows.append(
            {
                "arm": arm,
                "domain": domain,
                "peak_epoch": int(group.loc[peak_index, "epoch"]),
                "peak": peak,
                "last_epoch": int(group["epoch"].iloc[-1]),
                "last": last,
                "overfits": bool(peak - last > threshold),
            }
        )
    return pd.DataFrame(rows)


def named(comparison: pd.DataFrame, verdict: str) -> list[str]:
    """Tasks and domains with this verdict, in table order."""
    chosen = comparison[comparison["verdict"] == verdict]
    return [f"{r.level} {r.name} ({r.difference:+.3f})" for r in chosen.itertuples()]


def markdown(
    comparison: pd.DataFrame,
    reference: str,
    other: str,
    flags: pd.DataFrame,
    stops: dict[str, str],
) -> str:
    """The report: where `other` helps and hurts against `reference`, beyond the intervals;
    per-domain table; overfitting; where and why each arm stopped."""
    domains = comparison[comparison["level"] == "domain"]
    lines = [
        f"# MTL: {other} against {reference}",
        "",
        f"- **{other} helps** (interval above 0): "
        + (", ".join(named(comparison, IMPROVEMENT)) or "nowhere"),
        f"- **{other} hurts** (interval below 0): "
        + (", ".join(named(comparison, REGRESSION)) or "nowhere"),
        "",
        f"| domain | {reference} | {other} | difference (95%) | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in domains.itertuples():
        lines.append(
            f"| {r.name} | {getattr(r, reference):.3f} | {getattr(r, other):.3f} | "
            f"{r.difference:+.3f} ({r.ci_low:+.3f} to {r.ci_high:+.3f}) | {r.verdict} |"
        )
    over = flags[flags["overfits"]]
    lines += [
        "",
        "- **Overfitting** (a domain fell after its peak by more than the threshold): "
        + (
            ", ".join(
                f"{r.arm}/{r.domain} (peak {r.peak:.3f} at epoch {r.peak_epoch}, "
                f"{r.last:.3f} at epoch {r.last_epoch})"
                for r in over.itertuples()
            )
            or "none"
        ),
    ]
    lines += [f"- **{arm} stopped**: {reason}" for arm, reason in stops.items()]
    seeds = int(comparison["seeds"].max()) if "seeds" in comparison else 1
    if seeds > 1:
        lines.append(f"- Intervals resample the {seeds} seeds as well as the prompts.")
    return "\n".join(lines) + "\n"


def task_markdown(comparison: pd.DataFrame, reference: str, other: str) -> str:
    """Every task's row; out-of-distribution tasks (never trained) marked."""
    tasks = comparison[comparison["level"] == "task"]
    lines = [
        f"\n## Per task: {other} against {reference}\n",
        f"| task | domain | {reference} | {other} | difference (95%) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in tasks.itertuples():
        name = r.name if r.trained else f"{r.name} (OOD)"
        lines.append(
            f"| {name} | {r.domain} | {getattr(r, reference):.3f} | {getattr(r, other):.3f} | "
            f"{r.difference:+.3f} ({r.ci_low:+.3f} to {r.ci_high:+.3f}) | {r.verdict} |"
        )
    return "\n".join(lines) + "\n"


def training_row(key: str, validations: pd.DataFrame, stats: dict, device_hours: float) -> dict:
    """One arm and seed's training: validation reward mean before training and at its final
    snapshot (the best validation), where and why it stopped, and what it cost."""
    arm, seed = key.split("/")
    metric = "validation_reward_mean"
    best = validations.loc[validations[metric].idxmax()]
    return {
        "arm": arm,
        "seed": int(seed),
        "validation_before": float(validations[metric].iloc[0]),
        "validation_best": float(best[metric]),
        "best_epoch": int(best["epoch"]),
        "epochs_run": int(validations["epoch"].iloc[-1]),
        "steps": int(stats["steps"]),
        "stopped": stats.get("stopped_early") or f"ran all {stats['epochs']} epochs",
        "train_seconds": float(stats["train_seconds"]),
        "device_hours": device_hours,
    }


def training_markdown(training: pd.DataFrame) -> str:
    lines = [
        "\n## Training\n",
        "Validation reward mean (trained tasks, domains weighed equally) before training and at "
        "the best validation; device-hours of the training job.\n",
        "| arm | seed | before | best (epoch) | epochs run | stopped | device-hours |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in training.itertuples():
        lines.append(
            f"| {r.arm} | {r.seed} | {r.validation_before:.3f} | {r.validation_best:.3f} "
            f"({r.best_epoch}) | {r.epochs_run} | {r.stopped} | {r.device_hours:.5f} |"
        )
    return "\n".join(lines) + "\n"


def best_epochs_markdown(best: pd.DataFrame) -> str:
    lines = [
        "\n## Best epoch per domain\n",
        "| arm | domain | best epoch | mean reward there |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.arm} | {r.domain} | {r.best_epoch} | {r.peak:.3f} |" for r in best.itertuples()
    ]
    return "\n".join(lines) + "\n"
