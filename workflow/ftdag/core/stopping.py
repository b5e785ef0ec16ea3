"""Validation during training, and early stopping on its results.

`Validation` says when the loop evaluates (every k epochs, and optionally before the first
step) and how (a function of the model that returns named metrics). `EarlyStopping` decides,
from the history of those metrics alone, whether to stop: a pure function, tested on scripted
sequences.

Improvement means better than the best so far by more than `min_delta` (absolute), in the
direction of `mode`; `patience` counts validations without improvement; nothing stops before
`min_epochs` epochs have been trained. Hugging Face's `EarlyStoppingCallback` counts the same
way but has no minimum; the MTL study's keys (min epochs 10, patience 3, delta 0.001) map here
one to one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

MODES = ("max", "min")


@dataclass(frozen=True)
class Validation:
    """Evaluate the model every `every_epochs` epochs (and before training when
    `before_training`): `evaluate(model)` returns {metric name: value}."""

    evaluate: Callable[[object], dict[str, float]]
    every_epochs: int = 1
    before_training: bool = False

    def due(self, epoch: int) -> bool:
        """After `epoch` (counted from 1; 0 is before training)?"""
        if epoch == 0:
            return self.before_training
        return epoch % self.every_epochs == 0


@dataclass(frozen=True)
class Decision:
    stop: bool
    best_epoch: int | None
    best_value: float | None
    reason: str


@dataclass(frozen=True)
class EarlyStopping:
    metric: str
    mode: str = "max"
    patience: int = 3
    min_delta: float = 0.0
    min_epochs: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"early stopping mode must be one of {MODES}, not {self.mode!r}")
        if self.patience < 1 or self.min_delta < 0 or self.min_epochs < 0:
            raise ValueError("early stopping needs patience >= 1, min_delta >= 0, min_epochs >= 0")

    def better(self, value: float, best: float) -> bool:
        if self.mode == "max":
            return value > best + self.min_delta
        return value < best - self.min_delta

    def decide(self, history: list[dict]) -> Decision:
        """`history`: the validations so far, oldest first, each {"epoch": n, metric: value}."""
        best_epoch, best, waited = None, None, 0
        for entry in history:
            value = entry.get(self.metric)
            if value is None or math.isnan(value):
                raise ValueError(
                    f"early stopping watches {self.metric!r}, but the validation after epoch "
                    f"{entry['epoch']} reported {sorted(k for k in entry if k != 'epoch')}"
                )
            if best is None or self.better(value, best):
                best_epoch, best, waited = entry["epoch"], value, 0
            else:
                waited += 1
        if not history:
            return Decision(False, None, None, "no validation yet")
        epoch = history[-1]["epoch"]
        if waited >= self.patience and epoch >= self.min_epochs:
            return Decision(
                True,
                best_epoch,
                best,
                f"{self.metric} did not improve on {best:.4g} (epoch {best_epoch}) by more than "
                f"{self.min_delta:g} in {waited} validations; stopped after epoch {epoch}",
            )
        if waited >= self.patience:
            reason = f"no improvement in {waited} validations, but min_epochs is {self.min_epochs}"
        else:
            reason = f"{waited} of {self.patience} validations without improvement"
        return Decision(False, best_epoch, best, reason)
