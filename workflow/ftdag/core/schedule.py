"""Which samples each training step sees, and its learning rate: functions of the step alone, so
that a resumed run sees exactly the batches and rates of an uninterrupted one.

A run is a sequence of stages (`Stage`): stage k's samples are the ones after stage k-1's in
the data, and all of its passes come after all of stage k-1's. A plain run is one stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

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


@dataclass(frozen=True)
class Stage:
    """`samples` consecutive samples of the data, seen `epochs` times (None: the run's
    `TrainConfig.epochs`), each pass shuffled."""

    samples: int
    epochs: int | None = None
    tasks: tuple[str, ...] = ()  # what the stage trains on, where the data knows: for logs
    # The learning rate warms up again at this stage's first step and decays to zero by the
    # next restart (or the run's end): a stage that must discover a task on its own gets the
    # annealing a run of its own would have.
    restart_lr: bool = False


def lead_in_stages(n_samples: int, lead_in: int) -> tuple[Stage, ...]:
    """The stages of data that has no `stages` of its own: an optional lead-in (its first
    `lead_in` samples, seen once), then the rest for the run's epochs."""
    if not 0 <= lead_in < n_samples:
        raise ValueError(f"a lead-in of {lead_in} leaves none of the {n_samples} samples to train")
    rest = Stage(n_samples - lead_in)
    return (Stage(lead_in, 1), rest) if lead_in else (rest,)


@dataclass(frozen=True)
class Position:
    stage: int  # index into the schedule's stages
    epoch: int  # pass over the stage's samples, from 0
    batch: int  # batch within the pass, from 0


