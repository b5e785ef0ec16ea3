"""In-job checkpoints (resume after a kill or a preemption) and kept model snapshots.

A checkpoint holds everything a resumed run needs to continue exactly where it stopped: model,
optimizer, scheduler, RNG states and the loop's own state (step, tokens, losses, validations).
It is written beside its final name and renamed, so a kill mid-write leaves the previous one.

Snapshots are different: whole saved models (`epoch_5/`, `epoch_10/`, ...) that outlive the job,
e.g. for evaluating every kept checkpoint of a run. `Retention` keeps the last few of them and
the best one by validation.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger("ftdag.core.train")


class Preempted(SystemExit):
    """Raised after a checkpoint was written because the job was asked to stop."""

    def __init__(self, step: int | None = None):
        at = "" if step is None else f" at step {step}"
        super().__init__(f"stopped by signal{at}; checkpoint saved, rerun to resume")
        self.code = 143  # 128 + SIGTERM, what a scheduler expects of a terminated job
        self.step = step


def save_checkpoint(path, fingerprint: str, model, optimizer, scheduler, state: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "fingerprint": fingerprint,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "state": state,
        },
        tmp,
    )
    os.replace(tmp, path)


def load_checkpoint(path, fingerprint: str, model, optimizer, scheduler, device) -> dict | None:
    """The loop state of the checkpoint at `path`, its weights and RNGs restored; None when
    there is none, or it belongs to another run (then it is left alone, and a warning says so).
    """
    path = Path(path)
    if not path.exists():
        return None
    checkpoint = torch.load(path, map_location=device, weights_only=False)
    if checkpoint["fingerprint"] != fingerprint:
        log.warning("ignoring %s: it belongs to another run configuration", path)
        return None
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["torch_rng"])
    random.setstate(checkpoint["python_rng"])
    return checkpoint["state"]


SNAPSHOT = re.compile(r"epoch_(\d+)")
BEST = "best"


@dataclass(frozen=True)
class Retention:
    """Save the model every `every_epochs` epochs as `root/epoch_<n>/`, keep the last
    `keep_last` of them, and (with `keep_best`) a copy of the best by validation as
    `root/best/`. `save(model, directory)` writes one snapshot (e.g. `save_pretrained`)."""

    root: Path
    every_epochs: int
    keep_last: int
    save: Callable[[object, Path], None]
    keep_best: bool = True

    def __post_init__(self):
        if self.every_epochs < 1 or self.keep_last < 1:
            raise ValueError("retention needs every_epochs >= 1 and keep_last >= 1")

    def due(self, epoch: int) -> bool:
        """Is a snapshot due after `epoch` (counted from 1)?"""
        return epoch % self.every_epochs == 0

    def snapshot(self, model, epoch: int) -> Path:
        directory = Path(self.root) / f"epoch_{epoch}"
        self.save(model, directory)
        self.prune()
        return directory

    def keep_as_best(self, model, epoch: int) -> None:
        if self.keep_best:
            self.save(model, Path(self.root) / BEST)
            (Path(self.root) / BEST / "EPOCH").write_text(f"{epoch}\n")

    def kept(self) -> list[int]:
        """Epochs of the snapshots on disk, oldest first."""
        names = (p.name for p in Path(self.root).glob("epoch_*"))
        return sorted(int(m.group(1)) for name in names if (m := SNAPSHOT.fullmatch(name)))

    def prune(self) -> list[int]:
        """Delete all but the last `keep_last` snapshots; return the epochs deleted."""
        old = self.kept()[: -self.keep_last]
        for epoch in old:
            shutil.rmtree(Path(self.root) / f"epoch_{epoch}")
        return old
