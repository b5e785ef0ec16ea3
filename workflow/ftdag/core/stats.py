"""Intervals every family reports: Wilson for proportions, normal for means."""

from __future__ import annotations

import math

Z95 = 1.959964  # two-sided 95% of a normal


def wilson_interval(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion: unlike p ± z·se, it stays inside [0, 1] and is
    not of zero width at p = 0 or 1."""
    if n <= 0:
        raise ValueError("a proportion needs n > 0")
    z2 = z**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return centre - half, centre + half


def mean_sd(values) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def paired_bootstrap_difference(
    a, b, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of b - a over paired items (the same questions scored by two models), with a 95%
    percentile interval from resampling the items. Two-dimensional scores (seeds x items, the
    same seed's initialisation in both arms) resample the seeds as well as the items, so that
    the interval also holds what another seed would change."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"paired scores must be two equal, non-empty arrays: {a.shape}, {b.shape}")
    differences = (b - a).reshape(-1, a.shape[-1])  # seeds x items
    seeds, items = differences.shape
    rng = np.random.default_rng(seed)
    item_picks = rng.integers(0, items, size=(n_resamples, 1, items))
    seed_picks = (
        rng.integers(0, seeds, size=(n_resamples, seeds, 1))
        if seeds > 1
        else np.zeros((n_resamples, 1, 1), dtype=int)
    )
    means = differences[seed_picks, item_picks].mean(axis=(1, 2))
    low, high = np.percentile(means, [2.5, 97.5])
    return float(differences.mean()), float(low), float(high)


def bootstrap_difference_of_means(
    a, b, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """mean(b) - mean(a) for two independent groups of values, with a 95% percentile interval
    from resampling each group on its own (groups of other sizes: not paired)."""
    import numpy as np

    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError(f"both groups need values: {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    means_a = a[rng.integers(0, a.size, size=(n_resamples, a.size))].mean(axis=1)
    means_b = b[rng.integers(0, b.size, size=(n_resamples, b.size))].mean(axis=1)
    low, high = np.percentile(means_b - means_a, [2.5, 97.5])
    return float(b.mean() - a.mean()), float(low), float(high)
