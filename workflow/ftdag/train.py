"""The training loop: AdamW, warm-up then linear decay, gradient clipping, loss on the answer.

An optional lead-in (the first records) is seen once, before the epochs over the rest: a
curriculum, e.g. pt1 learning where cities are from distance and compass before the full mix.

Resumable inside the job: every `checkpoint_every` steps the model, optimizer, scheduler, RNG
states and data position are saved; a job that is killed and started again continues from
there and ends with the same weights as an uninterrupted run (on CPU). On SIGTERM (preemption,
SLURM's warning before a time limit) it saves a checkpoint at the end of the current step and
exits, so the requeued job loses no work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ftdag import distributed
from ftdag.model import count_parameters

log = logging.getLogger("ftdag.train")

IGNORE = -100  # label of tokens the loss does not count (prompt and padding)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100  # steps

    def fingerprint(self, *extra: str) -> str:
        """Identifies a run: a checkpoint is resumed only by the run that wrote it."""
        # How often checkpoints are written does not change the run.
        settings = {k: v for k, v in asdict(self).items() if k != "checkpoint_every"}
        text = json.dumps(settings, sort_keys=True) + "|".join(extra)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class Preempted(SystemExit):
    """Raised after a checkpoint was written because the job was asked to stop."""

    def __init__(self, step: int | None = None):
        at = "" if step is None else f" at step {step}"
        super().__init__(f"stopped by signal{at}; checkpoint saved, rerun to resume")
        self.code = 143  # 128 + SIGTERM, what a scheduler expects of a terminated job
        self.step = step


def encode(tokenizer, records: list[dict]) -> tuple[list[list[int]], list[int]]:
    """Token ids of <bos> prompt answer <eos>, and where the answer starts in each."""
    prompts = tokenizer([r["prompt"] for r in records], add_special_tokens=False)["input_ids"]
    answers = tokenizer([r["answer"] for r in records], add_special_tokens=False)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    ids = [[bos, *p, *a, eos] for p, a in zip(prompts, answers, strict=True)]
    answer_start = [1 + len(p) for p in prompts]
    return ids, answer_start


def collate(ids, answer_start, pad_id: int):
    """Right-padded batch; labels only on the answer and <eos> (the model shifts them)."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    labels = torch.full((len(ids), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, (seq, start) in enumerate(zip(ids, answer_start, strict=True)):
        input_ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, start : len(seq)] = torch.tensor(seq[start:])
        mask[i, : len(seq)] = 1
    return input_ids, mask, labels


