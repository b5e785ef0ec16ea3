"""The training loop every family shares: AdamW, warm-up then linear decay, gradient clipping.

What a batch is and what its losses are come from the `data` object (`ftdag.core.batches`:
prompt/answer records; a family brings images and questions, or one batch per task); how
losses become a gradient comes from the `gradient` rule (the sum of the losses by default;
gradient surgery for multi-task learning). The loop itself never changes for a family.

The data may come in stages (`data.stages`, see `ftdag.core.schedule`): each stage's samples
seen its own number of times, after all of the previous stage's passes, e.g. pt1 learning where
cities are from distance and compass before the seven-task mix; the learning rate's warm-up
and decay span them all. Validations, early stopping and snapshots count the epochs of the
last stage (earlier stages prepare for it, as a lead-in did). Data without stages is one stage,
after its lead-in (the first `data.lead_in` samples, seen once) if it has one.

Resumable inside the job: every `checkpoint_every` steps the model, optimizer, scheduler, RNG
states and data position are saved; a job that is killed and started again continues from
there and ends with the same weights as an uninterrupted run (on CPU). On SIGTERM (preemption,
SLURM's warning before a time limit) it saves a checkpoint at the end of the current step and
exits, so the requeued job loses no work. Optionally: validation every k epochs, early
stopping on it, model snapshots every k epochs (the last M kept, and the best), tracking.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ftdag.core import distributed
from ftdag.core.checkpoint import Preempted, Retention, load_checkpoint, save_checkpoint
from ftdag.core.model import count_parameters
from ftdag.core.schedule import Position, StagedSchedule, lead_in_stages
from ftdag.core.stopping import EarlyStopping, Validation
from ftdag.core.tracking import Tracker

log = logging.getLogger("ftdag.core.train")

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 50  # steps; the schema's default
    # bf16: the forward pass under bfloat16 autocast (weights and optimizer stay float32).
    # 1.5x faster on the AMD EPYC CPU of benchmarks/shared_loop_speed.py, not bit-identical.
    precision: str = "fp32"

    @classmethod
    def from_config(cls, training: dict) -> TrainConfig:
        """From a config section that may hold other keys too (lora, ...)."""
        return cls(**{k: training[k] for k in cls.__dataclass_fields__ if k in training})

    def fingerprint(self, *extra: str) -> str:
        """Identifies a run: a checkpoint is resumed only by the run that wrote it."""
        # How often checkpoints are written does not change the run.
        settings = {k: v for k, v in asdict(self).items() if k != "checkpoint_every"}
        text = json.dumps(settings, sort_keys=True) + "|".join(extra)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def schedule_for(data, config: TrainConfig) -> StagedSchedule:
    """The schedule of `data`'s stages; stages without their own epochs take `config.epochs`."""
    stages = getattr(data, "stages", ()) or lead_in_stages(data.n_samples, data.lead_in)
    return StagedSchedule.of(stages, config.epochs, config.batch_size, config.seed)


class SumOfLosses:
    """The plain gradient rule: backward through the sum of the batch's losses. Under DDP the
    wrapper averages the gradients over processes during this backward pass."""

    wraps_ddp = True
    step = 0  # set by the loop before each backward; this rule draws nothing from it

    def backward(self, losses: dict[str, torch.Tensor], parameters) -> None:
        total = None
        for loss in losses.values():
            total = loss if total is None else total + loss
        total.backward()


