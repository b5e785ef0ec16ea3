"""Experiment tracking that users already run, optional and off by default.

The training loop reports its losses, learning rate, throughput and validation metrics to a
`Tracker`; with `tracking.backends` empty (the default) that costs nothing. Backends:
- `tensorboard`: event files under `tracking.dir/<run>` (`tensorboard --logdir results/tracking`);
- `wandb`: a run in `tracking.project`, offline unless `tracking.mode` is `online`;
- `mlflow`: a run in `tracking.project`, in a local file store under `tracking.dir` unless
  `MLFLOW_TRACKING_URI` says otherwise.
wandb and mlflow are not installed with ftdag: `pip install wandb` / `pip install mlflow`.
Only the process that logs (rank 0) tracks.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger("ftdag.tracking")

BACKENDS = ("tensorboard", "wandb", "mlflow")


def run_name(*parts: str) -> str:
    """A name every backend accepts: `exp3/wide/pt1` -> `exp3-wide-pt1`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-")


class Tracker:
    """Fans metrics out to the configured backends; with none, does nothing."""

    def __init__(self, writers: list | None = None):
        self.writers = writers or []

    def log(self, metrics: dict[str, float], step: int) -> None:
        for writer in self.writers:
            writer.log(metrics, step)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers = []


class _TensorBoard:
    def __init__(self, directory: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(directory))

    def log(self, metrics, step):
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)

    def close(self):
        self.writer.close()


class _Wandb:
    def __init__(self, directory: Path, name: str, project: str, mode: str, config: dict):
        import wandb

        directory.mkdir(parents=True, exist_ok=True)
        # The run id is the name: a resumed job continues the same run.
        self.run = wandb.init(
            project=project,
            name=name,
            id=name,
            resume="allow",
            dir=str(directory),
            mode=mode,
            config=config,
        )

    def log(self, metrics, step):
        self.run.log(dict(metrics), step=step)

    def close(self):
        self.run.finish()


class _MLflow:
    def __init__(self, directory: Path, name: str, project: str, config: dict):
        import os

        import mlflow

        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(Path(directory).resolve().as_uri())
        mlflow.set_experiment(project)
        self.mlflow = mlflow
        self.run = mlflow.start_run(run_name=name)
        mlflow.log_params({k: str(v)[:250] for k, v in config.items()})

    def log(self, metrics, step):
        self.mlflow.log_metrics(dict(metrics), step=step)

    def close(self):
        self.mlflow.end_run()


def open_tracker(settings: dict | None, name: str, config: dict | None = None) -> Tracker:
    """A tracker for one training run from the `tracking` config section (None: off)."""
    settings = settings or {}
    backends = settings.get("backends") or []
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"config key 'tracking.backends': unknown {unknown}; known: {BACKENDS}")
    root = Path(settings.get("dir", "results/tracking"))
    project = settings.get("project", "ftdag")
    config = config or {}
    writers = []
    for backend in backends:
        try:
            if backend == "tensorboard":
                writers.append(_TensorBoard(root / "tensorboard" / name))
            elif backend == "wandb":
                mode = settings.get("mode", "offline")
                writers.append(_Wandb(root / "wandb", name, project, mode, config))
            else:
                writers.append(_MLflow(root / "mlflow", name, project, config))
        except ImportError as error:
            raise RuntimeError(
                f"tracking backend {backend!r} is configured but cannot be imported ({error}): "
                f"pip install {backend}, or remove it from tracking.backends"
            ) from error
    if writers:
        log.info("tracking %s with %s", name, ", ".join(backends))
    return Tracker(writers)
