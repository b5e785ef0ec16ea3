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