def make_optimizer(model, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only; frozen parameters (LoRA's base) left out."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [
            {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": config.weight_decay},
            {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=config.lr,
    )


def train(
    model,
    data,
    config: TrainConfig,
    checkpoint_path,
    run_id: str = "",
    device: str = "cpu",
    progress: bool = True,
    gradient=None,
    validation: Validation | None = None,
    early_stopping: EarlyStopping | None = None,
    retention: Retention | None = None,
    tracker: Tracker | None = None,
) -> dict:
    """Train `model` in place on `data` (see `ftdag.core.batches`); return run statistics.

    Under torchrun (see ftdag.core.distributed) every process calls this with the same
    arguments; each computes its share of every global batch of `config.batch_size` samples."""
    if early_stopping and not validation:
        raise ValueError("early stopping needs a validation to watch")
    loop = _Loop(model, data, config, Path(checkpoint_path), device, gradient or SumOfLosses())
    loop.validation, loop.early_stopping, loop.retention = validation, early_stopping, retention
    loop.tracker = tracker or Tracker()
    loop.resume(config.fingerprint(run_id, data.fingerprint))
    return loop.run(progress)


class _Loop:
    """One training run's state and its steps; `train` above is the way in."""

    def __init__(self, model, data, config: TrainConfig, checkpoint_path: Path, device, gradient):
        self.model, self.data, self.config, self.device = model, data, config, device
        self.checkpoint_path, self.gradient = checkpoint_path, gradient
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.schedule = schedule_for(data, config)
        model.to(device).train()
        self.optimizer = make_optimizer(model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: self.schedule.lr_factor(s, config.warmup_fraction)
        )
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        # Subnormal floats (from ever sharper attention) are slow on x86 CPUs: without this,
        # the wide pt1 fell from 1.9 to 1.4 steps/s by step 1,000 (benchmarks/flush_denormal.py).
        torch.set_flush_denormal(True)
        if config.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {config.precision!r}")
        self.trainable = [p for p in model.parameters() if p.requires_grad]  # LoRA: adapters
        self.order = (None, None)  # (pass, its sample order)
        self.stopping = False  # all processes agreed to stop after this step
        self.state = {"step": 0, "tokens": 0, "train_seconds": 0.0, "losses": []}
        self.state.update(validations=[], stopped_early=None)

    def resume(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        state = load_checkpoint(
            self.checkpoint_path,
            fingerprint,
            self.model,
            self.optimizer,
            self.scheduler,
            self.device,
        )
        if state is not None:
            self.state.update(state)
            log.info(
                "resuming from %s at step %d/%d",
                self.checkpoint_path,
                state["step"],
                self.schedule.total_steps,
            )
        self.forward_model = self.model
        if self.world > 1 and self.gradient.wraps_ddp:
            # Averages gradients over the processes, overlapped with the backward pass.
            index = torch.device(self.device).index
            ids = [index] if torch.device(self.device).type == "cuda" else None
            self.forward_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids
            )

    def save(self) -> None:
        if self.rank == 0:
            save_checkpoint(
                self.checkpoint_path,
                self.fingerprint,
                self.model,
                self.optimizer,
                self.scheduler,
                self.state,
            )

    def run(self, progress: bool) -> dict:
        stop_requested: list[bool] = []
        previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
        total = self.schedule.total_steps
        bar = tqdm(
            total=total,
            initial=self.state["step"],
            desc="train",
            disable=not progress or self.rank != 0,
            mininterval=0.5 if sys.stderr.isatty() else 10.0,
            file=sys.stderr,
        )
        stages = self.schedule.stages
        log.info(
            "%d samples in %d stage(s) (samples x epochs: %s), %d steps of %d, %d parameters",
            self.data.n_samples,
            len(stages),
            ", ".join(f"{s.samples} x {s.epochs}" for s in stages),
            total,
            self.config.batch_size,
            count_parameters(self.model),
        )
        try:
            if self.state["step"] == 0 and self.validation and self.validation.due(0):
                self.validate(0)
            while self.state["step"] < total and not self.state["stopped_early"]:
                position = self.step(stop_requested, bar)
                if self.schedule.ends_pass(self.state["step"] - 1):
                    self.end_of_pass(position)
                done = self.state["step"] == total or bool(self.state["stopped_early"])
                every = self.state["step"] % self.config.checkpoint_every == 0
                if not done and (every or self.stopping):
                    self.save()
                if self.stopping and not done:
                    distributed.barrier()  # the checkpoint is complete before any process exits
                    log.warning(
                        "stopped by signal at step %d; checkpoint saved", self.state["step"]
                    )
                    raise Preempted(self.state["step"])
        finally:
            bar.close()
            signal.signal(signal.SIGTERM, previous_handler)
            self.tracker.close()
        self.model.eval()
        return self.statistics()

    def autocast(self):
        return torch.autocast(
            torch.device(self.device).type,
            dtype=torch.bfloat16,
            enabled=self.config.precision == "bf16",
        )

    def step(self, stop_requested: list, bar) -> Position:
        """One optimizer step on the global batch of the current step; returns its position."""
        state, world = self.state, self.world
        position = self.schedule.position(state["step"])
        a_pass = (position.stage, position.epoch)
        if self.order[0] != a_pass:  # once per pass: a permutation of its samples
            self.order = (a_pass, self.schedule.order(*a_pass))
        size = self.config.batch_size
        batch = self.order[1][position.batch * size : (position.batch + 1) * size]
        # This process's share of the global batch, and its weight in the batch mean.
        local = batch[self.rank :: world]
        weight = len(local) / len(batch)
        if len(local) == 0:  # a last batch smaller than the process count
            local, weight = batch[:1], 0.0
        inputs = self.data.batch(local.tolist())
        started = time.perf_counter()
        with self.autocast():
            losses = self.data.losses(self.forward_model, inputs, self.device)
        losses = {name: loss * weight for name, loss in losses.items()}
        self.optimizer.zero_grad(set_to_none=True)
        self.gradient.step = state["step"]  # rules that draw (PCGrad's order) seed from it
        # DDP averages gradients over processes; scaled by `world`, they sum to the gradient
        # of the global batch's mean loss (with one process: unchanged).
        self.gradient.backward(
            {name: loss * world for name, loss in losses.items()},
            self.trainable,
        )
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        tokens = self.data.tokens(inputs) if weight else 0
        loss = sum(v.item() for v in losses.values())
        if world > 1:
            # One exchange per step: the batch loss, its tokens, and whether any process was
            # asked to stop (all of them must checkpoint at the same step).
            shared = torch.tensor([loss, tokens, float(bool(stop_requested))], device=self.device)
            torch.distributed.all_reduce(shared)
            loss, tokens, stops = shared.tolist()  # one device sync
            tokens = int(tokens)
        else:
            stops = bool(stop_requested)
        # Decided from the exchange, not from the flag: a signal that arrives after it is
        # acted on at the next step, so that every process stops at the same one.
        self.stopping = bool(stops)
        seconds = time.perf_counter() - started

        state["step"] += 1
        state["tokens"] += tokens
        state["train_seconds"] += seconds
        state["losses"].append(round(loss, 5))
        throughput = state["tokens"] / max(state["train_seconds"], 1e-9)
        bar.update(1)
        # refresh=False: the bar redraws at its own pace, not every step
        bar.set_description(f"train {self.schedule.describe(position)}", refresh=False)
        bar.set_postfix(refresh=False, loss=f"{loss:.3f}", tok_s=f"{throughput:.0f}")
        if self.tracker.writers and self.rank == 0:
            metrics = {"train/loss": loss, "train/lr": lr, "train/tokens_per_second": throughput}
            if len(losses) > 1:
                metrics.update({f"train/loss_{k}": v.item() for k, v in losses.items()})
            self.tracker.log(metrics, state["step"])
        return position

    def end_of_pass(self, position: Position) -> None:
        recent = self.state["losses"][-(position.batch + 1) :]
        log.info(
            "%s done: mean loss %.4f, %.0f tokens/s",
            self.schedule.describe(position),
            sum(recent) / len(recent),
            self.state["tokens"] / self.state["train_seconds"],
        )
        if position.stage < len(self.schedule.stages) - 1:
            return  # earlier stages prepare for the last one, whose epochs are counted
        finished = position.epoch + 1
        best = False
        if self.validation and self.validation.due(finished):
            best = self.validate(finished)
        if self.retention and self.rank == 0:
            if self.retention.due(finished):
                self.retention.snapshot(self.model, finished)
            if best:
                self.retention.keep_as_best(self.model, finished)

    def validate(self, epoch: int) -> bool:
        """Run the validation after `epoch`; record it, decide on early stopping. Returns
        whether this is the best validation so far."""
        rng = torch.get_rng_state()  # validation must not change the training's random stream
        self.model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in self.validation.evaluate(self.model).items()}
        self.model.train()
        torch.set_rng_state(rng)
        self.state["validations"].append({"epoch": epoch, "step": self.state["step"], **metrics})
        log.info("validation after epoch %d: %s", epoch, json.dumps(metrics))
        if self.rank == 0:
            self.tracker.log({f"validation/{k}": v for k, v in metrics.items()}, self.state["step"])
        if not self.early_stopping:
            return False
        decision = self.early_stopping.decide(self.state["validations"])
        log.info("early stopping: %s", decision.reason)
        if decision.stop:
            self.state["stopped_early"] = decision.reason
        return decision.best_epoch == epoch

    def statistics(self) -> dict:
        state, schedule = self.state, self.schedule
        last = len(schedule.stages) - 1
        tail = max(1, schedule.steps_per_epoch(last) // 4)
        stats = {
            "steps": state["step"],
            "epochs": schedule.stages[last].epochs,  # the counted ones; all passes in `stages`
            "samples": self.data.n_samples,
            "tokens": state["tokens"],
            "train_seconds": round(state["train_seconds"], 3),
            "tokens_per_second": round(state["tokens"] / max(state["train_seconds"], 1e-9), 1),
            "stages": schedule.summary(),
            "final_loss": float(np.mean(state["losses"][-tail:])),
            "loss_curve": state["losses"],
            "config": asdict(self.config),
        }
        if self.validation:
            stats["validations"] = state["validations"]
            stats["stopped_early"] = state["stopped_early"]
        return stats