def answer_loss(logits, labels):
    """Cross-entropy of the answer tokens, averaged per sample, then over the batch: a 4-digit
    area answer weighs as much as a one-letter compass answer, so no task dominates."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]  # token t predicts token t+1
    per_token = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(labels.shape)
    counted = (labels != IGNORE).sum(dim=1).clamp(min=1)
    return (per_token.sum(dim=1) / counted).mean()


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


def train(
    model,
    tokenizer,
    records: list[dict],
    config: TrainConfig,
    checkpoint_path,
    run_id: str = "",
    device: str = "cpu",
    progress: bool = True,
    lead_in: int = 0,
) -> dict:
    """Train `model` in place on `records` ({prompt, answer} dicts); return run statistics.
    The first `lead_in` records are a lead-in, seen once before `config.epochs` passes over
    the others.

    Under torchrun (see ftdag.distributed) every process calls this with the same arguments;
    each computes its share of every global batch of `config.batch_size` samples."""
    checkpoint_path = Path(checkpoint_path)
    rank, world = distributed.rank(), distributed.world_size()
    fingerprint = config.fingerprint(run_id, str(len(records)), str(lead_in))
    ids, answer_start = encode(tokenizer, records)
    if not 0 <= lead_in < len(ids):
        raise ValueError(f"a lead-in of {lead_in} leaves none of the {len(ids)} samples to train")
    schedule = Schedule(len(ids), lead_in, config.epochs, config.batch_size, config.seed)
    total_steps = schedule.total_steps
    warmup_steps = max(1, int(config.warmup_fraction * total_steps))

    model.to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]  # LoRA freezes the base
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, warmup_steps)
    )
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    # Subnormal floats (from ever sharper attention) are slow on x86 CPUs: without this, the
    # wide pt1 fell from 1.9 to 1.4 steps/s by step 1,000 (benchmarks/flush_denormal.py).
    torch.set_flush_denormal(True)

    state = {"step": 0, "tokens": 0, "train_seconds": 0.0, "losses": []}
    if checkpoint_path.exists():
        checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=False)
        if checkpoint["fingerprint"] == fingerprint:
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            torch.set_rng_state(checkpoint["torch_rng"])
            random.setstate(checkpoint["python_rng"])
            state = checkpoint["state"]
            log.info("resuming from %s at step %d/%d", checkpoint_path, state["step"], total_steps)
        else:
            log.warning("ignoring %s: it belongs to another run configuration", checkpoint_path)

    forward_model = model
    if world > 1:
        # Averages gradients over the processes, overlapped with the backward pass.
        device_ids = [torch.device(device).index] if torch.device(device).type == "cuda" else None
        forward_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def save_checkpoint():
        if rank != 0:
            return
        checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = checkpoint_path.with_suffix(".tmp")
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
        os.replace(tmp, checkpoint_path)

    stop_requested = []
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
    bar = tqdm(
        total=total_steps,
        initial=state["step"],
        desc="train",
        disable=not progress or rank != 0,
        mininterval=0.5 if sys.stderr.isatty() else 10.0,
        file=sys.stderr,
    )
    log.info(
        "%d samples (%d of them a lead-in, seen once first), %d epochs, %d steps of %d, "
        "%d parameters",
        len(ids),
        lead_in,
        config.epochs,
        total_steps,
        config.batch_size,
        count_parameters(model),
    )
    order_epoch, order = None, None
    try:
        while state["step"] < total_steps:
            epoch, position = schedule.position(state["step"])
            if epoch != order_epoch:  # once per pass: a permutation of its samples
                order_epoch, order = epoch, schedule.order(epoch)
            batch = order[position * config.batch_size : (position + 1) * config.batch_size]
            # This process's share of the global batch, and its weight in the batch mean.
            local = batch[rank::world]
            weight = len(local) / len(batch)
            if len(local) == 0:  # a last batch smaller than the process count
                local, weight = batch[:1], 0.0
            input_ids, mask, labels = collate(
                [ids[i] for i in local], [answer_start[i] for i in local], tokenizer.pad_token_id
            )
            started = time.perf_counter()
            logits = forward_model(
                input_ids=input_ids.to(device), attention_mask=mask.to(device)
            ).logits
            loss = answer_loss(logits, labels.to(device)) * weight
            optimizer.zero_grad(set_to_none=True)
            # DDP averages gradients over processes; scaled by `world`, they sum to the
            # gradient of the global batch's mean loss (with one process: unchanged).
            (loss * world).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            tokens = int(mask.sum()) if weight else 0
            loss = loss.item()
            if world > 1:
                # One exchange per step: the batch loss, its tokens, and whether any process
                # was asked to stop (all of them must checkpoint at the same step).
                shared = torch.tensor([loss, tokens, float(bool(stop_requested))], device=device)
                torch.distributed.all_reduce(shared)
                loss, tokens, stops = shared.tolist()  # one device sync
                tokens = int(tokens)
                if stops and not stop_requested:
                    stop_requested.append(True)
            seconds = time.perf_counter() - started

            state["step"] += 1
            state["tokens"] += tokens
            state["train_seconds"] += seconds
            state["losses"].append(round(loss, 5))
            bar.update(1)
            bar.set_postfix(
                refresh=False,  # the bar redraws at its own pace, not every step
                epoch="lead-in" if epoch == LEAD_IN_EPOCH else epoch + 1,
                loss=f"{loss:.3f}",
                tok_s=f"{state['tokens'] / max(state['train_seconds'], 1e-9):.0f}",
            )
            if schedule.position(state["step"])[0] != epoch:  # the pass is over
                recent = state["losses"][-(position + 1) :]
                log.info(
                    "%s done: mean loss %.4f, %.0f tokens/s",
                    "lead-in" if epoch == LEAD_IN_EPOCH else f"epoch {epoch + 1}/{config.epochs}",
                    sum(recent) / len(recent),
                    state["tokens"] / state["train_seconds"],
                )
            done = state["step"] == total_steps
            if not done and (state["step"] % config.checkpoint_every == 0 or stop_requested):
                save_checkpoint()
            if stop_requested and not done:
                distributed.barrier()  # the checkpoint is complete before any process exits
                log.warning("stopped by signal at step %d; checkpoint saved", state["step"])
                raise Preempted(state["step"])
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous_handler)
    model.eval()
    return {
        "steps": state["step"],
        "epochs": config.epochs,
        "samples": len(ids),
        "tokens": state["tokens"],
        "train_seconds": round(state["train_seconds"], 3),
        "tokens_per_second": round(state["tokens"] / max(state["train_seconds"], 1e-9), 1),
        "lead_in_samples": lead_in,
        "lead_in_steps": schedule.lead_in_steps,
        "final_loss": float(np.mean(state["losses"][-max(1, schedule.steps_per_epoch // 4) :])),
        "loss_curve": state["losses"],
        "config": asdict(config),
    }
