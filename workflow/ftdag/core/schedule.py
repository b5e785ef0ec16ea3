"""Which samples each training step sees, and its learning rate: functions of the step alone, so
that a resumed run sees exactly the batches and rates of an uninterrupted one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up to the peak, then linear decay to zero."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of an epoch depends only on (seed, epoch): a resumed run sees the same
    batches as an uninterrupted one."""
    return np.random.default_rng([seed, epoch]).permutation(n)


LEAD_IN_EPOCH = -1  # the lead-in's pass in the schedule below


@dataclass(frozen=True)
class Schedule:
    """Which samples each step trains on: a lead-in of the first `lead_in` samples, once, then
    `epochs` passes over the rest; each pass shuffled, each a function of the step alone."""

    n_samples: int
    lead_in: int
    epochs: int
    batch_size: int
    seed: int

    @property
    def lead_in_steps(self) -> int:
        return math.ceil(self.lead_in / self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil((self.n_samples - self.lead_in) / self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.lead_in_steps + self.epochs * self.steps_per_epoch

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch within it) of a step; the lead-in is epoch LEAD_IN_EPOCH."""
        if step < self.lead_in_steps:
            return LEAD_IN_EPOCH, step
        return divmod(step - self.lead_in_steps, self.steps_per_epoch)

    def order(self, epoch: int) -> np.ndarray:
        """Sample indices of a pass, in training order."""
        if epoch == LEAD_IN_EPOCH:
            # a stream apart from the epochs' (seeds are non-negative)
            return np.random.default_rng([self.seed, 2**31]).permutation(self.lead_in)
        return self.lead_in + epoch_order(self.seed, epoch, self.n_samples - self.lead_in)