@dataclass(frozen=True)
class StagedSchedule:
    """Which samples each step trains on: the stages in order, each pass shuffled; a batch
    never spans two passes (a pass's last batch may be smaller)."""

    stages: tuple[Stage, ...]
    batch_size: int
    seed: int

    def __post_init__(self):
        if not self.stages:
            raise ValueError("a schedule needs at least one stage")
        for k, stage in enumerate(self.stages):
            if stage.samples < 1 or stage.epochs is None or stage.epochs < 1:
                raise ValueError(f"stage {k + 1} needs samples and epochs >= 1, not {stage}")

    @classmethod
    def of(cls, stages, epochs: int, batch_size: int, seed: int) -> StagedSchedule:
        """A schedule whose stages without their own epochs take `epochs`."""
        stages = tuple(s if s.epochs is not None else replace(s, epochs=epochs) for s in stages)
        return cls(stages, batch_size, seed)

    def steps_per_epoch(self, stage: int) -> int:
        return math.ceil(self.stages[stage].samples / self.batch_size)

    @cached_property
    def _first_steps(self) -> list[int]:
        """The first step of each stage, and the total after the last."""
        firsts = [0]
        for k, stage in enumerate(self.stages):
            firsts.append(firsts[-1] + stage.epochs * self.steps_per_epoch(k))
        return firsts

    def lr_segments(self) -> list[tuple[int, int]]:
        """(first step, end step) of each stretch with its own warm-up and decay: the whole run,
        cut where a stage restarts the learning rate."""
        cuts = [self.first_step(k) for k, s in enumerate(self.stages) if s.restart_lr and k]
        bounds = [0, *cuts, self.total_steps]
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    @cached_property
    def _lr_segments(self) -> list[tuple[int, int]]:
        return self.lr_segments()

    def lr_factor(self, step: int, warmup_fraction: float) -> float:
        """The learning rate's factor at `step`: `lr_factor` within the step's segment (called
        every training step; the segments are computed once)."""
        segments = self._lr_segments
        first, end = next((s for s in segments if step < s[1]), segments[-1])
        warmup = max(1, int(warmup_fraction * (end - first)))
        return lr_factor(step - first, end - first, warmup)

    def first_step(self, stage: int) -> int:
        return self._first_steps[stage]

    def first_sample(self, stage: int) -> int:
        return sum(s.samples for s in self.stages[:stage])

    @property
    def n_samples(self) -> int:
        return self.first_sample(len(self.stages))

    @property
    def total_steps(self) -> int:
        return self._first_steps[-1]

    def position(self, step: int) -> Position:
        if not 0 <= step < self.total_steps:
            raise ValueError(f"step {step} is not in the schedule's {self.total_steps} steps")
        stage = next(k for k in range(len(self.stages)) if step < self._first_steps[k + 1])
        epoch, batch = divmod(step - self._first_steps[stage], self.steps_per_epoch(stage))
        return Position(stage, epoch, batch)

    def ends_pass(self, step: int) -> bool:
        """Whether `step` is the last of its pass."""
        position = self.position(step)
        return position.batch == self.steps_per_epoch(position.stage) - 1

    def order(self, stage: int, epoch: int) -> np.ndarray:
        """Sample indices of a pass, in training order. The last stage draws from the plain
        epochs' stream and earlier ones from streams apart (seeds and epochs are below 2**31),
        so a one-stage run keeps `epoch_order`, and data with a lead-in keeps the order it had
        as a lead-in ([seed, 2**31]: SeedSequence pads [seed, 2**31, 0] with zeros anyway)."""
        n, first = self.stages[stage].samples, self.first_sample(stage)
        if stage == len(self.stages) - 1:
            return first + epoch_order(self.seed, epoch, n)
        return first + np.random.default_rng([self.seed, 2**31 + stage, epoch]).permutation(n)

    def batch(self, step: int) -> np.ndarray:
        """The sample indices of a step's global batch."""
        position = self.position(step)
        size = self.batch_size
        return self.order(position.stage, position.epoch)[
            position.batch * size : (position.batch + 1) * size
        ]

    def describe(self, position: Position) -> str:
        """A pass for logs: 'stage 2/3 epoch 1/3', or 'epoch 1/3' in a one-stage run."""
        epochs = f"epoch {position.epoch + 1}/{self.stages[position.stage].epochs}"
        if len(self.stages) == 1:
            return epochs
        return f"stage {position.stage + 1}/{len(self.stages)} {epochs}"

    def summary(self) -> list[dict]:
        """Per stage: its tasks (where known), samples, epochs, first step and steps."""
        return [
            {
                **({"tasks": list(stage.tasks)} if stage.tasks else {}),
                "samples": stage.samples,
                "epochs": stage.epochs,
                "first_step": self.first_step(k),
                "steps": self.first_step(k + 1) - self.first_step(k),
                **({"restart_lr": True} if stage.restart_lr else {}),
            }
            for k, stage in enumerate(self.stages)
        ]


LEAD_IN_EPOCH = -1  # the lead-in's pass in `Schedule` below


@dataclass(frozen=True)
class Schedule:
    """The loop's first schedule, a lead-in of the first `lead_in` samples seen once, then
    `epochs` passes over the rest, as a view of the `StagedSchedule` the loop runs: kept for
    callers that count epochs of a one-stage run (compare's epoch reports)."""

    n_samples: int
    lead_in: int
    epochs: int
    batch_size: int
    seed: int

    @cached_property
    def staged(self) -> StagedSchedule:
        stages = lead_in_stages(self.n_samples, self.lead_in)
        return StagedSchedule.of(stages, self.epochs, self.batch_size, self.seed)

    @property
    def lead_in_steps(self) -> int:
        return self.staged.first_step(len(self.staged.stages) - 1)

    @property
    def steps_per_epoch(self) -> int:
        return self.staged.steps_per_epoch(len(self.staged.stages) - 1)

    @property
    def total_steps(self) -> int:
        return self.staged.total_steps

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch within it) of a step; the lead-in is epoch LEAD_IN_EPOCH."""
        position = self.staged.position(step)
        if self.lead_in and position.stage == 0:
            return LEAD_IN_EPOCH, position.batch
        return position.epoch, position.batch

    def order(self, epoch: int) -> np.ndarray:
        """Sample indices of a pass, in training order."""
        if epoch == LEAD_IN_EPOCH:
            return self.staged.order(0, 0)
        return self.staged.order(len(self.staged.stages) - 1, epoch)
