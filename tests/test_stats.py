"""Shared statistics (ftdag.core.stats) not covered with a family's results."""

import numpy as np
import pytest

from ftdag.core.stats import bootstrap_difference_of_means


def test_difference_of_means_of_groups_of_other_sizes():
    rng = np.random.default_rng(0)
    transfer = rng.normal(0.5, 0.3, size=42)
    trained = rng.normal(0.8, 0.15, size=7)
    mean, low, high = bootstrap_difference_of_means(transfer, trained)
    assert mean == pytest.approx(trained.mean() - transfer.mean())
    assert low < mean < high and low > 0  # 0.3 apart, well beyond the noise
    # seven cells as noisy as transfer's, 0.05 above it: the interval holds zero
    mean, low, high = bootstrap_difference_of_means(transfer, rng.normal(0.55, 0.3, size=7))
    assert low < 0 < high
    # resampling is seeded: the same interval twice
    assert bootstrap_difference_of_means(transfer, trained) == bootstrap_difference_of_means(
        transfer, trained
    )


def test_difference_of_means_needs_both_groups():
    with pytest.raises(ValueError, match="both groups need values: 0 and 3"):
        bootstrap_difference_of_means([], [1.0, 2.0, 3.0])
