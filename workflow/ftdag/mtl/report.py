"""The MTL family's comparison of arms: per task and per domain, each arm's final model (its
best-by-validation snapshot, else its last) side by side, the difference with a paired 95%
interval over prompts, improvements and regressions named only where the interval excludes 0;
best epoch per domain; overfitting flags. Pure functions on tables; `steps` reads the files.
"""

from __future__ import annotations

import numpy as np
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
    """`predictions`: one row per (arm, test item) of the final models, with `arm`, `task`,
    `domain`, `item` (the record's place in the test split: prompts may repeat) and `reward`
    (the mean over seeds where there are several). One row per
    task, then per domain: both arms' means, other − reference with a paired bootstrap 95%
    interval over prompts, and the verdict."""
    wide = predictions.pivot_table(
        index=["domain", "task", "item"], columns="arm", values="reward", aggfunc="mean"
    ).reset_index()
    rows = []
    groups = [("task", t, g) for t, g in wide.groupby("task", sort=False)]
    groups += [("domain", d, g) for d, g in wide.groupby("domain", sort=False)]
    for level, name, group in groups:
        mean, low, high = paired_bootstrap_difference(group[reference], group[other], seed=seed)
        rows.append(
            {
                "level": level,
                "name": name,
                "domain": group["domain"].iloc[0],
                reference: group[reference].mean(),
                other: group[other].mean(),
                "difference": mean,
                "ci_low": low,
                "ci_high": high,
                "n": len(group),
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
    return "\n".join(lines) + "\n"


def mean_over_seeds(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-prompt rewards of several seeds' final models, averaged (same prompts each)."""
    stacked = pd.concat(frames, ignore_index=True)
    keys = ["arm", "domain", "task", "item"]
    return stacked.groupby(keys, as_index=False, sort=False)["reward"].agg(np.mean)
